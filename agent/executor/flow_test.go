package executor

import (
	"context"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/surgeload/surge/agent/httpclient"
	"github.com/surgeload/surge/hist"
	"github.com/surgeload/surge/plan"
)

func parseScenario(t *testing.T, yaml string) *plan.Plan {
	t.Helper()
	p, err := plan.Parse("t.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Flows are chosen by weight; batches run in parallel; templates expand
// per request; checks count into checks_passed/failed; series carry the
// flow and the request name (the URL template, never the expansion).
func TestPlanIterationFlows(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]int{}
	var inflight, peak atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inflight.Add(1)
		defer inflight.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen[r.URL.Path]++
		if r.URL.Path == "/echo" {
			seen["auth:"+r.Header.Get("Authorization")]++
			seen["body:"+string(body)]++
		}
		mu.Unlock()
		if strings.HasPrefix(r.URL.Path, "/batch") {
			time.Sleep(5 * time.Millisecond) // overlap the batch
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"user": {"id": 42, "tags": ["a", "b"]}, "ok": true}`)
	}))
	defer srv.Close()
	p := parseScenario(t, `
scenarios:
  s:
    executor: shared-iterations
    vus: 1
    iterations: 400
    flows:
      browse:
        weight: 3
        steps:
          - {url: "`+srv.URL+`/item/{{rand_int 1 5}}", checks: {status: 200, json_path: {"$.user.id": "42", "user.tags.1": "b"}}}
      buy:
        weight: 1
        steps:
          - {method: POST, url: "`+srv.URL+`/echo", headers: {Authorization: 'Bearer {{env "T"}}'}, body: '{"vu": {{vu}}, "iter": {{iter}}}',
             checks: {status: [201, 3xx], body_contains: '"ok": true'}}
          - think: {uniform: [0s, 1ms]}
          - batch: [{url: "`+srv.URL+`/batch/a"}, {url: "`+srv.URL+`/batch/b"}]
`)
	sc := p.Scenarios["s"]
	c := newClient(t)
	rec := NewRecorder()
	env := func(k string) (string, bool) {
		if k == "T" {
			return "s3cret", true
		}
		return "", false
	}
	iter, err := PlanIteration(sc, IterationOptions{Client: c, Rec: rec.Scenario("s"), Env: env, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	for range 400 {
		if !iter(context.Background(), 1, time.Time{}) {
			t.Fatal("iteration interrupted")
		}
	}
	set, _ := rec.Swap(time.Now())
	flows := map[string]int64{}
	var passed, failed int64
	checks := map[string]hist.Check{} // by flow and name
	for _, k := range set.Keys() {
		sr := set.Lookup(k)
		flows[k.Flow] += sr.Counters.Requests
		passed += sr.Counters.ChecksPassed
		failed += sr.Counters.ChecksFailed
		for _, c := range sr.Checks {
			x := checks[k.Flow+" "+c.Name]
			x.Passes += c.Passes
			x.Fails += c.Fails
			checks[k.Flow+" "+c.Name] = x
		}
		if strings.Contains(k.Request, "/item/") && k.Request != "GET "+srv.URL+"/item/{{rand_int 1 5}}" {
			t.Errorf("request name %q is not the URL template", k.Request)
		}
	}
	buys := flows["buy"] / 3
	browse := flows["browse"]
	t.Logf("measured: browse %d, buy %d iterations (weights 3:1), checks passed %d failed %d, batch concurrency %d",
		browse, buys, passed, failed, peak.Load())
	if browse+buys != 400 || browse < 270 || browse > 330 {
		t.Errorf("flow mix browse %d buy %d, want ~300:100", browse, buys)
	}
	// browse: 3 checks pass; buy: status fails (200 not in [201, 3xx]), body passes.
	if passed != 3*browse+buys || failed != buys {
		t.Errorf("checks passed %d failed %d, want %d and %d", passed, failed, 3*browse+buys, buys)
	}
	wantChecks := map[string]hist.Check{
		"browse status": {Passes: browse}, "browse json_path.$.user.id": {Passes: browse}, "browse json_path.user.tags.1": {Passes: browse},
		"buy status": {Fails: buys}, "buy body_contains": {Passes: buys},
	}
	if !maps.Equal(checks, wantChecks) {
		t.Errorf("checks by flow and name %v, want %v", checks, wantChecks)
	}
	if peak.Load() < 2 {
		t.Errorf("batch requests never overlapped")
	}
	mu.Lock()
	defer mu.Unlock()
	items, bodies := 0, 0
	for path, n := range seen {
		if strings.HasPrefix(path, "/item/") {
			items++
		}
		if strings.HasPrefix(path, `body:{"vu": 1, "iter": `) {
			bodies += n
		}
	}
	if seen["auth:Bearer s3cret"] != int(buys) || bodies != int(buys) {
		t.Errorf("templates not expanded: %d auth headers, %d bodies, want %d", seen["auth:Bearer s3cret"], bodies, buys)
	}
	if items != 5 {
		t.Errorf("{{rand_int 1 5}} gave %d distinct paths, want 5", items)
	}
}

// An expanded {{env}} value never appears in a request error.
func TestEnvSecretRedacted(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := srv.Listener.Addr().String()
	srv.Close() // refused from now on
	p := parseScenario(t, `
scenarios:
  s:
    executor: shared-iterations
    requests: [{url: 'http://`+addr+`/x?token={{env "TOKEN"}}'}]
`)
	r, err := httpclient.Prepare(*p.Scenarios["s"].AllRequests()[0])
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t)
	env := func(string) (string, bool) { return "hunter2-secret", true }
	res := c.DoWith(context.Background(), r, &httpclient.Vars{Env: env}, time.Now)
	if res.Err == nil {
		t.Fatal("want a connection error")
	}
	if strings.Contains(res.Err.Error(), "hunter2") {
		t.Errorf("secret in error: %v", res.Err)
	}
	t.Logf("measured: error %q, status %s", res.Err, res.Status)
	// An unset variable names the variable only.
	res = c.DoWith(context.Background(), r, &httpclient.Vars{}, time.Now)
	if res.Err == nil || !strings.Contains(res.Err.Error(), "TOKEN is not set") {
		t.Errorf("unset env: %v", res.Err)
	}
}

// Coordinated omission (wrk2 style): the target stalls once for 1s; the
// open-model latency, measured from each arrival's intended time, shows the
// stall at p99 although the stall is 1 s of a 4 s run.
func TestCoordinatedOmission(t *testing.T) {
	var (
		mu         sync.Mutex
		first      time.Time
		stallUntil time.Time
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		now := time.Now()
		if first.IsZero() {
			first = now
		}
		if stallUntil.IsZero() && now.Sub(first) > time.Second {
			stallUntil = now.Add(time.Second)
		}
		wait := stallUntil.Sub(now)
		mu.Unlock()
		if wait > 0 {
			tm := time.NewTimer(wait)
			select {
			case <-tm.C:
			case <-r.Context().Done():
			}
			tm.Stop()
		}
	}))
	defer srv.Close()
	p := parseScenario(t, `
scenarios:
  s:
    executor: constant-arrival-rate
    rate: 50
    duration: 4s
    pre_allocated_vus: 80
    requests: [{url: "`+srv.URL+`/"}]
`)
	rec := NewRecorder()
	share := plan.Share{Scenarios: []plan.ScenarioShare{{Scenario: "s", Arrivals: 200, TotalArrivals: 200, PreAllocVUs: 80, MaxVUs: 80}}}
	if err := RunShare(context.Background(), time.Now(), ShareOptions{Plan: p, Share: share, Recorder: rec}); err != nil {
		t.Fatal(err)
	}
	set, stats := rec.Swap(time.Now())
	tot := set.Total(nil)
	h := tot.Latency
	p50, p99 := h.ValueAtQuantile(50), h.ValueAtQuantile(99)
	t.Logf("measured: %d requests, %d dropped; latency p50 %dµs p99 %dµs max %dµs", tot.Counters.Requests, stats[0].Dropped, p50, p99, h.Max())
	if tot.Counters.Requests != 200 {
		t.Errorf("%d requests, want 200", tot.Counters.Requests)
	}
	if p99 < 900_000 {
		t.Errorf("p99 %dµs does not reflect the 1 s stall", p99)
	}
	if p50 > 100_000 {
		t.Errorf("p50 %dµs: the stall should touch only a quarter of the run", p50)
	}
}

// newClient returns a default client, closed when the test ends.
func newClient(t *testing.T) *httpclient.Client {
	t.Helper()
	c, err := httpclient.New(httpclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}
