package httpclient

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/surgeload/surge/internal/poll"
	"github.com/surgeload/surge/plan"
)

func okHandler(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) }

// runSessions runs n sessions concurrently, each sending req k times in
// sequence, and fails the test on any failed request.
func runSessions(t *testing.T, c *Client, req *Request, n, k int) {
	t.Helper()
	var wg sync.WaitGroup
	var failed atomic.Int64
	for range n {
		wg.Go(func() {
			s := c.Session()
			defer s.Close()
			for range k {
				if res := s.Do(context.Background(), req, nil, time.Now); res.Failed() {
					t.Errorf("request failed: %s %v", res.Status, res.Err)
					failed.Add(1)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestPerVUOneConnectionPerSession(t *testing.T) {
	srv := newServer(t, "", http.HandlerFunc(okHandler))
	var stats ConnStats
	var gauge atomic.Int64
	c := newClient(t, Options{Stats: &stats, Conns: &gauge})
	runSessions(t, c, get(t, srv.URL+"/"), 50, 10)
	if got := srv.accepted.Load(); got != 50 {
		t.Errorf("50 sessions × 10 requests: %d connections, want 50", got)
	}
	if got := stats.Opened.Load(); got != 50 {
		t.Errorf("Stats.Opened = %d, want 50", got)
	}
	// The sessions are closed: so are their connections, counted once.
	if stats.Closed.Load() != 50 || stats.Open() != 0 || gauge.Load() != 0 {
		t.Errorf("after the sessions closed: closed %d open %d gauge %d, want 50 0 0", stats.Closed.Load(), stats.Open(), gauge.Load())
	}
	poll.Eventually(t, 10*time.Second, "the server to see them closed", func() bool { return srv.open.Load() == 0 })
}

func TestNeverOneConnectionPerRequest(t *testing.T) {
	var closeHdr atomic.Int64
	srv := newServer(t, "", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Close {
			closeHdr.Add(1)
		}
	}))
	var stats ConnStats
	c := newClient(t, Options{Conn: &plan.Connection{Reuse: plan.ReuseNever}, Stats: &stats})
	runSessions(t, c, get(t, srv.URL+"/"), 4, 5)
	if got := srv.accepted.Load(); got != 20 {
		t.Errorf("20 requests: %d connections, want 20", got)
	}
	if got := closeHdr.Load(); got != 20 {
		t.Errorf("%d requests carried Connection: close, want 20", got)
	}
	if stats.Opened.Load() != 20 || stats.Closed.Load() != 20 {
		t.Errorf("opened %d closed %d, want 20 20", stats.Opened.Load(), stats.Closed.Load())
	}
}

func TestMaxRequestsPerConnection(t *testing.T) {
	var closeHdr atomic.Int64
	srv := newServer(t, "", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Close {
			closeHdr.Add(1)
		}
	}))
	var stats ConnStats
	c := newClient(t, Options{Conn: &plan.Connection{MaxRequestsPerConnection: 3}, Stats: &stats})
	runSessions(t, c, get(t, srv.URL+"/"), 1, 10)
	if got := srv.accepted.Load(); got != 4 {
		t.Errorf("10 requests, 3 per connection: %d connections, want 4", got)
	}
	if got := closeHdr.Load(); got != 3 {
		t.Errorf("%d requests announced Connection: close, want 3 (each connection's third)", got)
	}
	if stats.Opened.Load() != 4 || stats.Closed.Load() != 4 {
		t.Errorf("opened %d closed %d, want 4 4", stats.Opened.Load(), stats.Closed.Load())
	}
}

func TestMaxLifetime(t *testing.T) {
	srv := newServer(t, "", http.HandlerFunc(okHandler))
	// A lifetime shorter than any request: every connection closes after
	// its first request.
	c := newClient(t, Options{Conn: &plan.Connection{MaxLifetime: &plan.Dist{Constant: plan.Duration(time.Nanosecond)}}})
	runSessions(t, c, get(t, srv.URL+"/"), 1, 10)
	if got := srv.accepted.Load(); got != 10 {
		t.Errorf("lifetime 1ns, 10 requests: %d connections, want 10", got)
	}
	// A 40ms lifetime over ~400ms of requests: about ten connections.
	srv2 := newServer(t, "", http.HandlerFunc(okHandler))
	c2 := newClient(t, Options{Conn: &plan.Connection{MaxLifetime: &plan.Dist{Uniform: []plan.Duration{plan.Duration(30 * time.Millisecond), plan.Duration(50 * time.Millisecond)}}}})
	s := c2.Session()
	defer s.Close()
	req := get(t, srv2.URL+"/")
	for end := time.Now().Add(400 * time.Millisecond); time.Now().Before(end); {
		if res := s.Do(context.Background(), req, nil, time.Now); res.Failed() {
			t.Fatal(res.Err)
		}
		time.Sleep(5 * time.Millisecond) // pacing, not waiting for anything
	}
	if got := srv2.accepted.Load(); got < 4 || got > 20 {
		t.Errorf("lifetime ~40ms over 400ms: %d connections, want about 10", got)
	}
}

func TestIdleTimeoutClosesIdleConnections(t *testing.T) {
	srv := newServer(t, "", http.HandlerFunc(okHandler))
	var stats ConnStats
	c := newClient(t, Options{Stats: &stats, Conn: &plan.Connection{IdleTimeout: &plan.Dist{Constant: plan.Duration(100 * time.Millisecond)}}})
	s := c.Session() // not closed: the reaper must close its idle connection
	req := get(t, srv.URL+"/")
	for range 3 {
		if res := s.Do(context.Background(), req, nil, time.Now); res.Failed() {
			t.Fatal(res.Err)
		}
	}
	if srv.open.Load() != 1 {
		t.Fatalf("server open connections %d, want 1", srv.open.Load())
	}
	poll.Eventually(t, 10*time.Second, "the idle connection to close", func() bool { return srv.open.Load() == 0 && stats.Open() == 0 })
	if stats.Closed.Load() != 1 {
		t.Errorf("closed %d, want 1", stats.Closed.Load())
	}
	// The next request dials again.
	if res := s.Do(context.Background(), req, nil, time.Now); res.Failed() || res.Phases&HasConnect == 0 {
		t.Errorf("after the idle close: %v phases %b, want a success on a new connection", res.Err, res.Phases)
	}
}

func TestPoolCapsConnectionsAndWaits(t *testing.T) {
	var cur, peak atomic.Int64
	srv := newServer(t, "", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := cur.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(10 * time.Millisecond) // the server's work
		cur.Add(-1)
	}))
	var stats ConnStats
	c := newClient(t, Options{Conn: &plan.Connection{Reuse: plan.ReusePool, PoolSize: 3}, Stats: &stats, PeakVUs: 50})
	runSessions(t, c, get(t, srv.URL+"/"), 10, 5)
	if got := srv.accepted.Load(); got > 3 {
		t.Errorf("pool_size 3: %d connections", got)
	}
	if got := peak.Load(); got > 3 {
		t.Errorf("pool_size 3: %d requests in flight at once", got)
	}
	// Pool connections stay open after the sessions end, until Close.
	if stats.Open() == 0 {
		t.Error("pool connections closed with the sessions")
	}
	c.Close()
	if stats.Open() != 0 {
		t.Errorf("after Close: %d open", stats.Open())
	}
}

