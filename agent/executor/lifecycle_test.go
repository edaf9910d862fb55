package executor

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// on_start runs once per VU (at its warm-up or its first iteration),
// on_stop once when it is retired, and only after on_start succeeded; an
// iteration-scoped value shadows the VU's for that iteration only; a
// failed extraction ends the iteration and, in on_start, keeps the VU from
// iterating.
func TestVULifecycleAndScopes(t *testing.T) {
	var logins, logouts atomic.Int64
	var failLogin atomic.Bool
	var mu sync.Mutex
	var peeks []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/login":
			if failLogin.Load() {
				http.Error(w, "down", http.StatusServiceUnavailable)
				return
			}
			fmt.Fprintf(w, `{"token": "L%d"}`, logins.Add(1))
		case "/shadow":
			fmt.Fprintf(w, `{"token": "S-%s"}`, r.URL.Query().Get("i"))
		case "/peek":
			mu.Lock()
			peeks = append(peeks, r.URL.Query().Get("vu")+" "+r.Header.Get("Authorization"))
			mu.Unlock()
		case "/logout":
			logouts.Add(1)
		}
	}))
	defer srv.Close()
	p := parseScenario(t, `
base_url: `+srv.URL+`
scenarios:
  s:
    executor: per-vu-iterations
    vus: 1
    on_start:
      steps:
        - {name: login, method: POST, url: /login, extract: {token: {json: "$.token"}}}
    on_stop:
      steps:
        - {name: logout, url: '/logout?t={{var "token"}}'}
    flows:
      f:
        steps:
          - {url: '/peek?vu={{vu}}', headers: {Authorization: '{{var "token"}}'}}
          - {url: '/shadow?i={{iter}}', extract: {token: {json: "$.token"}}}
          - {url: '/peek?vu={{vu}}', headers: {Authorization: '{{var "token"}}'}}
`)
	rec := NewRecorder()
	fns, err := planIteration(p.Scenarios["s"], IterationOptions{Client: newClient(t), Rec: rec.Scenario("s"), Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	fns.warm(ctx, 2) // VU 2 logs in during the lead
	for range 2 {
		fns.iterate(ctx, 1, time.Time{})
		fns.iterate(ctx, 2, time.Time{})
	}
	if n := logins.Load(); n != 2 {
		t.Errorf("%d logins for two VUs, want 2", n)
	}
	mu.Lock()
	got := strings.Join(peeks, ", ")
	mu.Unlock()
	// VU 2 logged in first (L1); each iteration's shadow token ends with it.
	want := "1 L2, 1 S-1, 2 L1, 2 S-1, 1 L2, 1 S-2, 2 L1, 2 S-2"
	if got != want {
		t.Errorf("tokens seen:\n got %s\nwant %s", got, want)
	}
	failLogin.Store(true)
	for range 3 {
		if !fns.iterate(ctx, 3, time.Time{}) {
			t.Fatal("an iteration whose on_start failed reported an interruption")
		}
	}
	if len(peeks) != 8 {
		t.Errorf("VU 3, never logged in, sent %d flow requests", len(peeks)-8)
	}
	set, _ := rec.Swap(time.Now())
	var failed, onStart int64
	for _, k := range set.Keys() {
		sr := set.Lookup(k)
		failed += sr.Counters.ExtractFailed
		if k.Flow == "on_start" {
			onStart += sr.Counters.Requests
		}
	}
	if failed != 3 || onStart != 5 {
		t.Errorf("extract_failed %d, on_start requests %d; want 3 (VU 3's logins) and 5", failed, onStart)
	}
	for _, vu := range []int64{1, 2, 3, 4} {
		fns.retire(ctx, vu)
	}
	if n := logouts.Load(); n != 2 {
		t.Errorf("%d logouts, want 2: VU 3 never logged in, VU 4 never ran", n)
	}
}
