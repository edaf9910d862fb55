package controller

import (
	"testing"
	"time"

	"github.com/surgeload/surge/controller/store"
	surgev1 "github.com/surgeload/surge/gen/surge/v1"
)

// pollIntervals polls the run store until cond holds for run's records.
func pollIntervals(t *testing.T, st *store.Store, run, what string, cond func([]store.IntervalRecord) bool) []store.IntervalRecord {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		recs, err := st.Intervals(run)
		if err == nil && cond(recs) {
			return recs
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v (records %d, err %v)", what, waitFor, len(recs), err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSinksGetIntervalsAndLateRewrites: every emitted interval reaches the
// run store sink; a snapshot arriving after its interval was emitted makes
// the controller send the interval again, so the stored record (and an
// InfluxDB point) is rewritten with the late data, keeping its first
// emission time.
func TestSinksGetIntervalsAndLateRewrites(t *testing.T) {
	tc := startController(t, t.TempDir())
	us := newFakeAgent(t, tc.Addr(), "a-us", "us-east", "")
	eu := newFakeAgent(t, tc.Addr(), "a-eu", "eu-west", "")
	tc.waitAgents(t, 2)
	resp, err := submit(t, tc, twoRegionPlan)
	if err != nil {
		t.Fatalf("submit: %v", err)
	}
	run := resp.GetRunId()
	us.waitAssign()
	eu.waitAssign()
	updates := watch(t, tc, run)

	us.waitAck(us.snapshot(run, 0, false, values(1000, 20), 0))
	// eu is silent: interval 0 is emitted after the grace with us only.
	first := pollIntervals(t, tc.store, run, "interval 0 emitted", func(r []store.IntervalRecord) bool { return len(r) > 0 })
	if _, ok := first[0].Regions["eu-west"]; ok || first[0].Index != 0 {
		t.Fatalf("first record %d regions %v", first[0].Index, first[0].Regions)
	}
	eu.waitAck(eu.snapshot(run, 0, false, values(50_000, 10), 0)) // late
	re := pollIntervals(t, tc.store, run, "interval 0 rewritten", func(r []store.IntervalRecord) bool {
		return len(r) > 0 && len(r[0].Regions["eu-west"]) > 0
	})
	if got := re[0].Regions["eu-west"][0].GetCounters().GetRequests(); got != 10 {
		t.Errorf("rewritten eu-west requests %d, want 10", got)
	}
	if !re[0].EmittedAt.Equal(first[0].EmittedAt) {
		t.Errorf("rewrite changed the emission time %v → %v", first[0].EmittedAt, re[0].EmittedAt)
	}
	for i := int64(1); i < 5; i++ {
		us.waitAck(us.snapshot(run, i, i == 4, values(1000, 20), 0))
		eu.waitAck(eu.snapshot(run, i, i == 4, values(50_000, 10), 0))
	}
	us.event(run, surgev1.RunEvent_KIND_FINISHED, "")
	eu.event(run, surgev1.RunEvent_KIND_FINISHED, "")
	sum, _ := finalSummary(t, updates)
	recs := pollIntervals(t, tc.store, run, "all intervals", func(r []store.IntervalRecord) bool { return len(r) == 5 })
	var total int64
	for _, r := range recs {
		if !r.Start.Equal(time.UnixMilli(sum.GetStartedAtUnixMs()).Add(time.Duration(r.Index) * 200 * time.Millisecond)) {
			t.Errorf("record %d start %v", r.Index, r.Start)
		}
		for _, list := range r.Regions {
			for _, s := range list {
				total += s.GetCounters().GetRequests()
			}
		}
	}
	if total != sum.GetAll().GetRequests() {
		t.Errorf("stored intervals hold %d requests, summary %d", total, sum.GetAll().GetRequests())
	}
}
