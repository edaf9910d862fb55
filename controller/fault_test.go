package controller

import (
	"context"
	"strings"
	"testing"
	"time"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
	"github.com/surgeload/surge/hist"
)

// sendCounted sends a snapshot of n requests that reports started and
// dropped arrivals of scenario s (dropped ones are deficit too, as agents
// count them).
func (f *fakeAgent) sendCounted(runID string, epoch uint64, interval int64, final bool, n, started, dropped int64) uint64 {
	f.seq++
	set := hist.NewSet()
	sr := set.Get(hist.Key{Scenario: "s", Request: "get", Status: "2xx"})
	for i := range n {
		if err := sr.Latency.RecordValue(1000 + i); err != nil {
			f.t.Fatalf("record: %v", err)
		}
		sr.Counters.Requests++
	}
	f.send(&surgev1.AgentMessage{Msg: &surgev1.AgentMessage_Snapshot{Snapshot: &surgev1.Snapshot{
		RunId: runID, AgentId: f.id, Seq: f.seq, Epoch: epoch, Interval: interval, Final: final,
		Series: set.ToProto(),
		Scenarios: []*surgev1.ScenarioStats{{Scenario: "s", TargetRate: 25, Started: started, Completed: started,
			Dropped: dropped, Deficit: dropped}},
	}}})
	return f.seq
}

const lossPlan = `name: loss
interval: 200ms
scenarios:
  s:
    executor: constant-arrival-rate
    rate: 50
    duration: 2s
    pre_allocated_vus: 2
    graceful_stop: 0s
    requests:
      - url: http://127.0.0.1:1/
        name: get
`

// lossRate and lossTotal are lossPlan's numbers: 50/s for 2s.
const lossRate, lossTotal = 50, 100

// dueOfShare is how many of a share's own arrivals fall due by elapsed,
// from the plan's arithmetic: arrival j of a share of a out of lossTotal is
// the scenario's arrival (j+½)·lossTotal/a, due at that index over lossRate.
func dueOfShare(a int64, elapsed time.Duration) int64 {
	var n int64
	for j := range a {
		if time.Duration((float64(j)+0.5)*lossTotal/float64(a)/lossRate*float64(time.Second)) <= elapsed {
			n++
		}
	}
	return n
}

