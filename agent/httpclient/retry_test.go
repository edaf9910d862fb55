package httpclient

import (
	"context"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/surgeload/surge/internal/tcptest"
	"github.com/surgeload/surge/plan"
)

// failFirst answers code to the first k requests, then 200.
func failFirst(k int64, code int, header http.Header) (*atomic.Int64, http.Handler) {
	var n atomic.Int64
	return &n, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) <= k {
			for h, v := range header {
				w.Header()[h] = v
			}
			w.WriteHeader(code)
			return
		}
		_, _ = w.Write([]byte("ok"))
	})
}

func fastBackoff() *plan.Backoff {
	return &plan.Backoff{Base: plan.Duration(time.Millisecond), Max: plan.Duration(5 * time.Millisecond)}
}

func TestRetryCounts(t *testing.T) {
	for _, tc := range []struct {
		name        string
		k, attempts int64
		code        int
		on          []string
		wantCode    int
		wantRetries int
	}{
		{"recovers", 2, 3, 503, nil, 200, 2},
		{"gives up", 5, 3, 503, nil, 503, 2},
		{"429", 1, 3, 429, nil, 200, 1},
		{"4xx not listed", 2, 3, 404, nil, 404, 0},
		{"4xx listed", 2, 3, 404, []string{"404"}, 200, 2},
		{"5xx not listed", 2, 3, 500, []string{"429"}, 500, 0},
		{"code listed", 1, 3, 502, []string{"502"}, 200, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, h := failFirst(tc.k, tc.code, nil)
			srv := newServer(t, "", h)
			c := newClient(t, Options{Retry: &plan.Retry{Attempts: tc.attempts, On: tc.on, Backoff: fastBackoff()}})
			res := c.Do(context.Background(), get(t, srv.URL+"/"), time.Now)
			if res.Code != tc.wantCode || res.Retries != tc.wantRetries {
				t.Errorf("code %d retries %d, want %d %d", res.Code, res.Retries, tc.wantCode, tc.wantRetries)
			}
			if got := n.Load(); got != int64(tc.wantRetries+1) {
				t.Errorf("the server saw %d requests, want %d", got, tc.wantRetries+1)
			}
			if tc.wantRetries == 0 && res.Attempts != nil {
				t.Errorf("no retry, yet Attempts %v", res.Attempts)
			}
			if tc.wantRetries > 0 {
				if len(res.Attempts) != tc.wantRetries+1 {
					t.Fatalf("Attempts %v, want %d", res.Attempts, tc.wantRetries+1)
				}
				var sum time.Duration
				for _, d := range res.Attempts {
					if d <= 0 {
						t.Errorf("attempt duration %v", d)
					}
					sum += d
				}
				if total := res.End.Sub(res.Sent); sum > total {
					t.Errorf("attempts sum %v over the request's %v", sum, total)
				}
			}
		})
	}
}

func TestRetryAfter(t *testing.T) {
	hdr := http.Header{"Retry-After": {"1"}}
	_, h := failFirst(1, 503, hdr)
	srv := newServer(t, "", h)
	c := newClient(t, Options{Retry: &plan.Retry{Attempts: 2, Backoff: fastBackoff()}})
	// The backoff cap (5ms) caps Retry-After too: set a larger one.
	c2 := newClient(t, Options{Retry: &plan.Retry{Attempts: 2, Backoff: &plan.Backoff{Base: plan.Duration(time.Millisecond), Max: plan.Duration(10 * time.Second)}}})
	start := time.Now()
	res := c2.Do(context.Background(), get(t, srv.URL+"/"), time.Now)
	if res.Code != 200 || res.Retries != 1 {
		t.Fatalf("code %d retries %d", res.Code, res.Retries)
	}
	if d := time.Since(start); d < 900*time.Millisecond {
		t.Errorf("Retry-After: 1 honoured in %v", d)
	}
	// Capped at the backoff's max.
	_, h2 := failFirst(1, 429, http.Header{"Retry-After": {time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)}})
	srv2 := newServer(t, "", h2)
	start = time.Now()
	if res := c.Do(context.Background(), get(t, srv2.URL+"/"), time.Now); res.Code != 200 || time.Since(start) > 5*time.Second {
		t.Errorf("an HTTP-date an hour away, capped at 5ms: code %d after %v", res.Code, time.Since(start))
	}
	// Not honoured when retry_after is false.
	off := false
	_, h3 := failFirst(1, 503, hdr)
	srv3 := newServer(t, "", h3)
	c3 := newClient(t, Options{Retry: &plan.Retry{Attempts: 2, RetryAfter: &off, Backoff: &plan.Backoff{Base: plan.Duration(time.Millisecond), Max: plan.Duration(10 * time.Second), Multiplier: 1}}})
	start = time.Now()
	if res := c3.Do(context.Background(), get(t, srv3.URL+"/"), time.Now); res.Code != 200 || time.Since(start) > 800*time.Millisecond {
		t.Errorf("retry_after: false: code %d after %v", res.Code, time.Since(start))
	}
	// A backoff wait ends with the context.
	_, h4 := failFirst(1, 503, hdr)
	srv4 := newServer(t, "", h4)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start = time.Now()
	if res := c2.Do(ctx, get(t, srv4.URL+"/"), time.Now); res.Code != 503 || res.Retries != 0 || time.Since(start) > 900*time.Millisecond {
		t.Errorf("context ended in the backoff: code %d retries %d after %v", res.Code, res.Retries, time.Since(start))
	}
}

