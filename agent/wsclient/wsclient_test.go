package wsclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"

	"github.com/surgeload/surge/agent/httpclient"
	surgev1 "github.com/surgeload/surge/gen/surge/v1"
	"github.com/surgeload/surge/hist"
	"github.com/surgeload/surge/internal/poll"
	"github.com/surgeload/surge/plan"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// echoServer is a WebSocket target for tests: it echoes every message
// (unless noEcho), can greet first, and can drop the TCP connection or close
// normally after a number of messages per connection. It counts sessions.
type echoServer struct {
	srv *httptest.Server
	url string

	greet      string
	noEcho     bool
	dropAfter  int // CloseNow after this many messages on a connection
	closeAfter int // Close(1000) after this many messages on a connection
	status     int // reply with this status instead of upgrading

	accepted, active, peak atomic.Int64

	mu     sync.Mutex
	tokens []string
	hosts  []string
	msgs   []string
}

func newEchoServer(t *testing.T, configure func(*echoServer)) *echoServer {
	t.Helper()
	e := &echoServer{}
	if configure != nil {
		configure(e)
	}
	e.srv = httptest.NewServer(e)
	t.Cleanup(e.srv.Close)
	e.url = "ws" + strings.TrimPrefix(e.srv.URL, "http")
	return e
}

func (e *echoServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if e.status != 0 {
		http.Error(w, "no", e.status)
		return
	}
	e.mu.Lock()
	e.tokens = append(e.tokens, r.Header.Get("X-Token"))
	e.hosts = append(e.hosts, r.Host)
	e.mu.Unlock()
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer c.CloseNow()
	e.accepted.Add(1)
	n := e.active.Add(1)
	defer e.active.Add(-1)
	for p := e.peak.Load(); n > p && !e.peak.CompareAndSwap(p, n); p = e.peak.Load() {
	}
	ctx := context.Background()
	if e.greet != "" {
		if c.Write(ctx, websocket.MessageText, []byte(e.greet)) != nil {
			return
		}
	}
	for i := 1; ; i++ {
		typ, b, err := c.Read(ctx)
		if err != nil {
			return
		}
		e.mu.Lock()
		e.msgs = append(e.msgs, string(b))
		e.mu.Unlock()
		if !e.noEcho && c.Write(ctx, typ, b) != nil {
			return
		}
		if i == e.dropAfter {
			_ = c.CloseNow()
			return
		}
		if i == e.closeAfter {
			_ = c.Close(websocket.StatusNormalClosure, "bye")
			return
		}
	}
}

func (e *echoServer) messages() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.msgs)
}

func (e *echoServer) headerTokens() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.tokens)
}

