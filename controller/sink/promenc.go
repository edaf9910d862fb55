package sink

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
	"github.com/surgeload/surge/hist"
)

// The series the Prometheus sink writes (docs/prometheus.md). Each carries
// run_id, plan, region, scenario, flow, request and status (empty ones
// left out) and the run's tags as labels; all are cumulative from the
// run's start, at the end of each interval.
const (
	PromRequests = "surge_http_requests_total"
	PromFailures = "surge_http_request_failures_total"
	// PromLatency is a native histogram of the latency from the intended
	// send time, in seconds (with classic buckets: also _bucket, _sum and
	// _count series).
	PromLatency = "surge_http_request_duration_seconds"
	// PromPhase is a native histogram per HTTP phase (label phase: dns,
	// connect, tls, ttfb, attempt), in seconds.
	PromPhase = "surge_http_request_phase_seconds"
	// PromMonitor is a gauge per plan monitor (label monitor): its value at
	// each interval's end.
	PromMonitor = "surge_monitor"
)

// promEncoder turns a run's intervals into cumulative series. It holds the
// last hold intervals back, so that a late snapshot's rewrite replaces
// them before they are written: each timestamp is written once, and the
// counters add up exactly. It runs in the write queue's goroutine only.
type promEncoder struct {
	schema  int32
	classic []float64
	hold    int64
	runs    map[string]*promRun
}

// promRun is one run's state: the intervals held back and every series's
// cumulative counters and histograms.
type promRun struct {
	held    map[int64]IntervalData
	written int64 // the last interval written; -1 before the first
	late    int64 // rewrites of intervals already written (left out)
	series  map[string]*promCum
}

// promCum is one series's cumulative state.
type promCum struct {
	labels             []label // sorted by name, without __name__
	requests, failures float64
	latency            *nativeHist
	phases             [hist.NumPhases]*nativeHist
	classic            *classicHist
}

func newPromEncoder(schema int32, classic []float64, hold int) *promEncoder {
	return &promEncoder{schema: schema, classic: classic, hold: int64(hold), runs: map[string]*promRun{}}
}

func (e *promEncoder) encode(ev event) ([]item, error) {
	switch {
	case ev.interval != nil:
		return e.interval(*ev.interval)
	case ev.runInfo != nil && ev.summary != nil: // the run ended: write what is held
		r := e.runs[ev.run]
		if r == nil {
			return nil, nil
		}
		delete(e.runs, ev.run)
		out, err := r.flush(e, math.MaxInt64)
		if it := monitorSeries(*ev.runInfo, ev.summary); it.points > 0 {
			out = append(out, it)
		}
		return out, err
	case ev.runInfo != nil:
		e.run(ev.run)
		return nil, nil
	case ev.agent != nil:
		return nil, nil
	}
	return nil, errEmptyEvent
}

func (e *promEncoder) run(id string) *promRun {
	r := e.runs[id]
	if r == nil {
		r = &promRun{held: map[int64]IntervalData{}, written: -1, series: map[string]*promCum{}}
		e.runs[id] = r
	}
	return r
}

// interval holds d (replacing an earlier emission of it) and writes the
// intervals that can no longer change.
func (e *promEncoder) interval(d IntervalData) ([]item, error) {
	r := e.run(d.Run.ID)
	if d.Index <= r.written {
		r.late++
		return nil, nil
	}
	r.held[d.Index] = d
	return r.flush(e, d.Index-e.hold)
}

// flush writes the held intervals up to index upTo, in order.
func (r *promRun) flush(e *promEncoder, upTo int64) ([]item, error) {
	var out []item
	for _, i := range slices.Sorted(maps.Keys(r.held)) {
		if i > upTo {
			break
		}
		d := r.held[i]
		delete(r.held, i)
		it, err := r.write(e, d)
		if err != nil {
			return out, err
		}
		r.written = i
		out = append(out, it)
	}
	return out, nil
}

