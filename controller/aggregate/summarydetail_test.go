package aggregate

import (
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/surgeload/surge/hist"
)

// The summary carries per request and whole-run phase percentiles and
// retries, connections per scenario, region and run, and one entry per
// WebSocket step, all read from exact merges.
func TestSummaryDetails(t *testing.T) {
	r := New(Config{RunID: "run", Start: time.Unix(1000, 0), Interval: time.Second, MaxInterval: 20, Epoch: 1,
		Agents: map[string]string{"a": "us", "c": "eu"}})
	ttfb, connect, rtt := hist.New(), hist.New(), hist.New()
	record := func(h *hdrhistogram.Histogram, vs []int64) {
		for _, v := range vs {
			_ = h.RecordValue(v)
		}
	}
	var opened int64
	peak := int64(0)
	for i := range int64(3) {
		var open int64
		for k, ag := range []string{"a", "c"} {
			c := connSnap{agent: ag, seq: uint64(i + 1), interval: i, opened: int64(3 + k + int(i)), sessions: 4,
				ttfb: []int64{100 * (i + 1), 2000 + int64(k)}, connects: []int64{50 + i}, rtts: []int64{10, 20 * (i + 1)}}
			record(ttfb, c.ttfb)
			record(connect, c.connects)
			record(rtt, c.rtts)
			opened += c.opened
			open += c.open()
			if _, err := r.Add(c.wire()); err != nil {
				t.Fatal(err)
			}
		}
		peak = max(peak, open)
	}
	sum := r.Summary(3 * time.Second)
	all := sum.GetAll()
	if all.GetRetries() != 12 || all.GetConnsOpened() != opened || all.GetConnsPeakOpen() != peak {
		t.Errorf("all: retries %d conns opened %d peak %d; want 12, %d, %d", all.GetRetries(), all.GetConnsOpened(), all.GetConnsPeakOpen(), opened, peak)
	}
	if got := all.GetPhasesUs()["ttfb"]; got.GetP99() != ttfb.ValueAtQuantile(99) || got.GetP50() != ttfb.ValueAtQuantile(50) || got.GetMax() != ttfb.Max() {
		t.Errorf("ttfb %v, want p50 %d p99 %d", got, ttfb.ValueAtQuantile(50), ttfb.ValueAtQuantile(99))
	}
	if got := all.GetPhasesUs()["connect"]; got.GetMax() != connect.Max() || got.GetCount() != connect.TotalCount() {
		t.Errorf("connect %v", got)
	}
	if _, ok := all.GetPhasesUs()["tls"]; ok {
		t.Error("tls phase without values reported")
	}
	if eu := sum.GetRegions()["eu"]; eu.GetConnsOpened() != 4+5+6 || eu.GetConnsPeakOpen() != 26 {
		t.Errorf("eu conns opened %d peak %d", eu.GetConnsOpened(), eu.GetConnsPeakOpen())
	}
	if s := sum.GetScenarios()["s"]; s.GetConnsOpened() != opened || s.GetRetries() != 12 {
		t.Errorf("scenario s %v", s)
	}
	reqs := sum.GetRequests()
	if len(reqs) != 1 || reqs[0].GetRequest() != "r" || reqs[0].GetStats().GetRequests() != 12 ||
		reqs[0].GetStats().GetPhasesUs()["ttfb"].GetP99() != ttfb.ValueAtQuantile(99) || reqs[0].GetStats().GetConnsOpened() != 0 {
		t.Errorf("requests %v", reqs)
	}
	ws := sum.GetWebsocketSteps()
	if len(ws) != 1 {
		t.Fatalf("websocket steps %v", ws)
	}
	if tot := sum.GetWebsocket(); tot.GetSessionsOpened() != 24 || tot.GetSessionsPeakActive() != 12 || tot.GetStep() != "" ||
		tot.GetRoundTripUs().GetCount() != rtt.TotalCount() {
		t.Errorf("websocket total %v", tot)
	}
	w := ws[0]
	if w.GetStep() != "ws" || w.GetFlow() != "chat" || w.GetSessionsOpened() != 24 || w.GetSessionsPeakActive() != 12 ||
		w.GetRoundTripUs().GetP99() != rtt.ValueAtQuantile(99) || w.GetSessionUs() != nil || w.GetRepliesMissed() != 6 {
		t.Errorf("websocket %v", w)
	}
	t.Logf("measured: ttfb p50 %d p99 %d µs, %d conns opened, peak %d open, round trip p99 %d µs",
		ttfb.ValueAtQuantile(50), ttfb.ValueAtQuantile(99), opened, peak, rtt.ValueAtQuantile(99))
}

// A run without WebSocket steps has no WebSocket section.
func TestSummaryWithoutWebSockets(t *testing.T) {
	r := newRun(time.Unix(1000, 0))
	if _, err := r.Add(snap("a", 1, 0, true, []int64{5, 6})); err != nil {
		t.Fatal(err)
	}
	sum := r.Summary(time.Second)
	if sum.GetWebsocket() != nil || len(sum.GetWebsocketSteps()) != 0 || len(sum.GetAll().GetPhasesUs()) != 0 {
		t.Errorf("websocket %v steps %v phases %v", sum.GetWebsocket(), sum.GetWebsocketSteps(), sum.GetAll().GetPhasesUs())
	}
}
