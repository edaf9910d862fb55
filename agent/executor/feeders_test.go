package executor

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// feederPaths runs iterations (VU, count) of a one-request scenario reading
// feeder "u" in mode and returns the paths the target saw, in order.
func feederPaths(t *testing.T, mode, segment string, seed uint64, vus []int64) []string {
	t.Helper()
	var mu sync.Mutex
	var paths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.URL.Path+"#"+r.Header.Get("X-Pass"))
		mu.Unlock()
	}))
	defer srv.Close()
	p := parseScenario(t, `
data:
  u: {mode: `+mode+`, inline: {columns: [name, pass], rows: [[a, pa], [b, pb], [c, pc]]}}
scenarios:
  s:
    executor: per-vu-iterations
    vus: 1
    requests: [{url: '`+srv.URL+`/{{data "u" "name"}}', headers: {X-Pass: '{{data "u" "pass"}}'}}]
`)
	c := newClient(t)
	iter, err := PlanIteration(p.Scenarios["s"], IterationOptions{
		Client: c, Rec: NewRecorder().Scenario("s"), Seed: seed, Data: p.Data, Segment: segment,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, vu := range vus {
		if !iter(context.Background(), vu, time.Time{}) {
			t.Fatal("iteration interrupted")
		}
	}
	for _, x := range paths {
		name, pass, _ := strings.Cut(strings.TrimPrefix(x, "/"), "#")
		if pass != "p"+name {
			t.Fatalf("columns of one iteration come from different rows: %s", x)
		}
	}
	out := make([]string, len(paths))
	for i, x := range paths {
		out[i] = strings.TrimPrefix(x[:strings.IndexByte(x, '#')], "/")
	}
	return out
}

// Each feeder mode picks rows as documented: sequential walks the rows in
// order from the segment's offset, shared by the VUs; unique-per-vu gives
// VU n row (offset + n-1) mod len for every iteration; random follows the
// seed. Both columns of an iteration come from one row.
func TestPlanIterationFeeders(t *testing.T) {
	if got := strings.Join(feederPaths(t, "sequential", "", 1, []int64{1, 2, 1, 3, 1}), ""); got != "abcab" {
		t.Errorf("sequential = %s, want abcab", got)
	}
	if got := strings.Join(feederPaths(t, "sequential", "1/3", 1, []int64{1, 1, 1, 1}), ""); got != "bcab" {
		t.Errorf("sequential from segment 1/3 = %s, want bcab", got)
	}
	if got := strings.Join(feederPaths(t, "unique-per-vu", "", 1, []int64{1, 2, 3, 4, 1, 2, 3, 4}), ""); got != "abcaabca" {
		t.Errorf("unique-per-vu = %s, want abcaabca (VU 4 wraps to row 0)", got)
	}
	if got := strings.Join(feederPaths(t, "unique-per-vu", "2/3", 1, []int64{1, 2, 1}), ""); got != "cac" {
		t.Errorf("unique-per-vu from segment 2/3 = %s, want cac", got)
	}
	vus := make([]int64, 60)
	for i := range vus {
		vus[i] = 1
	}
	r1 := strings.Join(feederPaths(t, "random", "", 42, vus), "")
	r2 := strings.Join(feederPaths(t, "random", "", 42, vus), "")
	r3 := strings.Join(feederPaths(t, "random", "", 43, vus), "")
	if r1 != r2 {
		t.Errorf("random with one seed differs: %s vs %s", r1, r2)
	}
	if r1 == r3 {
		t.Errorf("random ignores the seed: %s", r1)
	}
	for _, row := range []string{"a", "b", "c"} {
		if !strings.Contains(r1, row) {
			t.Errorf("random never picked row %s in 60 iterations: %s", row, r1)
		}
	}
}

// A template reading a feeder the agent has no rows for is an error when
// the scenario is compiled, not a silent empty value.
func TestPlanIterationFeederMissing(t *testing.T) {
	p := parseScenario(t, `
data:
  u: {file: users.csv}
scenarios:
  s:
    executor: per-vu-iterations
    requests: [{url: 'http://127.0.0.1:1/{{data "u" "name"}}'}]
`)
	_, err := PlanIteration(p.Scenarios["s"], IterationOptions{Rec: NewRecorder().Scenario("s"), Data: p.Data})
	if err == nil || !strings.Contains(err.Error(), `feeder "u" has no rows on this agent`) {
		t.Fatalf("err = %v", err)
	}
}