// write adds interval d to the run's series and encodes every series at
// the interval's end.
func (r *promRun) write(e *promEncoder, d IntervalData) (item, error) {
	base := promRunLabels(d.Run)
	for region, list := range d.Regions {
		set := hist.NewSet()
		if _, err := set.MergeProto(list); err != nil {
			return item{}, fmt.Errorf("interval %d region %s: %w", d.Index, region, err)
		}
		for _, k := range set.Keys() {
			sr := set.Lookup(k)
			c := r.cum(e, base, region, k)
			c.requests += float64(sr.Counters.Requests)
			c.failures += float64(sr.Counters.Failures)
			c.latency.addHDR(sr.Latency)
			if c.classic != nil {
				c.classic.addHDR(sr.Latency)
			}
			for p, h := range sr.Phases {
				if h == nil || h.TotalCount() == 0 {
					continue
				}
				if c.phases[p] == nil {
					c.phases[p] = newNativeHist(e.schema)
				}
				c.phases[p].addHDR(h)
			}
		}
	}
	ts := d.Start.Add(d.Run.Interval).UnixMilli()
	var b []byte
	n := 0
	for _, key := range slices.Sorted(maps.Keys(r.series)) {
		var k int
		b, k = r.series[key].append(b, ts)
		n += k
	}
	return item{data: b, points: n}, nil
}

// monitorSeries is each of the run's monitors as the gauge surge_monitor
// (label monitor), one sample per interval at its end, when the sample was
// taken. They go with the final summary: a sample arrives after its
// interval was emitted.
func monitorSeries(info RunInfo, sum *surgev1.RunSummary) item {
	var b []byte
	n := 0
	for _, m := range sum.GetMonitors() {
		ls := append(promRunLabels(info), label{"__name__", PromMonitor}, label{"monitor", m.GetName()})
		slices.SortFunc(ls, func(a, b label) int { return strings.Compare(a.name, b.name) })
		for _, v := range m.GetValues() {
			b = appendSeries(b, ls, v.GetValue(), nil, info.Start.Add(time.Duration(v.GetInterval()+1)*info.Interval).UnixMilli())
			n++
		}
	}
	return item{data: b, points: n}
}

// cum returns the cumulative state of a series, made on first sight.
func (r *promRun) cum(e *promEncoder, base []label, region string, k hist.Key) *promCum {
	ls := append(slices.Clone(base), label{"region", region}, label{"scenario", k.Scenario},
		label{"flow", k.Flow}, label{"request", k.Request}, label{"status", k.Status})
	ls = slices.DeleteFunc(ls, func(l label) bool { return l.value == "" })
	slices.SortFunc(ls, func(a, b label) int { return strings.Compare(a.name, b.name) })
	var sb strings.Builder
	for _, l := range ls {
		sb.WriteString(l.name + "\x00" + l.value + "\x00")
	}
	key := sb.String()
	c := r.series[key]
	if c == nil {
		c = &promCum{labels: ls, latency: newNativeHist(e.schema)}
		if len(e.classic) > 0 {
			c.classic = newClassicHist(e.classic)
		}
		r.series[key] = c
	}
	return c
}

// promRunLabels are the labels of every series of a run: its id, plan and
// tags (plan.CheckTag keeps tag keys valid label names, not surge's own).
func promRunLabels(info RunInfo) []label {
	ls := []label{{"run_id", info.ID}, {"plan", info.PlanName}}
	for _, k := range slices.Sorted(maps.Keys(info.Tags)) {
		ls = append(ls, label{k, info.Tags[k]})
	}
	return ls
}

// append encodes the series's points at ts and says how many.
func (c *promCum) append(b []byte, ts int64) ([]byte, int) {
	with := func(name string, extra ...label) []label {
		ls := append([]label{{"__name__", name}}, c.labels...)
		ls = append(ls, extra...)
		slices.SortFunc(ls, func(a, b label) int { return strings.Compare(a.name, b.name) })
		return ls
	}
	n := 3
	b = appendSeries(b, with(PromRequests), c.requests, nil, ts)
	b = appendSeries(b, with(PromFailures), c.failures, nil, ts)
	b = appendSeries(b, with(PromLatency), 0, encodeNative(c.latency, ts), ts)
	for p, h := range c.phases {
		if h != nil {
			b = appendSeries(b, with(PromPhase, label{"phase", hist.Phase(p).String()}), 0, encodeNative(h, ts), ts)
			n++
		}
	}
	if ch := c.classic; ch != nil {
		var cum uint64
		for i, bound := range ch.bounds {
			cum += ch.counts[i]
			le := strings.TrimSuffix(fmt.Sprintf("%g", bound), ".0")
			b = appendSeries(b, with(PromLatency+"_bucket", label{"le", le}), float64(cum), nil, ts)
		}
		b = appendSeries(b, with(PromLatency+"_bucket", label{"le", "+Inf"}), float64(ch.count), nil, ts)
		b = appendSeries(b, with(PromLatency+"_sum"), ch.sum, nil, ts)
		b = appendSeries(b, with(PromLatency+"_count"), float64(ch.count), nil, ts)
		n += len(ch.bounds) + 3
	}
	return b, n
}
