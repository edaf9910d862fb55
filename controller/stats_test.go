package controller

import (
	"context"
	"testing"

	"google.golang.org/protobuf/proto"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
	"github.com/surgeload/surge/hist"
)

// statsSnapshot sends one snapshot with a phased series, retries,
// connections and a WebSocket step.
func (f *fakeAgent) statsSnapshot(runID string, interval int64, final bool, opened, open int64) uint64 {
	f.seq++
	set := hist.NewSet()
	sr := set.Get(hist.Key{Scenario: "s", Request: "get", Status: "2xx"})
	for v := int64(1); v <= 20; v++ {
		_ = sr.Latency.RecordValue(1000 * v)
		sr.RecordPhase(hist.PhaseTTFB, 900*v)
	}
	sr.RecordPhase(hist.PhaseConnect, 300+interval)
	sr.Counters.Requests, sr.Counters.Retries = 20, 1
	to := set.Get(hist.Key{Scenario: "s", Request: "get", Status: "timeout"})
	_ = to.Latency.RecordValue(5_000_000)
	to.Counters.Requests, to.Counters.Failures = 1, 1
	rtt := hist.New()
	_ = rtt.RecordValue(250)
	f.send(&surgev1.AgentMessage{Msg: &surgev1.AgentMessage_Snapshot{Snapshot: &surgev1.Snapshot{
		RunId: runID, AgentId: f.id, Seq: f.seq, Epoch: 1, Interval: interval, Final: final,
		Series:    set.ToProto(),
		Scenarios: []*surgev1.ScenarioStats{{Scenario: "s", TargetRate: 5, Completed: 21, ConnsOpened: opened, ConnsOpen: open}},
		Websockets: []*surgev1.WebSocketStats{{Scenario: "s", Step: "ws", SessionsOpened: 2, SessionsActive: open,
			MessagesOut: 10, MessagesIn: 10, RoundTrip: hist.ToProto(rtt)}},
	}}})
	return f.seq
}

// Phases, retries, connections and WebSocket stats flow from snapshots
// into the summary, the store (intervals included) and a comparison, and
// survive a controller restart.
func TestStatsFlowThrough(t *testing.T) {
	dir := t.TempDir()
	tc := startController(t, dir)
	us := newFakeAgent(t, tc.Addr(), "a-us", "us-east", "")
	eu := newFakeAgent(t, tc.Addr(), "a-eu", "eu-west", "")
	tc.waitAgents(t, 2)
	resp, err := submit(t, tc, twoRegionPlan)
	if err != nil {
		t.Fatal(err)
	}
	us.waitAssign()
	eu.waitAssign()
	updates := watch(t, tc, resp.GetRunId())
	for i := range int64(3) {
		us.waitAck(us.statsSnapshot(resp.GetRunId(), i, i == 2, 5, 10+i))
		eu.waitAck(eu.statsSnapshot(resp.GetRunId(), i, i == 2, 3, 20-i))
	}
	sum, _ := finalSummary(t, updates)
	all := sum.GetAll()
	if all.GetRetries() != 6 || all.GetConnsOpened() != 24 || all.GetConnsPeakOpen() != 30 || all.GetConnsOpen() != 30 ||
		all.GetErrors()["timeout"] != 6 || all.GetPhasesUs()["ttfb"].GetP99() == 0 || all.GetPhasesUs()["connect"].GetMax() != 302 {
		t.Errorf("summary all %v", all)
	}
	if ws := sum.GetWebsocketSteps(); len(ws) != 1 || ws[0].GetSessionsOpened() != 12 || ws[0].GetSessionsPeakActive() != 30 ||
		ws[0].GetRoundTripUs().GetP50() != 250 || ws[0].GetRoundTripUs().GetCount() != 6 {
		t.Errorf("summary websocket steps %v", ws)
	}
	if tot := sum.GetWebsocket(); tot.GetSessionsOpened() != 12 || tot.GetSessionsPeakActive() != 30 {
		t.Errorf("summary websocket %v", tot)
	}
	if len(sum.GetRequests()) != 1 || sum.GetRequests()[0].GetStats().GetRequests() != 126 {
		t.Errorf("summary requests %v", sum.GetRequests())
	}
	us.close()
	eu.close()
	tc.stop()

	tc2 := startController(t, dir)
	got, err := tc2.runs.Report(context.Background(), &surgev1.ReportRequest{RunId: resp.GetRunId()})
	if err != nil || !proto.Equal(got, sum) {
		t.Fatalf("report after restart = %v, %v", got, err)
	}
	stored, err := tc2.store.Get(resp.GetRunId())
	if err != nil || len(stored.Scenarios) != 2 || len(stored.WebSockets) != 2 || stored.Series["us-east"][0].GetTtfb() == nil {
		t.Fatalf("stored run %v, %v", stored, err)
	}
	recs, err := tc2.store.Intervals(resp.GetRunId())
	if err != nil || len(recs) != 3 || recs[1].Scenarios["eu-west"][0].GetConnsOpen() != 19 || recs[1].WebSockets["us-east"][0].GetSessionsActive() != 11 {
		t.Fatalf("stored intervals %v, %v", recs, err)
	}
	cmp, err := tc2.runs.Compare(context.Background(), &surgev1.CompareRequest{RunA: resp.GetRunId(), RunB: resp.GetRunId(), WindowMs: 200})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, m := range cmp.GetMetrics() {
		if m.GetGroup() == "all" {
			seen[m.GetMetric()] = true
		}
		if m.GetMetric() == "conns_peak_open" && !m.GetWindow() && m.GetA() != 30 {
			t.Errorf("compare peak open %v", m)
		}
	}
	for _, m := range []string{"conns_opened_per_s", "conns_peak_open", "error_rate.timeout"} {
		if !seen[m] {
			t.Errorf("compare lacks %s: %v", m, cmp.GetMetrics())
		}
	}
	if cmp.GetDiverged() != 0 || !cmp.GetAligned() {
		t.Errorf("a run compared with itself: %d diverged, aligned %v", cmp.GetDiverged(), cmp.GetAligned())
	}
}