func mustCompile(t *testing.T, w *plan.WebSocket) *Step {
	t.Helper()
	s, err := Compile(w)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func dur(d time.Duration) plan.Duration { return plan.Duration(d) }

func constant(d time.Duration) *plan.Dist { return &plan.Dist{Constant: dur(d)} }

func vars(vu int64) *httpclient.Vars {
	return &httpclient.Vars{VU: vu, Rand: rand.New(rand.NewPCG(1, uint64(vu)))}
}

// run runs s once and returns its result, its handshakes and the stats.
func run(t *testing.T, ctx context.Context, c *Client, s *Step, vu int64) (Result, []Handshake, *surgev1.WebSocketStats) {
	t.Helper()
	st := NewStats()
	var hs []Handshake
	res := c.Run(ctx, s, vars(vu), st, func(h Handshake) { hs = append(hs, h) })
	var e hist.Encoder
	return res, hs, st.Swap(&e)
}

func total(h *surgev1.Histogram) int64 { return h.GetTotal() }

func TestEchoSessionCountsExact(t *testing.T) {
	srv := newEchoServer(t, func(e *echoServer) { e.greet = "welcome" })
	c := New(Options{})
	s := mustCompile(t, &plan.WebSocket{
		Name:    "chat",
		URL:     srv.url + "/chat?vu={{vu}}",
		Headers: map[string]string{"X-Token": "t-{{vu}}", "Host": "chat.example"},
		Hold:    constant(400 * time.Millisecond),
		Send:    &plan.WSSend{Message: "hello {{seq}} vu{{vu}}", Rate: 50, Count: 5},
		Expect:  &plan.WSExpect{Contains: "hello", Timeout: dur(2 * time.Second), Count: 5},
	})
	start := time.Now()
	res, hs, st := run(t, t.Context(), c, s, 7)
	if el := time.Since(start); el < 400*time.Millisecond {
		t.Errorf("Run took %v, want at least the 400ms hold", el)
	}
	if res.Sessions != 1 || res.Replies != 5 || res.ChecksPassed != 1 || res.ChecksFailed != 0 || res.Interrupted || res.Err != nil {
		t.Errorf("result %+v, want 1 session, 5 replies, 1 check passed", res)
	}
	if len(hs) != 1 || hs[0].Status != StatusOpen || hs[0].Code != 101 || hs[0].Err != nil || hs[0].Reconnect {
		t.Errorf("handshakes %+v, want one 101", hs)
	}
	want := []string{"hello 1 vu7", "hello 2 vu7", "hello 3 vu7", "hello 4 vu7", "hello 5 vu7"}
	if got := srv.messages(); !slices.Equal(got, want) {
		t.Errorf("server received %q, want %q", got, want)
	}
	if got := srv.headerTokens(); !slices.Equal(got, []string{"t-7"}) {
		t.Errorf("X-Token headers at the server %q, want [t-7]", got)
	}
	srv.mu.Lock()
	hosts := slices.Clone(srv.hosts)
	srv.mu.Unlock()
	if !slices.Equal(hosts, []string{"chat.example"}) {
		t.Errorf("Host at the server %q, want the header's chat.example", hosts)
	}
	if st.SessionsOpened != 1 || st.SessionsClosed != 1 || st.SessionsActive != 0 || st.AbnormalCloses != 0 ||
		st.ConnectFailures != 0 || st.Reconnects != 0 || st.RepliesMissed != 0 {
		t.Errorf("session counters %+v", st)
	}
	if st.MessagesOut != 5 || st.MessagesIn != 6 || st.BytesOut != 55 || st.BytesIn != 55+int64(len("welcome")) {
		t.Errorf("messages out/in %d/%d, bytes %d/%d; want 5/6 and 55/62", st.MessagesOut, st.MessagesIn, st.BytesOut, st.BytesIn)
	}
	if total(st.RoundTrip) != 5 || total(st.Connect) != 1 || total(st.Session) != 1 {
		t.Errorf("histogram totals: round trip %d, connect %d, session %d; want 5, 1, 1",
			total(st.RoundTrip), total(st.Connect), total(st.Session))
	}
	h, err := hist.FromProto(st.Session)
	if err != nil {
		t.Fatal(err)
	}
	if h.Min() < 399_000 {
		t.Errorf("session held %d µs, want at least 400 ms", h.Min())
	}
}

func TestRateSendingAndHold(t *testing.T) {
	srv := newEchoServer(t, nil)
	c := New(Options{})
	s := mustCompile(t, &plan.WebSocket{
		URL:    srv.url,
		Hold:   constant(time.Second),
		Send:   &plan.WSSend{Message: "m{{seq}}", Rate: 40},
		Expect: &plan.WSExpect{},
	})
	res, _, st := run(t, t.Context(), c, s, 1)
	// 40/s for 1 s from the open: messages at 0, 25 ms, ..., 975 ms.
	if st.MessagesOut < 30 || st.MessagesOut > 40 {
		t.Errorf("sent %d messages at 40/s over 1s, want 30..40", st.MessagesOut)
	}
	if st.MessagesIn != st.MessagesOut || res.Replies != st.MessagesOut || total(st.RoundTrip) != st.MessagesOut || st.RepliesMissed != 0 {
		t.Errorf("out %d, in %d, replies %d, round trips %d, missed %d: want every message answered",
			st.MessagesOut, st.MessagesIn, res.Replies, total(st.RoundTrip), st.RepliesMissed)
	}
	h, err := hist.FromProto(st.Session)
	if err != nil {
		t.Fatal(err)
	}
	if h.Min() < 999_000 {
		t.Errorf("session held %d µs, want at least 1 s", h.Min())
	}
	t.Logf("sent %d messages in a 1s hold at 40/s; round trip p50 %d µs", st.MessagesOut, mustHist(t, st.RoundTrip).ValueAtQuantile(50))
}

func mustHist(t *testing.T, p *surgev1.Histogram) interface{ ValueAtQuantile(float64) int64 } {
	t.Helper()
	h, err := hist.FromProto(p)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestEveryThinkTimeAndCount(t *testing.T) {
	srv := newEchoServer(t, nil)
	c := New(Options{})
	s := mustCompile(t, &plan.WebSocket{
		URL: srv.url,
		// A hold long enough for 3 sends on a loaded machine; without the
		// count it would send about 100.
		Hold: constant(2 * time.Second),
		Send: &plan.WSSend{Message: "x", Every: constant(20 * time.Millisecond), Count: 3},
	})
	res, _, st := run(t, t.Context(), c, s, 1)
	if st.MessagesOut != 3 || st.MessagesIn != 3 {
		t.Errorf("out/in %d/%d, want 3/3 (count caps the messages)", st.MessagesOut, st.MessagesIn)
	}
	// Without expect, replies are counted as messages in, not matched.
	if res.Replies != 0 || total(st.RoundTrip) != 0 {
		t.Errorf("replies %d, round trips %d without expect, want 0", res.Replies, total(st.RoundTrip))
	}
}

func TestDroppedConnectionIsAbnormalAndReconnects(t *testing.T) {
	srv := newEchoServer(t, func(e *echoServer) { e.dropAfter = 3 })
	c := New(Options{})
	jitter := 0.0
	s := mustCompile(t, &plan.WebSocket{
		URL:    srv.url,
		Hold:   constant(10 * time.Second),
		Send:   &plan.WSSend{Message: "m{{seq}}", Rate: 50},
		Expect: &plan.WSExpect{Count: 3},
		Reconnect: &plan.WSReconnect{Max: 2, Backoff: &plan.Backoff{
			Type: plan.BackoffConstant, Base: dur(20 * time.Millisecond), Jitter: &jitter}},
	})
	start := time.Now()
	res, hs, st := run(t, t.Context(), c, s, 1)
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("Run took %v: the step should end once reconnects are used up", el)
	}
	if st.AbnormalCloses != 3 || st.Reconnects != 2 || st.SessionsOpened != 3 || st.SessionsClosed != 3 || st.SessionsActive != 0 {
		t.Errorf("abnormal %d, reconnects %d, opened %d, closed %d, active %d; want 3, 2, 3, 3, 0",
			st.AbnormalCloses, st.Reconnects, st.SessionsOpened, st.SessionsClosed, st.SessionsActive)
	}
	if srv.accepted.Load() != 3 {
		t.Errorf("server accepted %d sessions, want 3", srv.accepted.Load())
	}
	if res.Sessions != 3 || len(hs) != 3 || !hs[1].Reconnect || !hs[2].Reconnect {
		t.Errorf("result %+v, handshakes %d: want 3 sessions, the last two reconnects", res, len(hs))
	}
	// Each session got its 3 replies before the drop (the server echoes
	// before it drops), so each check passed.
	if res.ChecksPassed != 3 || res.ChecksFailed != 0 {
		t.Errorf("checks %d passed, %d failed; want 3, 0", res.ChecksPassed, res.ChecksFailed)
	}
}

func TestPeerNormalCloseIsNotAbnormal(t *testing.T) {
	srv := newEchoServer(t, func(e *echoServer) { e.closeAfter = 2 })
	c := New(Options{})
	s := mustCompile(t, &plan.WebSocket{
		URL:       srv.url,
		Hold:      constant(10 * time.Second),
		Send:      &plan.WSSend{Message: "m", Rate: 50},
		Reconnect: &plan.WSReconnect{Max: 5},
	})
	res, _, st := run(t, t.Context(), c, s, 1)
	if st.AbnormalCloses != 0 || st.Reconnects != 0 || res.Sessions != 1 || st.SessionsClosed != 1 {
		t.Errorf("abnormal %d, reconnects %d, sessions %d, closed %d: a 1000 close is normal and not reconnected",
			st.AbnormalCloses, st.Reconnects, res.Sessions, st.SessionsClosed)
	}
}

func TestMissedReplies(t *testing.T) {
	srv := newEchoServer(t, func(e *echoServer) { e.noEcho = true })
	c := New(Options{})
	s := mustCompile(t, &plan.WebSocket{
		URL:    srv.url,
		Hold:   constant(200 * time.Millisecond),
		Send:   &plan.WSSend{Message: "m", Rate: 100, Count: 3},
		Expect: &plan.WSExpect{Timeout: dur(50 * time.Millisecond), Count: 1},
	})
	res, _, st := run(t, t.Context(), c, s, 1)
	if st.MessagesOut != 3 || st.RepliesMissed != 3 || total(st.RoundTrip) != 0 {
		t.Errorf("out %d, missed %d, round trips %d; want 3, 3, 0", st.MessagesOut, st.RepliesMissed, total(st.RoundTrip))
	}
	if res.ChecksFailed != 1 || res.ChecksPassed != 0 {
		t.Errorf("checks %d passed, %d failed; want expect.count unmet: 0, 1", res.ChecksPassed, res.ChecksFailed)
	}
}

func TestRepliesDueAtTheEndOfTheHoldAreAwaited(t *testing.T) {
	// A slow echo: the reply to the last message comes after the hold.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			typ, b, err := c.Read(context.Background())
			if err != nil {
				return
			}
			time.Sleep(150 * time.Millisecond) // the target's latency
			if c.Write(context.Background(), typ, b) != nil {
				return
			}
		}
	}))
	defer srv.Close()
	c := New(Options{})
	s := mustCompile(t, &plan.WebSocket{
		URL:    "ws" + strings.TrimPrefix(srv.URL, "http"),
		Hold:   constant(50 * time.Millisecond),
		Send:   &plan.WSSend{Message: "m", Rate: 1},
		Expect: &plan.WSExpect{Timeout: dur(5 * time.Second)},
	})
	res, _, st := run(t, t.Context(), c, s, 1)
	if st.MessagesOut != 1 || res.Replies != 1 || st.RepliesMissed != 0 {
		t.Errorf("out %d, replies %d, missed %d; want the reply awaited after the hold: 1, 1, 0", st.MessagesOut, res.Replies, st.RepliesMissed)
	}
	if h := mustHist(t, st.RoundTrip); h.ValueAtQuantile(50) < 140_000 {
		t.Errorf("round trip %d µs, want the target's 150 ms", h.ValueAtQuantile(50))
	}
}

func TestConnectRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c := New(Options{})
	s := mustCompile(t, &plan.WebSocket{URL: "ws://" + addr + "/", Hold: constant(time.Second),
		Reconnect: &plan.WSReconnect{Max: 3}})
	res, hs, st := run(t, t.Context(), c, s, 1)
	if res.Status != httpclient.StatusRefused || res.Err == nil || res.Sessions != 0 {
		t.Errorf("result %+v, want refused", res)
	}
	if len(hs) != 1 || hs[0].Status != httpclient.StatusRefused {
		t.Errorf("handshakes %+v, want one refused (a failed first connect is not retried)", hs)
	}
	if st.ConnectFailures != 1 || st.SessionsOpened != 0 || st.Reconnects != 0 {
		t.Errorf("connect failures %d, opened %d, reconnects %d; want 1, 0, 0", st.ConnectFailures, st.SessionsOpened, st.Reconnects)
	}
}

func TestHandshakeRejectedByStatus(t *testing.T) {
	srv := newEchoServer(t, func(e *echoServer) { e.status = http.StatusForbidden })
	c := New(Options{})
	s := mustCompile(t, &plan.WebSocket{URL: srv.url, Hold: constant(time.Second)})
	res, hs, st := run(t, t.Context(), c, s, 1)
	if res.Status != "4xx" || len(hs) != 1 || hs[0].Code != 403 || st.ConnectFailures != 1 {
		t.Errorf("result %+v, handshakes %+v, failures %d; want one 4xx (403)", res, hs, st.ConnectFailures)
	}
}

