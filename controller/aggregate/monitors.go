package aggregate

import (
	"maps"
	"math"
	"slices"
	"time"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
	"github.com/surgeload/surge/plan"
)

// monitor is one of the plan's monitors over the run: its value per
// interval, and the intervals without one.
type monitor struct {
	query   string
	values  map[int64]float64
	missing map[int64]string // interval → why it has no value
}

// SetMonitor records monitor name's value for interval i, or why it has
// none (err non-nil). A later sample of the same interval replaces the
// earlier one; query is the monitor's PromQL, kept for the summary.
func (r *Run) SetMonitor(name, query string, i int64, v float64, err error) {
	if r.monitors == nil {
		r.monitors = map[string]*monitor{}
	}
	m := r.monitors[name]
	if m == nil {
		m = &monitor{query: query, values: map[int64]float64{}, missing: map[int64]string{}}
		r.monitors[name] = m
	}
	if err != nil {
		delete(m.values, i)
		m.missing[i] = err.Error()
		return
	}
	delete(m.missing, i)
	m.values[i] = v
}

// MonitorLatest is each monitor's value of its latest interval with one.
func (r *Run) MonitorLatest() map[string]float64 {
	if len(r.monitors) == 0 {
		return nil
	}
	out := make(map[string]float64, len(r.monitors))
	for name, m := range r.monitors {
		if len(m.values) > 0 {
			out[name] = m.values[slices.Max(slices.Collect(maps.Keys(m.values)))]
		}
	}
	return out
}

// monitorValue evaluates a monitor:NAME threshold over the monitor's values
// of the intervals within elapsed; false without any.
func (r *Run) monitorValue(spec plan.ThresholdSpec, elapsed time.Duration) (float64, bool) {
	m := r.monitors[spec.Tags[plan.MonitorMetric]]
	if m == nil {
		return 0, false
	}
	s := m.summary("", r.lastInterval(elapsed))
	if len(s.Values) == 0 {
		return 0, false
	}
	switch spec.Agg {
	case "min":
		return s.Min, true
	case "max":
		return s.Max, true
	case "avg":
		return s.Mean, true
	case "last":
		return s.Last, true
	case "med":
		return nearestRank(s.Values, 50), true
	case "p":
		return nearestRank(s.Values, spec.Percentile), true
	}
	return 0, false
}

// nearestRank is the q-th percentile (0..100) of the samples' values by
// the nearest-rank method.
func nearestRank(samples []*surgev1.MonitorSample, q float64) float64 {
	vs := make([]float64, len(samples))
	for i, s := range samples {
		vs[i] = s.GetValue()
	}
	slices.Sort(vs)
	k := int(math.Ceil(q / 100 * float64(len(vs))))
	return vs[min(max(k, 1), len(vs))-1]
}

// lastInterval is the last interval that overlaps the first d of the run.
func (r *Run) lastInterval(d time.Duration) int64 {
	return int64(math.Ceil(float64(d)/float64(r.cfg.Interval))) - 1
}

// monitorSummaries is every monitor's summary over the intervals within
// duration, sorted by name.
func (r *Run) monitorSummaries(duration time.Duration) []*surgev1.MonitorSummary {
	var out []*surgev1.MonitorSummary
	for _, name := range slices.Sorted(maps.Keys(r.monitors)) {
		out = append(out, r.monitors[name].summary(name, r.lastInterval(duration)))
	}
	return out
}

// summary covers the intervals up to last, the run's last measured one: a
// sample taken while the run wound down past it measured no load.
func (m *monitor) summary(name string, last int64) *surgev1.MonitorSummary {
	s := &surgev1.MonitorSummary{Name: name, Query: m.query}
	for _, i := range slices.Sorted(maps.Keys(m.missing)) {
		if i <= last {
			s.Missing++
			s.LastError = m.missing[i]
		}
	}
	var sum float64
	for _, i := range slices.Sorted(maps.Keys(m.values)) {
		if i > last {
			break
		}
		v := m.values[i]
		if len(s.Values) == 0 || v < s.Min {
			s.Min = v
		}
		if len(s.Values) == 0 || v > s.Max {
			s.Max = v
		}
		sum += v
		s.Last = v
		s.Values = append(s.Values, &surgev1.MonitorSample{Interval: i, Value: v})
	}
	s.Samples = int64(len(s.Values))
	if s.Samples > 0 {
		s.Mean = sum / float64(s.Samples)
	}
	return s
}
