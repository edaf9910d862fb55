package sink

import (
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
	end, _ := runLines(run, &surgev1.RunSummary{Verdict: "pass"})
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
	for _, m := range []string{MeasurementHTTP, MeasurementInterval, MeasurementElapsed, MeasurementAgent} {
		if !measurements[m] {
			t.Errorf("no %s point among %v", m, measurements)
		}
	}
}