// TestLossDeficitAccountsForThePlan: an agent reports part of its arrivals
// and is lost; the survivor takes over the arrivals not yet due at the
// reshare. The arrivals that fell due in between, which nobody sent, are
// the lost part's deficit, so requests + deficit (dropped included) equal
// the plan exactly; a controller restored from the journal counts the
// same deficit. What was due at the reshare comes from the plan's
// arithmetic over the test's own clock: the reshare falls after the
// stream's end plus the loss confirmation and before the survivor's
// reassign arrives.
func TestLossDeficitAccountsForThePlan(t *testing.T) {
	tc := startController(t, t.TempDir())
	a := newFakeAgent(t, tc.Addr(), "a1", "us-east", "")
	b := newFakeAgent(t, tc.Addr(), "b1", "us-east", "")
	tc.waitAgents(t, 2)
	resp, err := submit(t, tc, lossPlan)
	if err != nil {
		t.Fatal(err)
	}
	run := resp.GetRunId()
	asA, asB := a.waitAssign(), b.waitAssign()
	ownA := asA.GetShare().GetScenarios()[0].GetArrivals()
	ownB := asB.GetShare().GetScenarios()[0].GetArrivals()
	if ownA+ownB != lossTotal {
		t.Fatalf("shares %d + %d, plan %d", ownA, ownB, lossTotal)
	}
	start := time.Unix(0, asB.GetControllerStartUnixNs())
	updates := watch(t, tc, run)
	// b sent 6 and dropped 1 of its arrivals, then its stream ends.
	const bSent, bDropped = 6, 1
	b.waitAck(b.sendCounted(run, 1, 0, false, bSent, bSent, bDropped))
	lostAt := time.Now()
	b.close()

	// a gets b's arrivals not yet due at the reshare.
	re := a.waitAssign()
	seenAt := time.Now()
	if re.GetEpoch() != 2 || len(re.GetShare().GetTakeovers()) != 1 {
		t.Fatalf("reshare assign %v", re)
	}
	dueLo := dueOfShare(ownB, lostAt.Add(tc.cfg.AgentLossConfirm).Sub(start))
	dueHi := dueOfShare(ownB, seenAt.Sub(start))
	tk := re.GetShare().GetTakeovers()[0]
	takeover := (tk.GetArrivals() - tk.GetArrivalFirst() + tk.GetArrivalStride() - 1) / max(tk.GetArrivalStride(), 1)
	t.Logf("measured: b1 lost %s after its stream ended; %d..%d of its %d arrivals due by the plan at the reshare, the takeover starts at %d; %d reported handled",
		seenAt.Sub(lostAt).Round(time.Millisecond), dueLo, dueHi, ownB, tk.GetArrivalFirst(), bSent+bDropped)
	if dueLo <= bSent+bDropped {
		t.Fatalf("only %d of b1's arrivals due by its loss: the test needs more than the %d it handled", dueLo, bSent+bDropped)
	}
	if tk.GetArrivalStride() != 1 || tk.GetArrivals() != ownB || tk.GetArrivalFirst() < dueLo || tk.GetArrivalFirst() > dueHi {
		t.Fatalf("takeover part %v: want b1's arrivals from the first not due at the reshare (%d..%d) to its %d", tk, dueLo, dueHi, ownB)
	}
	gapLo, gapHi := dueLo-(bSent+bDropped), dueHi-(bSent+bDropped)

	// A controller restored from the journal now counts the same deficit.
	live, err := tc.runs.Get(context.Background(), &surgev1.GetRunRequest{RunId: run})
	if err != nil {
		t.Fatal(err)
	}
	runs, errs := tc.journal.Load()
	if len(errs) != 0 || len(runs) != 1 {
		t.Fatalf("journal: %d runs, errors %v", len(runs), errs)
	}
	restored, err := tc.restoreRun(runs[0], time.Now())
	if err != nil {
		t.Fatal(err)
	}
	again := restored.summary(StatusRunning, time.Now())
	if gap := live.GetAll().GetDeficit() - bDropped; gap < gapLo || gap > gapHi || again.GetAll().GetDeficit() != live.GetAll().GetDeficit() {
		t.Errorf("deficit live %d, restored %d, want %d..%d", live.GetAll().GetDeficit(), again.GetAll().GetDeficit(), gapLo+bDropped, gapHi+bDropped)
	}

	// a sends its own share and the takeover, all of it.
	a.waitAck(a.sendCounted(run, 2, 9, true, ownA+takeover, ownA+takeover, 0))
	sum, _ := finalSummary(t, updates)
	all := sum.GetAll()
	t.Logf("measured: requests %d + deficit %d (of which dropped %d) = %d, plan 100; notes %q",
		all.GetRequests(), all.GetDeficit(), all.GetDroppedIterations(), all.GetRequests()+all.GetDeficit(), sum.GetNotes())
	if all.GetRequests()+all.GetDeficit() != lossTotal {
		t.Errorf("requests %d + deficit %d != plan %d", all.GetRequests(), all.GetDeficit(), lossTotal)
	}
	if got := all.GetDeficit() - bDropped; got < gapLo || got > gapHi {
		t.Errorf("loss deficit %d, want %d..%d (due %d..%d - handled %d)", got, gapLo, gapHi, dueLo, dueHi, bSent+bDropped)
	}
	if sum.GetScenarios()["s"].GetDeficit() != all.GetDeficit() || sum.GetRegions()["us-east"].GetDeficit() != all.GetDeficit() {
		t.Errorf("deficit by scenario %d, region %d, all %d", sum.GetScenarios()["s"].GetDeficit(),
			sum.GetRegions()["us-east"].GetDeficit(), all.GetDeficit())
	}
	notes := strings.Join(sum.GetNotes(), "\n")
	for _, want := range []string{"deficit window", "arrivals of lost agent b1 (us-east) due by its loss"} {
		if !strings.Contains(notes, want) {
			t.Errorf("notes lack %q: %s", want, notes)
		}
	}
}

