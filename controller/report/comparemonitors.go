package report

import (
	"maps"
	"math"
	"slices"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
)

// MonitorGroup prefixes a monitor's group in a comparison: monitor=NAME.
const MonitorGroup = "monitor="

// MonitorDiffs puts two sides' monitors (two runs', or production's and a
// run's) side by side, by name: min,
// mean, max and last over their intervals. They never diverge: a
// resource's level is context for the comparison (staging's CPU against
// production's), not a result within a tolerance.
func MonitorDiffs(a, b []*surgev1.MonitorSummary) []*surgev1.MetricDiff {
	byName := func(ms []*surgev1.MonitorSummary) map[string]*surgev1.MonitorSummary {
		out := make(map[string]*surgev1.MonitorSummary, len(ms))
		for _, m := range ms {
			if m.GetSamples() > 0 {
				out[m.GetName()] = m
			}
		}
		return out
	}
	ma, mb := byName(a), byName(b)
	names := slices.Sorted(maps.Keys(ma))
	for name := range mb {
		if _, ok := ma[name]; !ok {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	var out []*surgev1.MetricDiff
	for _, name := range names {
		x, y := ma[name], mb[name]
		for _, f := range []struct {
			metric string
			get    func(*surgev1.MonitorSummary) float64
		}{
			{"monitor_min", (*surgev1.MonitorSummary).GetMin},
			{"monitor_mean", (*surgev1.MonitorSummary).GetMean},
			{"monitor_max", (*surgev1.MonitorSummary).GetMax},
			{"monitor_last", (*surgev1.MonitorSummary).GetLast},
		} {
			d := &surgev1.MetricDiff{Group: MonitorGroup + name, Metric: f.metric, APresent: x != nil, BPresent: y != nil,
				A: f.get(x), B: f.get(y)}
			d.RelDiff = RelDiff(d.A, d.B)
			if x == nil || y == nil {
				d.RelDiff = math.NaN()
			}
			out = append(out, d)
		}
	}
	return out
}
