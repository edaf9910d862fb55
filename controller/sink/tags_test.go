package sink

import (
	"fmt"
	"strings"
	"testing"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
)

// A run's tags are on every point it writes: the interval's, an agent's
// and the run annotations, beside run and plan.
func TestRunTagsOnEveryPoint(t *testing.T) {
	run := testRun
	run.Tags = map[string]string{"environment": "staging", "commit": "abc123"}
	d := intervalData(2)
	d.Run = run
	d.Progress = &surgev1.Progress{All: &surgev1.RegionProgress{Region: "all", TargetRps: 10}}
	iv, n, err := intervalLines(d)
	if err != nil {
		t.Fatal(err)
	}
	ag, _ := agentLines(AgentData{Run: run, Agent: "a1", Region: "eu", Start: d.Start, Stats: &surgev1.AgentStats{}})
	start, _ := runLines(run, nil)
	end, _ := runLines(run, &surgev1.RunSummary{Verdict: "pass", Monitors: []*surgev1.MonitorSummary{{Name: "cpu",
		Values: []*surgev1.MonitorSample{{Interval: 0, Value: 0.25}, {Interval: 2, Value: 0.5}}}}})
	lines := strings.Split(strings.TrimSpace(string(iv)+string(ag)+string(start)+string(end)), "\n")
	if len(lines) < n+3 {
		t.Fatalf("%d lines, want at least %d", len(lines), n+3)
	}
	measurements := map[string]bool{}
	for _, s := range lines {
		l := parseLine(t, s)
		measurements[l.measurement] = true
		if l.tags["environment"] != "staging" || l.tags["commit"] != "abc123" || l.tags["run"] != "r1" || l.tags["plan"] != "p" {
			t.Errorf("%s: tags %v, want the run's environment and commit beside run and plan", l.measurement, l.tags)
		}
	}
	for _, m := range []string{MeasurementHTTP, MeasurementInterval, MeasurementElapsed, MeasurementAgent, MeasurementMonitor} {
		if !measurements[m] {
			t.Errorf("no %s point among %v", m, measurements)
		}
	}
}

// The run's end writes each monitor's value per interval, stamped at the
// interval's start.
func TestMonitorLines(t *testing.T) {
	b, _ := runLines(testRun, &surgev1.RunSummary{Monitors: []*surgev1.MonitorSummary{{Name: "cpu",
		Values: []*surgev1.MonitorSample{{Interval: 0, Value: 0.25}, {Interval: 2, Value: 0.5}}}}})
	var got []string
	for _, s := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if l := parseLine(t, s); l.measurement == MeasurementMonitor {
			got = append(got, fmt.Sprintf("%s %s %s %d", l.tags["monitor"], l.fields["value"], l.fields["interval"], l.ts))
		}
	}
	want := []string{"cpu 0.25 0i 1700000000000000000", "cpu 0.5 2i 1700000002000000000"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("monitor points\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
