package httpclient

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/surgeload/surge/internal/poll"
	"github.com/surgeload/surge/plan"
)

// barrier answers once n requests are in flight together (or after 10s),
// and counts requests that were not HTTP/2.
type barrier struct {
	n       int64
	arrived atomic.Int64
	notH2   atomic.Int64
	all     chan struct{}
	once    sync.Once
}

func newBarrier(n int64) *barrier { return &barrier{n: n, all: make(chan struct{})} }

func (b *barrier) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.ProtoMajor != 2 {
		b.notH2.Add(1)
	}
	if b.arrived.Add(1) == b.n {
		b.once.Do(func() { close(b.all) })
	}
	select {
	case <-b.all:
	case <-time.After(10 * time.Second):
	case <-r.Context().Done():
	}
	_, _ = w.Write([]byte("ok"))
}

func TestHTTP2StreamsPerConnection(t *testing.T) {
	for _, tc := range []struct {
		mode, scheme, http2, reuse string
	}{
		{"h2", "https", plan.HTTP2H2, plan.ReusePool},
		{"h2", "https", plan.HTTP2H2, plan.ReusePerVU},
		{"h2c", "http", plan.HTTP2H2C, plan.ReusePool},
		{"h2c", "http", plan.HTTP2H2C, plan.ReusePerVU},
	} {
		t.Run(tc.mode+"/"+tc.reuse, func(t *testing.T) {
			const n, m = 12, 4
			b := newBarrier(n)
			srv := newServer(t, tc.mode, b)
			conn := &plan.Connection{Reuse: tc.reuse, HTTP2: tc.http2, MaxConcurrentStreams: m}
			if tc.scheme == "https" {
				conn.TLS = &plan.TLS{CAFile: caFile(t, srv.Server)}
			}
			var stats ConnStats
			c := newClient(t, Options{Conn: conn, Stats: &stats})
			s := c.Session() // per-vu: one VU's batch of n
			defer s.Close()
			req := get(t, srv.URL+"/")
			var wg sync.WaitGroup
			results := make([]Result, n)
			for i := range n {
				wg.Go(func() { results[i] = s.Do(context.Background(), req, nil, time.Now) })
			}
			wg.Wait()
			for _, r := range results {
				if r.Failed() || r.Phases&HasTTFB == 0 {
					t.Fatalf("request: %q %v", r.Status, r.Err)
				}
			}
			if got := srv.accepted.Load(); got != (n+m-1)/m {
				t.Errorf("%d concurrent requests, %d streams per connection: %d connections, want %d", n, m, got, (n+m-1)/m)
			}
			if b.notH2.Load() != 0 {
				t.Errorf("%d requests were not HTTP/2", b.notH2.Load())
			}
			if stats.Opened.Load() != srv.accepted.Load() {
				t.Errorf("Stats.Opened %d, server accepted %d", stats.Opened.Load(), srv.accepted.Load())
			}
			s.Close()
			c.Close()
			poll.Eventually(t, 10*time.Second, "every connection closed", func() bool { return stats.Open() == 0 })
		})
	}
}

func TestHTTP2PoolWaitsForStreams(t *testing.T) {
	var cur, peak atomic.Int64
	srv := newServer(t, "h2c", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := cur.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(5 * time.Millisecond) // the server's work
		cur.Add(-1)
	}))
	c := newClient(t, Options{Conn: &plan.Connection{Reuse: plan.ReusePool, PoolSize: 1, HTTP2: plan.HTTP2H2C, MaxConcurrentStreams: 3}})
	runSessions(t, c, get(t, srv.URL+"/"), 8, 5)
	if got := srv.accepted.Load(); got != 1 {
		t.Errorf("pool_size 1: %d connections", got)
	}
	if got := peak.Load(); got > 3 {
		t.Errorf("3 streams per connection: %d in flight", got)
	}
}

func TestHTTP2NeverAndMaxRequests(t *testing.T) {
	srv := newServer(t, "h2c", http.HandlerFunc(okHandler))
	c := newClient(t, Options{Conn: &plan.Connection{Reuse: plan.ReuseNever, HTTP2: plan.HTTP2H2C}})
	runSessions(t, c, get(t, srv.URL+"/"), 1, 5)
	if got := srv.accepted.Load(); got != 5 {
		t.Errorf("never: %d connections for 5 requests", got)
	}
	srv2 := newServer(t, "h2c", http.HandlerFunc(okHandler))
	c2 := newClient(t, Options{Conn: &plan.Connection{HTTP2: plan.HTTP2H2C, MaxRequestsPerConnection: 2}})
	runSessions(t, c2, get(t, srv2.URL+"/"), 1, 5)
	if got := srv2.accepted.Load(); got != 3 {
		t.Errorf("2 requests per connection: %d connections for 5 requests, want 3", got)
	}
}

func TestHTTP2RequiresALPN(t *testing.T) {
	srv := newServer(t, "tls", http.HandlerFunc(okHandler)) // HTTP/1.1 only
	c := newClient(t, Options{Conn: &plan.Connection{HTTP2: plan.HTTP2H2, TLS: &plan.TLS{CAFile: caFile(t, srv.Server)}}})
	if res := c.Do(context.Background(), get(t, srv.URL+"/"), time.Now); res.Status != StatusProtocol {
		t.Errorf("h2 to an HTTP/1.1 server: %q %v, want protocol", res.Status, res.Err)
	}
}

func TestHTTP2IdleTimeoutAndLifetime(t *testing.T) {
	srv := newServer(t, "h2c", http.HandlerFunc(okHandler))
	var stats ConnStats
	c := newClient(t, Options{Stats: &stats, Conn: &plan.Connection{HTTP2: plan.HTTP2H2C,
		IdleTimeout: &plan.Dist{Constant: plan.Duration(100 * time.Millisecond)}}})
	s := c.Session()
	req := get(t, srv.URL+"/")
	for range 3 {
		if res := s.Do(context.Background(), req, nil, time.Now); res.Failed() {
			t.Fatal(res.Err)
		}
	}
	if stats.Opened.Load() != 1 {
		t.Fatalf("opened %d, want 1", stats.Opened.Load())
	}
	poll.Eventually(t, 10*time.Second, "the idle HTTP/2 connection to close", func() bool { return stats.Open() == 0 && srv.open.Load() == 0 })

	c2 := newClient(t, Options{Conn: &plan.Connection{HTTP2: plan.HTTP2H2C, MaxLifetime: &plan.Dist{Constant: plan.Duration(time.Nanosecond)}}})
	srv2 := newServer(t, "h2c", http.HandlerFunc(okHandler))
	runSessions(t, c2, get(t, srv2.URL+"/"), 1, 4)
	if got := srv2.accepted.Load(); got != 4 {
		t.Errorf("lifetime 1ns: %d connections for 4 requests, want 4", got)
	}
}