func TestNoDialerAllowsOnlyLoopback(t *testing.T) {
	c := New(Options{})
	s := mustCompile(t, &plan.WebSocket{URL: "ws://192.0.2.1:9/", Hold: constant(time.Second)})
	res, _, st := run(t, t.Context(), c, s, 1)
	if res.Err == nil || !strings.Contains(res.Err.Error(), "only loopback") || st.ConnectFailures != 1 {
		t.Errorf("result %+v: want the dial refused without a dialer", res)
	}
}

func TestDialerIsUsed(t *testing.T) {
	srv := newEchoServer(t, nil)
	var dials atomic.Int64
	c := New(Options{Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}})
	s := mustCompile(t, &plan.WebSocket{URL: srv.url, Hold: constant(10 * time.Millisecond),
		ConnectTimeout: dur(time.Second)})
	if res, _, _ := run(t, t.Context(), c, s, 1); res.Sessions != 1 || dials.Load() != 1 {
		t.Errorf("sessions %d, dials %d; want 1, 1", res.Sessions, dials.Load())
	}
}

func TestInterruptedSessionClosesNormally(t *testing.T) {
	srv := newEchoServer(t, nil)
	c := New(Options{})
	s := mustCompile(t, &plan.WebSocket{URL: srv.url, Hold: constant(time.Minute),
		Send: &plan.WSSend{Message: "m", Rate: 10}, Expect: &plan.WSExpect{Count: 1000}})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	st := NewStats()
	done := make(chan Result, 1)
	go func() { done <- c.Run(ctx, s, vars(1), st, nil) }()
	poll.Eventually(t, 10*time.Second, "one active session", func() bool { return st.Active() == 1 })
	cancel()
	var res Result
	select {
	case res = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after ctx ended")
	}
	var e hist.Encoder
	p := st.Swap(&e)
	if !res.Interrupted || p.AbnormalCloses != 0 || p.SessionsClosed != 1 || p.SessionsActive != 0 || res.ChecksFailed != 0 {
		t.Errorf("result %+v, stats %+v: an interrupted session closes normally, uncounted as abnormal or as a check", res, p)
	}
	poll.Eventually(t, 10*time.Second, "the server saw every session end", func() bool { return srv.active.Load() == 0 })
}

