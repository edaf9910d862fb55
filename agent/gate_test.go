package agent

import (
	"testing"
	"time"

	"github.com/surgeload/surge/agent/executor"
)

func deficitOf(t *testing.T, rec *executor.Recorder, scenario string) int64 {
	t.Helper()
	_, stats := rec.Swap(time.Now())
	for _, st := range stats {
		if st.GetScenario() == scenario {
			return st.GetDeficit()
		}
	}
	t.Fatalf("no stats for scenario %q", scenario)
	return 0
}

// Arrivals held while the gate is closed are neither sent nor dropped; they
// become deficit only when the controller confirms the run, and nothing when
// the agent is fenced (others took its share over).
func TestGateHoldsThenResolves(t *testing.T) {
	rec := executor.NewRecorder()
	g := newGate(nil)
	hold := g.holder(rec.Scenario("s"))
	if hold() {
		t.Fatal("an open gate held an arrival")
	}
	g.suspend()
	for i := 0; i < 5; i++ {
		if !hold() {
			t.Fatalf("closed gate let arrival %d through", i)
		}
	}
	if d := deficitOf(t, rec, "s"); d != 0 {
		t.Fatalf("deficit %d before the gate decided", d)
	}
	if !g.resume() {
		t.Fatal("resume of a suspended gate reported nothing to resume")
	}
	if d := deficitOf(t, rec, "s"); d != 5 {
		t.Fatalf("confirmed run: deficit %d, want the 5 held arrivals", d)
	}

	// Fenced: the gate never reopens; the held arrivals are never counted.
	fenced := executor.NewRecorder()
	g2 := newGate(nil)
	hold2 := g2.holder(fenced.Scenario("s"))
	g2.suspend()
	for i := 0; i < 3; i++ {
		hold2()
	}
	if d := deficitOf(t, fenced, "s"); d != 0 {
		t.Fatalf("fenced run: deficit %d, want 0", d)
	}
}
