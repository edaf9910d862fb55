package controller

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
)

// Through the controller: every snapshot an agent sees acked is in the
// journal at that moment, a duplicate is acked too, and the run's journal
// entries are gone once it ends.
func TestAckedSnapshotsAreJournaled(t *testing.T) {
	tc := startController(t, t.TempDir())
	us := newFakeAgent(t, tc.Addr(), "a-us", "us-east", "")
	eu := newFakeAgent(t, tc.Addr(), "a-eu", "eu-west", "")
	tc.waitAgents(t, 2)
	resp, err := submit(t, tc, twoRegionPlan)
	if err != nil {
		t.Fatal(err)
	}
	run := resp.GetRunId()
	us.waitAssign()
	eu.waitAssign()
	updates := watch(t, tc, run)
	journaled := func(agent string, seq uint64) bool {
		runs, errs := tc.journal.Load() // after the writes queued before it
		if len(errs) > 0 || len(runs) != 1 {
			t.Fatalf("journal: %d runs, errors %v", len(runs), errs)
		}
		return slices.ContainsFunc(runs[0].Snaps, func(s *surgev1.Snapshot) bool {
			return s.GetAgentId() == agent && s.GetSeq() == seq
		})
	}
	// Sent back to back, so several wait for the same commit.
	for i := range int64(4) {
		us.snapshot(run, i, false, values(1000, 5), 0)
		eu.snapshot(run, i, false, values(2000, 5), 0)
	}
	for _, f := range []*fakeAgent{us, eu} {
		for range 4 {
			select {
			case a := <-f.acks:
				if !journaled(f.id, a.GetSeq()) {
					t.Errorf("agent %s: seq %d acked before it was journaled", f.id, a.GetSeq())
				}
			case <-time.After(waitFor):
				t.Fatalf("agent %s: missing acks", f.id)
			}
		}
	}
	logPath := filepath.Join(tc.cfg.DataDir, "journal", run+".snaps")
	if _, err := os.Stat(logPath); err != nil {
		t.Fatalf("the running run's snapshot log: %v", err)
	}
	// A resent snapshot (a duplicate) is acked, not journaled again.
	us.send(&surgev1.AgentMessage{Msg: &surgev1.AgentMessage_Snapshot{Snapshot: &surgev1.Snapshot{
		RunId: run, AgentId: us.id, Seq: 1, Epoch: 1, Interval: 0}}})
	us.waitAck(1)
	for _, f := range []*fakeAgent{us, eu} {
		f.waitAck(f.snapshot(run, 4, true, values(1000, 5), 0))
	}
	if sum, _ := finalSummary(t, updates); sum.GetStatus() != StatusFinished {
		t.Fatalf("status %s", sum.GetStatus())
	}
	deadline := time.Now().Add(waitFor)
	for {
		runs, errs := tc.journal.Load()
		if len(runs) == 0 && len(errs) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("journal after the run: %d runs, errors %v", len(runs), errs)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := os.Stat(logPath); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the ended run's snapshot log is still there: %v", err)
	}
	st := tc.journal.Stats()
	t.Logf("%d journal writes in %d group commits", st.Writes, st.Commits)
	if n := st.Failed + st.AfterDelete; n != 0 {
		t.Errorf("%d journal writes failed or were skipped", n)
	}
}
