package aggregate

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/surgeload/surge/plan"
)

// TestMonitorThresholdsAndSummary: monitor thresholds aggregate the
// interval values (a failed interval is missing, not zero), a resample
// replaces an interval's value, and the summary lists every interval up
// to the last measured one.
func TestMonitorThresholdsAndSummary(t *testing.T) {
	spec := func(agg string, pct float64, op string, v float64) plan.ThresholdSpec {
		return plan.ThresholdSpec{Metric: plan.MonitorMetric, Tags: map[string]string{plan.MonitorMetric: "cpu"},
			Agg: agg, Percentile: pct, Op: op, Value: v, Key: "monitor:cpu", Expr: agg}
	}
	r := New(Config{RunID: "run", Start: time.Unix(1000, 0), Interval: time.Second, MaxInterval: 20, Epoch: 1,
		Agents: map[string]string{"a": "us"},
		Thresholds: []plan.ThresholdSpec{
			spec("max", 0, "<", 0.8), spec("min", 0, ">", 0.15), spec("avg", 0, "<", 1), spec("med", 0, "==", 0.4),
			spec("p", 90, "==", 0.9), spec("last", 0, "==", 0.4),
		}})
	if res := r.Evaluate(time.Second); res[0].HasData || res[0].OK || !math.IsNaN(res[0].Value) {
		t.Fatalf("before any sample: %+v, want no data", res[0])
	}
	if _, err := r.Add(snap("a", 1, 4, true, []int64{1000})); err != nil {
		t.Fatal(err)
	}
	q := "sum(rate(cpu[1m]))"
	r.SetMonitor("cpu", q, 0, 0.2, nil)
	r.SetMonitor("cpu", q, 1, 0.95, nil) // replaced below
	r.SetMonitor("cpu", q, 1, 0.9, nil)
	r.SetMonitor("cpu", q, 2, 0, errors.New("timeout"))
	r.SetMonitor("cpu", q, 3, 0.6, nil)
	r.SetMonitor("cpu", q, 4, 0.4, nil)
	r.SetMonitor("cpu", q, 5, 0.99, nil) // past the last measured interval
	r.SetMonitor("cpu", q, 6, 0, errors.New("late"))
	want := []struct {
		v  float64
		ok bool
	}{{0.9, false}, {0.2, true}, {0.525, true}, {0.4, true}, {0.9, true}, {0.4, true}}
	for i, res := range r.Evaluate(5 * time.Second) {
		if !res.HasData || math.Abs(res.Value-want[i].v) > 1e-12 || res.OK != want[i].ok {
			t.Errorf("%s: value %v ok %v, want %v %v", res.Spec.Agg, res.Value, res.OK, want[i].v, want[i].ok)
		}
	}
	if got := r.MonitorLatest()["cpu"]; got != 0.99 {
		t.Errorf("latest = %v, want 0.99 (live: the newest sample)", got)
	}
	ms := r.Summary(5 * time.Second).GetMonitors()
	if len(ms) != 1 {
		t.Fatalf("monitors %v", ms)
	}
	m := ms[0]
	if m.GetName() != "cpu" || m.GetQuery() != q || m.GetSamples() != 4 || m.GetMissing() != 1 || m.GetLastError() != "timeout" ||
		m.GetMin() != 0.2 || m.GetMax() != 0.9 || m.GetLast() != 0.4 || math.Abs(m.GetMean()-0.525) > 1e-12 {
		t.Errorf("summary %v", m)
	}
	var idx []int64
	for _, v := range m.GetValues() {
		idx = append(idx, v.GetInterval())
	}
	if len(idx) != 4 || idx[0] != 0 || idx[1] != 1 || idx[2] != 3 || idx[3] != 4 {
		t.Errorf("intervals %v, want [0 1 3 4]", idx)
	}
	// A late good sample for interval 2 replaces its error.
	r.SetMonitor("cpu", q, 2, 0.5, nil)
	if m := r.Summary(5 * time.Second).GetMonitors()[0]; m.GetMissing() != 0 || m.GetSamples() != 5 || m.GetLastError() != "" {
		t.Errorf("after resample: %v", m)
	}
}