func TestManyConcurrentSessions(t *testing.T) {
	const n = 300
	srv := newEchoServer(t, nil)
	c := New(Options{})
	// Held 6s so that all overlap even when connecting them is slow.
	s := mustCompile(t, &plan.WebSocket{URL: srv.url, Hold: constant(6 * time.Second),
		Send: &plan.WSSend{Message: "ping {{seq}}", Rate: 5}, Expect: &plan.WSExpect{}})
	st := NewStats()
	var wg sync.WaitGroup
	results := make([]Result, n)
	for i := range n {
		wg.Go(func() { results[i] = c.Run(t.Context(), s, vars(int64(i)), st, nil) })
	}
	wg.Wait()
	var e hist.Encoder
	p := st.Swap(&e)
	if srv.peak.Load() != n {
		t.Errorf("server saw at most %d concurrent sessions, want %d", srv.peak.Load(), n)
	}
	if p.SessionsOpened != n || p.SessionsClosed != n || p.AbnormalCloses != 0 || p.SessionsActive != 0 {
		t.Errorf("stats %+v", p)
	}
	if p.MessagesIn != p.MessagesOut || total(p.RoundTrip) != p.MessagesOut || p.RepliesMissed != 0 {
		t.Errorf("out %d, in %d, round trips %d, missed %d", p.MessagesOut, p.MessagesIn, total(p.RoundTrip), p.RepliesMissed)
	}
	t.Logf("%d sessions held 6s: %d messages out, round trip p99 %d µs", n, p.MessagesOut, mustHist(t, p.RoundTrip).ValueAtQuantile(99))
}

