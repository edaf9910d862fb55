package executor

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
	"github.com/surgeload/surge/hist"
	"github.com/surgeload/surge/plan"
)

// A scenario's connection settings reach its client: per-VU reuse opens one
// connection per VU, every request has a time to first byte, exactly the
// requests that opened a connection have a connect phase, and the
// scenario's stats count the connections. A retrying scenario records its
// attempts and retries.
func TestScenarioClientAndPhases(t *testing.T) {
	var accepted atomic.Int64
	var fails atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/flaky" && fails.Add(1)%2 == 1 {
			w.WriteHeader(http.StatusServiceUnavailable) // every other attempt fails
			return
		}
		_, _ = w.Write([]byte("ok"))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			accepted.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	p := parseScenario(t, `
scenarios:
  s:
    executor: per-vu-iterations
    vus: 5
    iterations: 20
    requests: [{name: plain, url: "`+srv.URL+`/"}]
  r:
    executor: per-vu-iterations
    vus: 1
    iterations: 10
    retry: {attempts: 3, backoff: {type: constant, base: 1ms}}
    requests: [{name: flaky, url: "`+srv.URL+`/flaky"}]
`)
	rec := NewRecorder()
	share := plan.Share{Scenarios: []plan.ScenarioShare{
		{Scenario: "s", VUs: 5, Arrivals: 100, TotalArrivals: 100},
		{Scenario: "r", VUs: 1, Arrivals: 10, TotalArrivals: 10},
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := RunShare(ctx, time.Now(), ShareOptions{Plan: p, Share: share, Recorder: rec}); err != nil {
		t.Fatal(err)
	}
	set, stats := rec.Swap(time.Now())
	plain := set.Lookup(hist.Key{Scenario: "s", Flow: "default", Request: "plain", Status: "2xx"})
	if plain == nil {
		t.Fatalf("no 2xx series for plain; keys %v", set.Keys())
	}
	connect := plain.Phases[hist.PhaseConnect]
	ttfb := plain.Phases[hist.PhaseTTFB]
	t.Logf("measured: %d requests, %d connects, %d ttfb, attempts %v, accepted %d", plain.Counters.Requests,
		count(connect), count(ttfb), plain.Phases[hist.PhaseAttempt], accepted.Load())
	if plain.Counters.Requests != 100 || count(ttfb) != 100 || count(connect) != 5 {
		t.Errorf("plain: %d requests, %d ttfb, %d connects; want 100, 100, 5", plain.Counters.Requests, count(ttfb), count(connect))
	}
	if plain.Phases[hist.PhaseAttempt] != nil || plain.Phases[hist.PhaseDNS] != nil || plain.Phases[hist.PhaseTLS] != nil {
		t.Error("plain: attempt, dns or tls phases recorded for a non-retrying request to an IP over http")
	}
	byName := map[string]*surgev1.ScenarioStats{}
	for _, st := range stats {
		byName[st.GetScenario()] = st
	}
	if st := byName["s"]; st.GetConnsOpened() != 5 || st.GetConnsOpen() != 0 || st.GetConnsClosed() != 5 {
		t.Errorf("s: conns opened %d, closed %d, open %d; want 5, 5, 0 (closed with the scenario)",
			st.GetConnsOpened(), st.GetConnsClosed(), st.GetConnsOpen())
	}
	flaky := set.Lookup(hist.Key{Scenario: "r", Flow: "default", Request: "flaky", Status: "2xx"})
	if flaky == nil {
		t.Fatalf("no 2xx series for flaky; keys %v", set.Keys())
	}
	// Attempts alternate fail, succeed: each request takes 2 attempts.
	if flaky.Counters.Requests != 10 || flaky.Counters.Retries != 10 || count(flaky.Phases[hist.PhaseAttempt]) != 20 {
		t.Errorf("flaky: %d requests, %d retries, %d attempts; want 10, 10, 20",
			flaky.Counters.Requests, flaky.Counters.Retries, count(flaky.Phases[hist.PhaseAttempt]))
	}
	if got := accepted.Load(); got != 6 {
		t.Errorf("the server accepted %d connections, want 6 (one per VU)", got)
	}
}

func count(h *hdrhistogram.Histogram) int64 {
	if h == nil {
		return 0
	}
	return h.TotalCount()
}