// TestLossDeficitOpenEnded: with on_agent_loss: continue, everything the
// lost agent had not handled by the run's end is deficit.
func TestLossDeficitOpenEnded(t *testing.T) {
	tc := startController(t, t.TempDir())
	a := newFakeAgent(t, tc.Addr(), "a1", "us-east", "")
	b := newFakeAgent(t, tc.Addr(), "b1", "us-east", "")
	tc.waitAgents(t, 2)
	resp, err := submit(t, tc, lossPlan+"on_agent_loss: continue\n")
	if err != nil {
		t.Fatal(err)
	}
	run := resp.GetRunId()
	asA, asB := a.waitAssign(), b.waitAssign()
	ownA := asA.GetShare().GetScenarios()[0].GetArrivals()
	ownB := asB.GetShare().GetScenarios()[0].GetArrivals()
	updates := watch(t, tc, run)
	b.waitAck(b.sendCounted(run, 1, 0, false, 4, 4, 0))
	b.close()
	// a finishes after the scenario's planned end (the schedule, not a
	// condition to poll), so all of b's share was due by then.
	time.Sleep(time.Until(time.Unix(0, asA.GetControllerStartUnixNs()).Add(2100 * time.Millisecond)))
	a.waitAck(a.sendCounted(run, 1, 9, true, ownA, ownA, 0))
	sum, _ := finalSummary(t, updates)
	all := sum.GetAll()
	t.Logf("measured: requests %d + deficit %d, plan 100", all.GetRequests(), all.GetDeficit())
	if all.GetDeficit() != ownB-4 || all.GetRequests()+all.GetDeficit() != 100 {
		t.Errorf("requests %d, deficit %d: want deficit %d and a sum of 100", all.GetRequests(), all.GetDeficit(), ownB-4)
	}
}

// TestRefusedTakeoverIsDeficit: the survivor refuses the takeover part (as
// an agent over its --max-rate does); nobody sends those arrivals, so they
// are deficit, and requests + deficit still equal the plan.
func TestRefusedTakeoverIsDeficit(t *testing.T) {
	tc := startController(t, t.TempDir())
	a := newFakeAgent(t, tc.Addr(), "a1", "us-east", "")
	b := newFakeAgent(t, tc.Addr(), "b1", "us-east", "")
	tc.waitAgents(t, 2)
	resp, err := submit(t, tc, lossPlan)
	if err != nil {
		t.Fatal(err)
	}
	run := resp.GetRunId()
	asA, _ := a.waitAssign(), b.waitAssign()
	ownA := asA.GetShare().GetScenarios()[0].GetArrivals()
	updates := watch(t, tc, run)
	const bSent = 5
	b.waitAck(b.sendCounted(run, 1, 0, false, bSent, bSent, 0))
	b.close()

	re := a.waitAssign()
	if len(re.GetShare().GetTakeovers()) != 1 {
		t.Fatalf("reshare assign %v", re)
	}
	tk := re.GetShare().GetTakeovers()[0]
	a.send(&surgev1.AgentMessage{Msg: &surgev1.AgentMessage_RunEvent{RunEvent: &surgev1.RunEvent{
		RunId: run, Epoch: re.GetEpoch(), Kind: surgev1.RunEvent_KIND_REJECTED,
		Message: "over --max-rate", PartId: tk.GetPartId(),
	}}})
	// a keeps running its own share, and only that.
	a.waitAck(a.sendCounted(run, re.GetEpoch(), 9, true, ownA, ownA, 0))
	sum, _ := finalSummary(t, updates)
	all := sum.GetAll()
	refused := (tk.GetArrivals() - tk.GetArrivalFirst() + tk.GetArrivalStride() - 1) / tk.GetArrivalStride()
	t.Logf("measured: requests %d + deficit %d = %d, plan 100; refused part %d arrivals; status %s; notes %q",
		all.GetRequests(), all.GetDeficit(), all.GetRequests()+all.GetDeficit(), refused, sum.GetStatus(), sum.GetNotes())
	if sum.GetStatus() != StatusFinished {
		t.Errorf("status %s: a refused takeover part must not fail the run", sum.GetStatus())
	}
	if all.GetRequests()+all.GetDeficit() != 100 {
		t.Errorf("requests %d + deficit %d != plan 100", all.GetRequests(), all.GetDeficit())
	}
	if notes := strings.Join(sum.GetNotes(), "\n"); !strings.Contains(notes, "refused takeover part "+tk.GetPartId()) {
		t.Errorf("notes lack the refusal: %s", notes)
	}
}
