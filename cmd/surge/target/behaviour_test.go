package target_test

import (
	"errors"
	"io"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/surgeload/surge/cmd/surge/target"
	"github.com/surgeload/surge/internal/poll"
)

// --error-status 503 --retry-after 2: every failed reply is a 503 with
// Retry-After, counted as an error.
func TestErrorStatusRetryAfter(t *testing.T) {
	s := start(t, target.Config{ErrorRate: 1, ErrorStatus: 503, RetryAfter: 2})
	c := newClient(t)
	for range 4 {
		resp, err := c.Get("http://" + s.Addr() + "/e")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "2" {
			t.Fatalf("got %s with Retry-After %q, want 503 with 2", resp.Status, resp.Header.Get("Retry-After"))
		}
	}
	// A 429 asked for in the query carries it too, a 500 does not; a
	// query retry_after replaces it.
	for _, tt := range []struct{ query, status, retryAfter string }{
		{"status=429", "429 Too Many Requests", "2"},
		{"status=500", "500 Internal Server Error", ""},
		{"status=503&retry_after=0", "503 Service Unavailable", "0"},
	} {
		resp, err := c.Get("http://" + s.Addr() + "/e?" + tt.query)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.Status != tt.status || resp.Header.Get("Retry-After") != tt.retryAfter {
			t.Errorf("?%s: %s with Retry-After %q, want %s with %q", tt.query, resp.Status, resp.Header.Get("Retry-After"), tt.status, tt.retryAfter)
		}
	}
	st := s.Stats()
	if st.Errors != 7 || st.ByStatus[503] != 5 || st.ByStatus[429] != 1 || st.ByStatus[500] != 1 {
		t.Errorf("errors %d, by status %v; want 7 = 5×503 + 429 + 500", st.Errors, st.ByStatus)
	}
}

// ?status=503&fail_rate=0.3 fails about 30% with 503; the target's error
// count is exactly the 503s the client saw.
func TestFailRateQuery(t *testing.T) {
	const n = 600
	s := start(t, target.Config{})
	c := newClient(t)
	var failed int64
	for range n {
		code, _ := get(t, c, "http://"+s.Addr()+"/f?status=503&fail_rate=0.3")
		switch code {
		case 503:
			failed++
		case 200:
		default:
			t.Fatalf("status %d", code)
		}
	}
	st := s.Stats()
	t.Logf("%d of %d failed (%.1f%%)", failed, n, 100*float64(failed)/n)
	if st.Errors != failed || st.ByStatus[503] != failed || st.ByStatus[200] != n-failed {
		t.Errorf("target counted %d errors, %v by status; client saw %d 503s of %d", st.Errors, st.ByStatus, failed, n)
	}
	// 30% of 600 is 180 ± 11 (one sd); allow five.
	if failed < 125 || failed > 235 {
		t.Errorf("%d of %d failed, want about 30%%", failed, n)
	}
}

// A reset over HTTP/1 is a TCP RST: the client sees ECONNRESET.
func TestResetHTTP1(t *testing.T) {
	s := start(t, target.Config{})
	tr := transport(t, s, http1)
	tr.DisableKeepAlives = true // a fresh connection, so the client does not retry
	c := client(tr)
	for range 3 {
		resp, err := c.Get("http://" + s.Addr() + "/r?reset=1")
		if err == nil {
			resp.Body.Close()
			t.Fatalf("reset request answered %s", resp.Status)
		}
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("err = %v, want ECONNRESET", err)
		}
	}
	// ResetRate in the config does the same.
	s2 := start(t, target.Config{ResetRate: 1})
	if _, err := c.Get("http://" + s2.Addr() + "/r"); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("--reset-rate 1: err = %v, want ECONNRESET", err)
	}
	poll.Eventually(t, 10*time.Second, "reset connections closed", func() bool { return s.Stats().ConnsActive == 0 })
	if st := s.Stats(); st.Resets != 3 || st.Requests != 3 || len(st.ByStatus) != 0 || st.ConnsAccepted != 3 {
		t.Errorf("resets %d, requests %d, by status %v, conns %d; want 3, 3, none, 3", st.Resets, st.Requests, st.ByStatus, st.ConnsAccepted)
	}
	if st := s2.Stats(); st.Resets != 1 {
		t.Errorf("--reset-rate 1: resets %d, want 1", st.Resets)
	}
}

// A reset over HTTP/2 resets the stream; other streams on the connection
// carry on.
func TestResetH2(t *testing.T) {
	s := start(t, target.Config{H2C: true})
	c := client(transport(t, s, h2c))
	if code, _ := getProto(t, c, "http://"+s.Addr()+"/ok"); code != 200 {
		t.Fatalf("status %d", code)
	}
	_, err := c.Get("http://" + s.Addr() + "/r?reset=1")
	if err == nil || !strings.Contains(err.Error(), "INTERNAL_ERROR") {
		t.Fatalf("h2 reset: err = %v, want a stream error", err)
	}
	if code, _ := getProto(t, c, "http://"+s.Addr()+"/ok"); code != 200 {
		t.Fatalf("after the reset: status %d", code)
	}
	if st := s.Stats(); st.Resets != 1 || st.H2Conns != 1 || st.RequestsH2 != 3 {
		t.Errorf("resets %d, h2 conns %d, h2 requests %d; want 1, 1, 3", st.Resets, st.H2Conns, st.RequestsH2)
	}
}

