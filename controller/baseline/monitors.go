package baseline

import (
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
	"github.com/surgeload/surge/internal/promapi"
)

// monitorPoints is about how many points a monitor's query is evaluated
// at over the range (a subquery's resolution), so an hour reads as the
// run's 5-second samples would, and a week stays cheap.
const monitorPoints = 720

// Monitors evaluates a run's monitor queries (name → PromQL) over the
// baseline's range, as the run sampled them over its own: min, mean and
// max over the range's points and the latest of them. A query with no
// value in the range has no summary and is named in the notes.
func (p *Prometheus) Monitors(ctx context.Context, queries map[string]string) ([]*surgev1.MonitorSummary, []string, error) {
	if !p.To.After(p.From) {
		return nil, nil, fmt.Errorf("prometheus baseline: the range %s to %s is empty", p.From.Format(time.RFC3339), p.To.Format(time.RFC3339))
	}
	api := promapi.Client{URL: p.URL, HTTP: p.Client}
	rng := p.To.Sub(p.From).Truncate(time.Second)
	step := max((rng / monitorPoints).Truncate(time.Second), time.Second)
	var out []*surgev1.MonitorSummary
	var notes []string
	for _, name := range slices.Sorted(maps.Keys(queries)) {
		q := queries[name]
		m := &surgev1.MonitorSummary{Name: name, Query: q}
		vals := map[string]float64{}
		for _, f := range []string{"count_over_time", "min_over_time", "avg_over_time", "max_over_time", "last_over_time"} {
			expr := fmt.Sprintf("%s((%s)[%ds:%ds])", f, q, int(rng.Seconds()), int(step.Seconds()))
			samples, err := api.Query(ctx, expr, p.To)
			if err != nil {
				return nil, nil, fmt.Errorf("prometheus baseline: monitor %s: %s: %w", name, expr, err)
			}
			if len(samples) > 1 {
				return nil, nil, fmt.Errorf("prometheus baseline: monitor %s: %s gives %d series, want one: aggregate them", name, expr, len(samples))
			}
			if len(samples) == 1 && !math.IsNaN(samples[0].Value) && !math.IsInf(samples[0].Value, 0) {
				vals[f] = samples[0].Value
			}
		}
		if vals["count_over_time"] == 0 {
			notes = append(notes, fmt.Sprintf("monitor %s: no value in the baseline's range: %s", name, q))
			continue
		}
		m.Samples = int64(vals["count_over_time"])
		m.Min, m.Mean, m.Max = vals["min_over_time"], vals["avg_over_time"], vals["max_over_time"]
		m.Last = vals["last_over_time"]
		out = append(out, m)
	}
	return out, notes, nil
}
