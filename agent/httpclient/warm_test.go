package httpclient

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/surgeload/surge/plan"
)

// Warm opens one connection for a per-vu session, which its sends then
// reuse; a second Warm finds it idle and opens none; with reuse: pool or
// a templated URL, Warm opens nothing.
func TestSessionWarm(t *testing.T) {
	srv := newServer(t, "", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) }))
	ctx := context.Background()
	stats := &ConnStats{}
	c := newClient(t, Options{Stats: stats})
	req := get(t, srv.URL+"/")
	s := c.Session()
	defer s.Close()
	if err := s.Warm(ctx, req); err != nil {
		t.Fatal(err)
	}
	if opened := stats.Opened.Load(); opened != 1 {
		t.Fatalf("after Warm: %d connections opened, want 1", opened)
	}
	for range 3 {
		if r := s.Do(ctx, req, nil, time.Now); r.Failed() || r.Phases&HasConnect != 0 {
			t.Fatalf("send after Warm: %s %v, phases %b (want no connect)", r.Status, r.Err, r.Phases)
		}
	}
	if err := s.Warm(ctx, req); err != nil {
		t.Fatal(err)
	}
	if got, opened := srv.accepted.Load(), stats.Opened.Load(); got != 1 || opened != 1 {
		t.Fatalf("%d connections accepted, %d opened, want 1 and 1", got, opened)
	}

	pstats := &ConnStats{}
	pooled := newClient(t, Options{Stats: pstats, Conn: &plan.Connection{Reuse: plan.ReusePool}})
	ps := pooled.Session()
	defer ps.Close()
	templated := prep(t, plan.Request{Name: "t", URL: srv.URL + "/{{vu}}"})
	if err := ps.Warm(ctx, req); err != nil {
		t.Fatal(err)
	}
	if err := s.Warm(ctx, templated); err != nil {
		t.Fatal(err)
	}
	if p, o := pstats.Opened.Load(), stats.Opened.Load(); p != 0 || o != 1 {
		t.Fatalf("Warm with reuse: pool opened %d connections, with a templated URL %d", p, o-1)
	}
}