func TestRetryOnConnectionFailures(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String() + "/"
	ln.Close()
	c := newClient(t, Options{Retry: &plan.Retry{Attempts: 3, Backoff: fastBackoff()}})
	res := c.Do(context.Background(), get(t, closed), time.Now)
	if res.Status != StatusRefused || res.Retries != 2 || len(res.Attempts) != 3 {
		t.Errorf("refused: %q retries %d attempts %v, want refused 2 3", res.Status, res.Retries, res.Attempts)
	}
	c2 := newClient(t, Options{Retry: &plan.Retry{Attempts: 3, On: []string{"5xx"}, Backoff: fastBackoff()}})
	if res := c2.Do(context.Background(), get(t, closed), time.Now); res.Retries != 0 {
		t.Errorf("refused, connect not listed: %d retries", res.Retries)
	}

	// reset: a server that drops the first two connections after reading.
	var n atomic.Int64
	addr := tcptest.Serve(t, func(c net.Conn) {
		buf := make([]byte, 4096)
		if _, err := c.Read(buf); err != nil {
			return
		}
		if n.Add(1) <= 2 {
			c.(*net.TCPConn).SetLinger(0)
			return
		}
		_, _ = c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"))
	})
	res = c.Do(context.Background(), get(t, "http://"+addr+"/"), time.Now)
	if res.Code != 200 || res.Retries != 2 || n.Load() != 3 {
		t.Errorf("reset twice: code %d %v retries %d, server saw %d", res.Code, res.Err, res.Retries, n.Load())
	}
}

func TestBackoff(t *testing.T) {
	p, err := newRetry(&plan.Retry{Attempts: 5, Backoff: &plan.Backoff{Base: plan.Duration(100 * time.Millisecond), Max: plan.Duration(time.Second)}})
	if err != nil {
		t.Fatal(err)
	}
	for n, want := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 3: 400 * time.Millisecond, 5: time.Second} {
		if got := p.wait(n, 503, 0, false, 0.9999999); got < want*99/100 || got > want {
			t.Errorf("full jitter, u≈1: wait(%d) = %v, want ≈%v", n, got, want)
		}
		if got := p.wait(n, 503, 0, false, 0); got != 0 {
			t.Errorf("full jitter, u=0: wait(%d) = %v", n, got)
		}
	}
	j := 0.5
	p, _ = newRetry(&plan.Retry{Attempts: 5, Backoff: &plan.Backoff{Type: plan.BackoffConstant, Base: plan.Duration(100 * time.Millisecond), Jitter: &j}})
	if got := p.wait(3, 500, 0, false, 0); got != 50*time.Millisecond {
		t.Errorf("constant, half jitter, u=0: %v, want 50ms", got)
	}
	if got := p.wait(3, 503, 3*time.Second, true, 0); got != 3*time.Second {
		t.Errorf("Retry-After 3s: %v", got)
	}
	if got := p.wait(3, 500, 3*time.Second, true, 0); got != 50*time.Millisecond {
		t.Errorf("Retry-After on a 500 is ignored: %v", got)
	}
	if d, ok := parseRetryAfter([]byte("120")); !ok || d != 120*time.Second {
		t.Errorf("parse 120: %v %v", d, ok)
	}
	if _, ok := parseRetryAfter([]byte("soon")); ok {
		t.Error("parse soon: ok")
	}
}
