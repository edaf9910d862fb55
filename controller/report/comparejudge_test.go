package report_test

import (
	"strings"
	"testing"
	"time"

	"github.com/surgeload/surge/controller/report"
	surgev1 "github.com/surgeload/surge/gen/surge/v1"
)

// judgeRun is 12 one-second intervals of `per` requests each, `fail` of
// them 5xx, latencies 1–3 ms scaled by scale; the last interval has half
// the requests (cut short).
func judgeRun(id string, per, fail int, scale int64, cpu float64) *report.RunData {
	d := &report.RunData{ID: id, Duration: 12 * time.Second, Interval: time.Second, Whole: map[string][]*surgev1.Series{},
		Monitors: []*surgev1.MonitorSummary{{Name: "cpu"}}}
	for i := range int64(12) {
		n := per
		if i == 11 {
			n = per / 2
		}
		ok, _ := series("home", "2xx", n-fail, 1000*scale+i, 3000*scale+i, 0)
		list := []*surgev1.Series{ok}
		if fail > 0 {
			bad, _ := series("home", "5xx", fail, 1000, 1500, int64(fail))
			list = append(list, bad)
		}
		d.Intervals = append(d.Intervals, report.Interval{Index: i, Regions: map[string][]*surgev1.Series{"us-east": list}})
		d.Whole["us-east"] = append(d.Whole["us-east"], list...)
		d.Monitors[0].Values = append(d.Monitors[0].Values, &surgev1.MonitorSample{Interval: i, Value: cpu + float64(i%3)/100})
	}
	return d
}

// TestJudgeSeries: the per-interval series are judged beside the latency
// distributions (the cut-short last interval left out); a critical metric
// that fails fails the judgement whatever the score; too few intervals
// are noted, not scored.
func TestJudgeSeries(t *testing.T) {
	a := judgeRun("A", 100, 0, 1, 0.2)
	b := judgeRun("B", 80, 5, 1, 0.6) // fewer requests, errors (fast ones), more CPU; no slower
	rules := []*surgev1.JudgeRule{{Metric: "latency_ms"}, {Metric: "rps", Direction: "decrease"},
		{Metric: "error_rate", Critical: true}, {Metric: "monitor:cpu", Direction: "either"}, {Metric: "p95_ms"}}
	j, err := report.Judge(a, b, "request", &surgev1.JudgeOptions{Rules: rules})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, m := range j.GetMetrics() {
		got[m.GetGroup()+" "+m.GetMetric()] = m.GetClass()
		if m.GetMetric() == "rps" && (m.GetACount() != 11 || m.GetAMedian() != 100) {
			t.Errorf("rps: %d intervals, median %v; want 11 (the last left out) at 100", m.GetACount(), m.GetAMedian())
		}
	}
	want := map[string]string{"all latency_ms": "pass", "request=home latency_ms": "pass", "all rps": "low", "all error_rate": "high",
		"all monitor:cpu": "high", "all p95_ms": "pass"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %q, want %q (all: %v)", k, got[k], v, got)
		}
	}
	if j.GetOutcome() != "fail" || !strings.Contains(strings.Join(j.GetNotes(), "\n"), "critical metric error_rate of all is high") {
		t.Errorf("outcome %s, notes %q", j.GetOutcome(), j.GetNotes())
	}
	short := judgeRun("S", 100, 0, 1, 0.2)
	short.Intervals = short.Intervals[:5]
	j, err = report.Judge(a, short, "request", &surgev1.JudgeOptions{Rules: []*surgev1.JudgeRule{{Metric: "rps"}}})
	if err != nil || len(j.GetMetrics()) != 0 || len(j.GetNotes()) != 1 || !strings.Contains(j.GetNotes()[0], "rps not judged: 11 and 4 intervals") {
		t.Errorf("short run: %v %v %v", j.GetMetrics(), j.GetNotes(), err)
	}
}
