package agent

import (
	"testing"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
	"github.com/surgeload/surge/hist"
)

func wsHist(t *testing.T, values ...int64) *surgev1.Histogram {
	t.Helper()
	h := hist.New()
	for _, v := range values {
		if err := h.RecordValue(v); err != nil {
			t.Fatal(err)
		}
	}
	return hist.ToProto(h)
}

// Queued snapshots merged into one keep every WebSocket step's counters
// (summed), histograms (merged exactly) and the later sessions-active
// gauge, and the scenarios' connection counters likewise.
func TestMergeSnapshotsWebSocketsAndConns(t *testing.T) {
	a := &surgev1.Snapshot{RunId: "r", Seq: 1,
		Scenarios: []*surgev1.ScenarioStats{{Scenario: "s", ConnsOpened: 5, ConnsClosed: 1, ConnsOpen: 4}},
		Websockets: []*surgev1.WebSocketStats{
			{Scenario: "s", Flow: "f", Step: "chat", SessionsOpened: 10, SessionsClosed: 2, SessionsActive: 8,
				AbnormalCloses: 1, ConnectFailures: 2, Reconnects: 1, MessagesOut: 100, MessagesIn: 99,
				BytesOut: 1000, BytesIn: 990, RepliesMissed: 1,
				Connect: wsHist(t, 100, 200), RoundTrip: wsHist(t, 50, 60, 70)},
		}}
	b := &surgev1.Snapshot{RunId: "r", Seq: 2,
		Scenarios: []*surgev1.ScenarioStats{{Scenario: "s", ConnsOpened: 2, ConnsClosed: 3, ConnsOpen: 3}},
		Websockets: []*surgev1.WebSocketStats{
			{Scenario: "s", Flow: "f", Step: "chat", SessionsOpened: 1, SessionsClosed: 4, SessionsActive: 5,
				MessagesOut: 10, MessagesIn: 10, Session: wsHist(t, 1_000_000), RoundTrip: wsHist(t, 80)},
			{Scenario: "s", Flow: "f", Step: "other", SessionsOpened: 3, SessionsActive: 3},
		}}
	m, err := mergeSnapshots(a, b)
	if err != nil {
		t.Fatal(err)
	}
	if got := m.GetScenarios()[0]; got.GetConnsOpened() != 7 || got.GetConnsClosed() != 4 || got.GetConnsOpen() != 3 {
		t.Errorf("conns opened/closed/open %d/%d/%d, want 7/4/3 (the later gauge)", got.GetConnsOpened(), got.GetConnsClosed(), got.GetConnsOpen())
	}
	if len(m.GetWebsockets()) != 2 {
		t.Fatalf("merged websockets %v, want 2 steps", m.GetWebsockets())
	}
	w := m.GetWebsockets()[0]
	if w.GetStep() != "chat" || w.GetSessionsOpened() != 11 || w.GetSessionsClosed() != 6 || w.GetSessionsActive() != 5 ||
		w.GetAbnormalCloses() != 1 || w.GetConnectFailures() != 2 || w.GetReconnects() != 1 ||
		w.GetMessagesOut() != 110 || w.GetMessagesIn() != 109 || w.GetBytesOut() != 1000 || w.GetBytesIn() != 990 || w.GetRepliesMissed() != 1 {
		t.Errorf("merged step %v", w)
	}
	if w.GetConnect().GetTotal() != 2 || w.GetSession().GetTotal() != 1 || w.GetRoundTrip().GetTotal() != 4 {
		t.Errorf("histogram totals connect %d, session %d, round trip %d; want 2, 1, 4",
			w.GetConnect().GetTotal(), w.GetSession().GetTotal(), w.GetRoundTrip().GetTotal())
	}
	h, err := hist.FromProto(w.GetRoundTrip())
	if err != nil {
		t.Fatal(err)
	}
	if h.Max() < 79 || h.Min() > 50 {
		t.Errorf("round trip merged range %d..%d, want 50..80", h.Min(), h.Max())
	}
	if o := m.GetWebsockets()[1]; o.GetStep() != "other" || o.GetSessionsActive() != 3 {
		t.Errorf("step only in the later snapshot: %v", o)
	}
	// The inputs are left as they were.
	if a.GetWebsockets()[0].GetSessionsOpened() != 10 || a.GetWebsockets()[0].GetRoundTrip().GetTotal() != 3 {
		t.Errorf("merge modified its input: %v", a.GetWebsockets()[0])
	}

	// Parts of one run describe the same instant: their gauges add up.
	p, err := mergeWebSocketStats(a.GetWebsockets(), b.GetWebsockets()[:1], true)
	if err != nil {
		t.Fatal(err)
	}
	if p[0].GetSessionsActive() != 13 {
		t.Errorf("parts' sessions active %d, want 8+5", p[0].GetSessionsActive())
	}
	st := &surgev1.ScenarioStats{Scenario: "s", ConnsOpen: 4}
	mergeScenarioStats(st, &surgev1.ScenarioStats{Scenario: "s", ConnsOpen: 3, ConnsOpened: 1}, true)
	if st.GetConnsOpen() != 7 || st.GetConnsOpened() != 1 {
		t.Errorf("parts' conns open %d, opened %d; want 7, 1", st.GetConnsOpen(), st.GetConnsOpened())
	}
}