// A slow body comes in pieces and takes at least the configured time;
// its size is as asked.
func TestSlowBody(t *testing.T) {
	const slow = 300 * time.Millisecond
	s := start(t, target.Config{SlowBody: slow, BodySize: 1000})
	c := newClient(t)
	for _, tt := range []struct {
		query string
		size  int
		min   time.Duration
	}{
		{"", 1000, slow},
		{"?bytes=5&slow=200ms", 5, 200 * time.Millisecond},
		{"?slow=0&bytes=100000", 100000, 0},
	} {
		begin := time.Now()
		resp, err := c.Get("http://" + s.Addr() + "/s" + tt.query)
		if err != nil {
			t.Fatal(err)
		}
		headers := time.Since(begin)
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		took := time.Since(begin)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%q: headers after %s, body after %s", tt.query, headers, took)
		if len(b) != tt.size || strings.Trim(string(b), "x") != "" {
			t.Errorf("%q: body of %d bytes, want %d x's", tt.query, len(b), tt.size)
		}
		if took < tt.min {
			t.Errorf("%q: body took %s, want at least %s", tt.query, took, tt.min)
		}
	}
	// The default "ok\n" body can be slow too.
	s2 := start(t, target.Config{SlowBody: 100 * time.Millisecond})
	begin := time.Now()
	if code, body := get(t, c, "http://"+s2.Addr()+"/s"); code != 200 || body != "ok\n" {
		t.Errorf("slow ok: %d %q", code, body)
	}
	if took := time.Since(begin); took < 100*time.Millisecond {
		t.Errorf("slow ok took %s, want at least 100ms", took)
	}
}

// ?delay= replaces the latency distribution for one request.
func TestDelayQuery(t *testing.T) {
	s := start(t, target.Config{Latency: "1h"})
	c := newClient(t)
	begin := time.Now()
	if code, _ := get(t, c, "http://"+s.Addr()+"/d?delay=uniform(50ms,60ms)"); code != 200 {
		t.Fatalf("status %d", code)
	}
	if took := time.Since(begin); took < 50*time.Millisecond {
		t.Errorf("took %s, want at least 50ms", took)
	}
}

// Bad query parameters get a 400 naming them; unknown ones are ignored.
func TestQueryErrors(t *testing.T) {
	s := start(t, target.Config{})
	c := newClient(t)
	for _, tt := range []struct{ query, want string }{
		{"delay=x", `query delay="x": want a duration`},
		{"status=99", `query status="99": want an HTTP status 200-599`},
		{"fail_rate=2", `query fail_rate="2": want a fraction`},
		{"reset=x", `query reset="x": want a fraction`},
		{"bytes=-1", `query bytes="-1": want 0 to`},
		{"slow=-1s", `query slow="-1s": want a duration`},
		{"retry_after=x", `query retry_after="x": want seconds`},
	} {
		code, body := get(t, c, "http://"+s.Addr()+"/q?"+tt.query)
		if code != 400 || !strings.Contains(body, tt.want) {
			t.Errorf("?%s: %d %q, want 400 with %q", tt.query, code, body, tt.want)
		}
	}
	if code, body := get(t, c, "http://"+s.Addr()+"/q?id=7&user=x"); code != 200 || body != "ok\n" {
		t.Errorf("unknown parameters: %d %q, want 200 ok", code, body)
	}
	if code, _ := get(t, c, "http://"+s.Addr()+"/q?status=204"); code != 204 {
		t.Errorf("status=204: %d", code)
	}
	// Unknown control paths are 404 and not counted as load.
	if code, _ := get(t, c, "http://"+s.Addr()+"/__surge/nope"); code != 404 {
		t.Errorf("unknown control path: %d, want 404", code)
	}
	if st := s.Stats(); st.ByStatus[400] != 7 || st.Errors != 0 || st.Requests != 9 {
		t.Errorf("by status %v, errors %d, requests %d; want 7×400, no errors, 9 requests", st.ByStatus, st.Errors, st.Requests)
	}
}

// Counters are safe under concurrent load and add up.
func TestCountersConcurrent(t *testing.T) {
	const workers, each = 8, 50
	s := start(t, target.Config{H2C: true})
	var wg sync.WaitGroup
	for w := range workers {
		c := client(transport(t, s, h2c))
		if w%2 == 0 {
			c = client(transport(t, s, http1))
		}
		wg.Go(func() {
			for i := range each {
				q := "/c"
				if i%5 == 0 {
					q = "/c?status=503"
				}
				resp, err := c.Get("http://" + s.Addr() + q)
				if err != nil {
					t.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
	st := s.Stats()
	if st.Requests != workers*each || st.RequestsH2+st.RequestsHTTP1 != st.Requests || st.RequestsH2 != workers/2*each {
		t.Errorf("requests %d = h2 %d + http1 %d, want %d, half h2", st.Requests, st.RequestsH2, st.RequestsHTTP1, workers*each)
	}
	if st.Errors != workers*each/5 || st.ByStatus[200] != workers*each*4/5 {
		t.Errorf("errors %d, by status %v", st.Errors, st.ByStatus)
	}
}

// The control endpoints answer over HTTP/2 too and report every counter.
func TestStatsOverH2(t *testing.T) {
	s := start(t, target.Config{H2C: true})
	c := client(transport(t, s, h2c))
	get(t, c, "http://"+s.Addr()+"/a?status=503")
	code, body := get(t, c, "http://"+s.Addr()+target.StatsPath)
	if code != 200 {
		t.Fatalf("stats: %d", code)
	}
	for _, field := range []string{`"requests_h2":1`, `"errors":1`, `"by_status":{"503":1}`, `"h2_conns":1`,
		`"h2_streams_peak":1`, `"ws_sessions_peak":0`, `"resets":0`, `"tls_handshakes":0`} {
		if !strings.Contains(body, field) {
			t.Errorf("stats JSON lacks %s: %s", field, body)
		}
	}
}
