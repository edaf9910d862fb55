package report

import (
	"fmt"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
)

// CompareBaseline compares run b with production figures, endpoint by
// endpoint (baseline endpoints match b's request names; "all" or "*" is the
// whole run): p50, p95, p99, error rate and rate. Baseline figures carry no
// sample count: they are taken as exact, so only the run's own sample size
// makes a difference too few values or within noise.
func CompareBaseline(rows []*surgev1.BaselineRow, b *RunData, opts CompareOptions) (*surgev1.CompareResponse, error) {
	opts.By = ByRequest
	opts, err := opts.normalized()
	if err != nil {
		return nil, err
	}
	resp := &surgev1.CompareResponse{RunA: "baseline", RunB: b.ID, Tolerance: opts.Tolerance, By: opts.By}
	gb, err := groups(b.Whole, ByRequest)
	if err != nil {
		return nil, fmt.Errorf("run %s: %w", b.ID, err)
	}
	for _, row := range rows {
		name := "request=" + row.GetEndpoint()
		if e := row.GetEndpoint(); e == "all" || e == "*" {
			name = "all"
		}
		a := metricValues{present: true, exact: true, values: map[string]float64{
			"p50_ms":     row.GetP50Ms(),
			"p95_ms":     row.GetP95Ms(),
			"p99_ms":     row.GetP99Ms(),
			"error_rate": row.GetErrorRate(),
			"rps":        row.GetRpm() / 60,
		}}
		vb := valuesOf(gb[name], b.Duration.Seconds())
		// Only the baseline's columns are compared.
		for m := range vb.values {
			if _, ok := a.values[m]; !ok {
				delete(vb.values, m)
			}
		}
		resp.Metrics = diffGroup(resp.Metrics, &surgev1.MetricDiff{Group: name}, a, vb, opts.Tolerance, true)
	}
	for _, m := range resp.Metrics {
		if m.Diverged {
			resp.Diverged++
		}
	}
	return resp, nil
}