func TestPoolWaitRespectsContext(t *testing.T) {
	release := make(chan struct{})
	srv := newServer(t, "", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			<-release
		}
	}))
	c := newClient(t, Options{Conn: &plan.Connection{Reuse: plan.ReusePool, PoolSize: 1}})
	var wg sync.WaitGroup
	wg.Go(func() { c.Do(context.Background(), get(t, srv.URL+"/hold"), time.Now) })
	poll.Eventually(t, 10*time.Second, "the held request", func() bool { return srv.accepted.Load() == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	res := c.Session().Do(ctx, get(t, srv.URL+"/"), nil, time.Now)
	if res.Status != StatusTimeout || !errors.Is(res.Err, context.DeadlineExceeded) {
		t.Errorf("waiting past the context: %q %v, want timeout", res.Status, res.Err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("the wait took %v past its context", d)
	}
	// A request timeout bounds the wait too.
	r := prep(t, plan.Request{URL: srv.URL + "/", Timeout: plan.Duration(50 * time.Millisecond)})
	if res := c.Do(context.Background(), r, time.Now); res.Status != StatusTimeout {
		t.Errorf("waiting past the request timeout: %q %v", res.Status, res.Err)
	}
	close(release)
	wg.Wait()
	// The connection is free again.
	if res := c.Do(context.Background(), get(t, srv.URL+"/"), time.Now); res.Failed() {
		t.Errorf("after the hold: %v", res.Err)
	}
	if srv.accepted.Load() != 1 {
		t.Errorf("%d connections, want 1", srv.accepted.Load())
	}
}

func TestBatchOnOneSessionUsesSeveralConnections(t *testing.T) {
	arrived := make(chan struct{}, 4)
	release := make(chan struct{})
	srv := newServer(t, "", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
	}))
	c := newClient(t, Options{})
	s := c.Session()
	defer s.Close()
	req := get(t, srv.URL+"/")
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() { s.Do(context.Background(), req, nil, time.Now) })
	}
	for range 4 {
		<-arrived
	}
	close(release)
	wg.Wait()
	// Sequential requests after the batch reuse one of the four.
	for range 3 {
		s.Do(context.Background(), req, nil, time.Now)
	}
	if got := srv.accepted.Load(); got != 4 {
		t.Errorf("a batch of 4 then 3 sequential requests: %d connections, want 4", got)
	}
}

func TestStaleKeepAliveIsReplayed(t *testing.T) {
	srv := newServer(t, "", http.HandlerFunc(okHandler), func(s *http.Server) { s.IdleTimeout = 50 * time.Millisecond })
	c := newClient(t, Options{})
	s := c.Session()
	defer s.Close()
	req := get(t, srv.URL+"/")
	if res := s.Do(context.Background(), req, nil, time.Now); res.Failed() {
		t.Fatal(res.Err)
	}
	poll.Eventually(t, 10*time.Second, "the server to close the idle connection", func() bool { return srv.open.Load() == 0 })
	res := s.Do(context.Background(), req, nil, time.Now)
	if res.Failed() || res.Retries != 0 {
		t.Errorf("on a connection the server closed: %q %v retries %d, want a success", res.Status, res.Err, res.Retries)
	}
	if srv.accepted.Load() != 2 {
		t.Errorf("%d connections, want 2", srv.accepted.Load())
	}
}

func TestContextCancelInterruptsRequest(t *testing.T) {
	stop := make(chan struct{})
	srv := newServer(t, "", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	}))
	defer close(stop)
	c := newClient(t, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	res := c.Do(ctx, prep(t, plan.Request{URL: srv.URL + "/", Timeout: plan.Duration(time.Minute)}), time.Now)
	if !errors.Is(res.Err, context.Canceled) {
		t.Errorf("err %v, want context.Canceled", res.Err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("cancel took %v", d)
	}
}