func TestCompileErrors(t *testing.T) {
	for _, tc := range []struct {
		w    plan.WebSocket
		want string
	}{
		{plan.WebSocket{URL: "ws://127.0.0.1/"}, "hold: required"},
		{plan.WebSocket{URL: "ws://127.0.0.1/{{nope}}", Hold: constant(time.Second)}, "url"},
		{plan.WebSocket{URL: "ws://127.0.0.1/", Hold: constant(time.Second), Send: &plan.WSSend{Message: "x"}}, "rate"},
		{plan.WebSocket{URL: "ws://127.0.0.1/", Hold: constant(time.Second), Send: &plan.WSSend{Message: "{{bad}}", Rate: 1}}, "send.message"},
	} {
		_, err := Compile(&tc.w)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Compile(%+v) = %v, want an error about %q", tc.w, err, tc.want)
		}
	}
}

func TestSplitSeq(t *testing.T) {
	got := splitSeq(`a{{seq}}b{{ seq }}c{{vu}}{{seq}}`)
	if want := []string{"a", "b", "c{{vu}}", ""}; !slices.Equal(got, want) {
		t.Errorf("splitSeq = %q, want %q", got, want)
	}
	if got := stripSeq(`{"n":{{seq}},"vu":{{vu}}}`); got != `{"n":,"vu":{{vu}}}` {
		t.Errorf("stripSeq = %q", got)
	}
}

func TestSecureWebSocket(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			typ, b, err := c.Read(context.Background())
			if err != nil || c.Write(context.Background(), typ, b) != nil {
				return
			}
		}
	}))
	defer srv.Close()
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	c := New(Options{TLS: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}})
	s := mustCompile(t, &plan.WebSocket{URL: "wss" + strings.TrimPrefix(srv.URL, "https"), Hold: constant(100 * time.Millisecond),
		Send: &plan.WSSend{Message: "m", Rate: 20, Count: 2}, Expect: &plan.WSExpect{Count: 2}})
	res, hs, st := run(t, t.Context(), c, s, 1)
	if res.Sessions != 1 || res.ChecksPassed != 1 || st.MessagesIn != 2 || len(hs) != 1 || hs[0].Status != StatusOpen {
		t.Errorf("result %+v, handshakes %+v, in %d: want a wss session with 2 replies", res, hs, st.MessagesIn)
	}
	// Without the test CA the handshake fails as tls.
	res, _, _ = run(t, t.Context(), New(Options{}), s, 1)
	if res.Status != httpclient.StatusTLS {
		t.Errorf("untrusted certificate: status %q (%v), want tls", res.Status, res.Err)
	}
}

// BenchmarkHeldSessions holds 2,000 sessions against an in-process echo
// target and reports the memory and goroutines they take, target included
// (an upper bound for the agent's share).
func BenchmarkHeldSessions(b *testing.B) {
	const n = 2000
	srv := &echoServer{}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	url := "ws" + strings.TrimPrefix(hs.URL, "http")
	c := New(Options{})
	s, err := Compile(&plan.WebSocket{URL: url, Hold: constant(time.Hour),
		Send: &plan.WSSend{Message: "ping {{seq}}", Rate: 1}, Expect: &plan.WSExpect{}})
	if err != nil {
		b.Fatal(err)
	}
	for range b.N {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		g0 := runtime.NumGoroutine()
		ctx, cancel := context.WithCancel(context.Background())
		st := NewStats()
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { c.Run(ctx, s, vars(int64(i)), st, nil) })
		}
		for deadline := time.Now().Add(time.Minute); st.Active() < n && srv.active.Load() < n; {
			if time.Now().After(deadline) {
				b.Fatalf("only %d sessions open after a minute", st.Active())
			}
			time.Sleep(10 * time.Millisecond)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		g := runtime.NumGoroutine() - g0
		cancel()
		wg.Wait()
		b.ReportMetric(float64(after.HeapInuse+after.StackInuse-before.HeapInuse-before.StackInuse)/n, "bytes/session")
		b.ReportMetric(float64(g)/n, "goroutines/session")
	}
}
