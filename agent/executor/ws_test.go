package executor

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
	"github.com/surgeload/surge/hist"
	"github.com/surgeload/surge/plan"
)

// A constant-vus scenario whose flow holds a WebSocket session: every VU
// holds one session for the scenario's duration; the recorder reports the
// step's sessions and messages, the handshakes as requests named after the
// step, and the expect.count checks on that series.
func TestWebSocketStepInConstantVUs(t *testing.T) {
	var accepted, active, peak atomic.Int64
	var badHeader atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-VU") == "" || r.Header.Get("X-VU") != r.URL.Query().Get("vu") {
			badHeader.Add(1)
		}
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		accepted.Add(1)
		n := active.Add(1)
		defer active.Add(-1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		for {
			typ, b, err := c.Read(context.Background())
			if err != nil {
				return
			}
			if c.Write(context.Background(), typ, b) != nil {
				return
			}
		}
	}))
	defer srv.Close()
	const vus = 20
	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	p := parseScenario(t, `
scenarios:
  ws:
    executor: constant-vus
    vus: 20
    duration: 1s
    graceful_stop: 10s
    flows:
      chat:
        steps:
          - websocket:
              name: chat
              url: "`+url+`/chat?vu={{vu}}"
              headers: {X-VU: "{{vu}}"}
              hold: 1s
              send: {message: "hi from {{vu}}", rate: 5}
              expect: {timeout: 2s, count: 3}
`)
	sc := p.Scenarios["ws"]
	rec := NewRecorder()
	sr := rec.Scenario("ws")
	iter, err := PlanIteration(sc, IterationOptions{Rec: sr, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	s := &Scenario{Name: "ws", Plan: sc, Share: plan.ScenarioShare{Scenario: "ws", VUs: vus}, Iterate: iter, Rec: sr}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := s.Run(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	set, _ := rec.Swap(time.Now())
	wss := rec.SwapWebSockets()
	if len(wss) != 1 {
		t.Fatalf("SwapWebSockets returned %d steps, want 1", len(wss))
	}
	w := wss[0]
	if w.GetScenario() != "ws" || w.GetFlow() != "chat" || w.GetStep() != "chat" {
		t.Errorf("stats key %s/%s/%s, want ws/chat/chat", w.GetScenario(), w.GetFlow(), w.GetStep())
	}
	if w.GetSessionsOpened() != vus || w.GetSessionsClosed() != vus || w.GetSessionsActive() != 0 ||
		w.GetAbnormalCloses() != 0 || w.GetConnectFailures() != 0 || accepted.Load() != vus {
		t.Errorf("sessions opened %d, closed %d, active %d, abnormal %d, failures %d, accepted by the target %d; want %d each opened, closed and accepted",
			w.GetSessionsOpened(), w.GetSessionsClosed(), w.GetSessionsActive(), w.GetAbnormalCloses(), w.GetConnectFailures(), accepted.Load(), vus)
	}
	if peak.Load() != vus {
		t.Errorf("the target saw at most %d concurrent sessions, want %d", peak.Load(), vus)
	}
	// 5 a second for 1 s from each open: 5 each, at 0, 200, ..., 800 ms.
	out := w.GetMessagesOut()
	if out < 4*vus || out > 5*vus || w.GetMessagesIn() != out || w.GetRoundTrip().GetTotal() != out || w.GetRepliesMissed() != 0 {
		t.Errorf("messages out %d, in %d, round trips %d, missed %d; want %d..%d, every one answered",
			out, w.GetMessagesIn(), w.GetRoundTrip().GetTotal(), w.GetRepliesMissed(), 4*vus, 5*vus)
	}
	if w.GetConnect().GetTotal() != vus || w.GetSession().GetTotal() != vus {
		t.Errorf("connect histogram %d, session histogram %d values; want %d", w.GetConnect().GetTotal(), w.GetSession().GetTotal(), vus)
	}
	if badHeader.Load() != 0 {
		t.Errorf("%d handshakes without the templated X-VU header", badHeader.Load())
	}
	hs := set.Lookup(hist.Key{Scenario: "ws", Flow: "chat", Request: "chat", Status: "1xx"})
	if hs == nil {
		t.Fatalf("no request series for the handshakes; keys %v", set.Keys())
	}
	if c := hs.Counters; c.Requests != vus || c.Failures != 0 || c.ChecksPassed != vus || c.ChecksFailed != 0 {
		t.Errorf("handshake series counters %+v, want %d requests and %d checks passed", c, vus, vus)
	}
	if want := []hist.Check{{Name: "expect.count", Passes: vus}}; !slices.Equal(hs.Checks, want) {
		t.Errorf("handshake series checks %v, want %v", hs.Checks, want)
	}
	t.Logf("%d VUs: %d sessions, %d messages, round trip p50 %d µs", vus, w.GetSessionsOpened(), out, summarizeP50(t, w.GetRoundTrip()))

	// The next interval: no sessions left open, no new activity, but the
	// step is still reported (its gauge is 0).
	if next := rec.SwapWebSockets(); len(next) != 1 || next[0].GetSessionsActive() != 0 || next[0].GetSessionsOpened() != 0 {
		t.Errorf("next interval %v, want the step with nothing in it", next)
	}
}

func summarizeP50(t *testing.T, p *surgev1.Histogram) int64 {
	t.Helper()
	h, err := hist.FromProto(p)
	if err != nil {
		t.Fatal(err)
	}
	return h.ValueAtQuantile(50)
}
