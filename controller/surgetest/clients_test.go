package surgetest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/surgeload/surge/agent"
	"github.com/surgeload/surge/cmd/surge/target"
	"github.com/surgeload/surge/controller/report"
)

// Acceptance tests of clients that behave like production clients
// (connection reuse, HTTP/2, error classes, WebSockets, retries) against
// a real cluster: controller and agents over real gRPC and memberlist,
// load to `surge target` on loopback. Each test logs what it measured
// ("measured: ...").

// startTarget runs one more target on a free loopback port until the test
// ends (Cluster runs only one).
func startTarget(t *testing.T, cfg target.Config) *target.Server {
	t.Helper()
	cfg.Listen = "127.0.0.1:0"
	ts, err := target.New(cfg)
	if err != nil {
		t.Fatalf("target: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ts.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("target %s: %v", ts.Addr(), err)
		}
	})
	return ts
}

// twoAgents is a cluster's agents: two in one region, so every share is
// split between two agents.
func twoAgents(hook func(*agent.Config)) []AgentSpec {
	return []AgentSpec{{ID: "a1", Region: "us-east", Configure: hook}, {ID: "a2", Region: "us-east", Configure: hook}}
}

// sampleSpan records when the agents recorded their first and last request
// of each scenario (wall clock), to compare connection counts with the
// run's actual duration.
type sampleSpan struct {
	mu          sync.Mutex
	first, last map[string]time.Time
}

func newSampleSpan() *sampleSpan {
	return &sampleSpan{first: map[string]time.Time{}, last: map[string]time.Time{}}
}

func (s *sampleSpan) observe(scenario, _, _ string, _ int64) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.first[scenario]; !ok {
		s.first[scenario] = now
	}
	s.last[scenario] = now
}

func (s *sampleSpan) span(scenario string) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last[scenario].Sub(s.first[scenario])
}

// Connection reuse, over 10 s with two agents, each scenario against its
// own target: per-vu with 50 VUs opens exactly 50 connections; never opens
// exactly one per request; max_lifetime 2s opens about duration/2s times as
// many as per-vu without it (5× over 10 s), within 20%.
func TestClientReuse(t *testing.T) {
	span := newSampleSpan()
	c := Start(t, Options{Agents: twoAgents(func(c *agent.Config) { c.OnSample = span.observe })})
	perVU := c.Target
	never := startTarget(t, target.Config{})
	lifetime := startTarget(t, target.Config{})
	const vus, lifetimeS = 50, 2.0
	planYAML := fmt.Sprintf(`name: reuse
scenarios:
  pervu:
    executor: constant-vus
    vus: %[4]d
    duration: 10s
    connection: {reuse: per-vu}
    requests: [{url: "http://%[1]s/pervu?delay=100ms"}]
  never:
    executor: constant-vus
    vus: 10
    duration: 10s
    connection: {reuse: never}
    requests: [{url: "http://%[2]s/never?delay=50ms"}]
  lifetime:
    executor: constant-vus
    vus: %[4]d
    duration: 10s
    connection: {reuse: per-vu, max_lifetime: 2s}
    requests: [{url: "http://%[3]s/lifetime?delay=100ms"}]
`, perVU.Addr(), never.Addr(), lifetime.Addr(), vus)
	s, _ := c.Run(t, "reuse.yaml", []byte(planYAML))
	sc := s.GetScenarios()
	pv, nv, lt := perVU.Stats(), never.Stats(), lifetime.Stats()
	lifeSpan := span.span("lifetime")
	// A VU's connection is replaced after the request in flight when it
	// turns 2s old, so over the span of its requests each VU opens about
	// span/2s connections (5 over 10 s; exactly ⌈span/(2s + a request)⌉):
	// "about 5×" is span/2s measured, within 20%.
	wantRatio := lifeSpan.Seconds() / lifetimeS
	ratio := float64(lt.ConnsAccepted) / float64(pv.ConnsAccepted)
	t.Logf("measured: per-vu %d VUs: %d conns for %d requests (summary %d); never: %d conns for %d requests (summary %d, target %d); "+
		"max_lifetime 2s: %d conns for %d requests (summary %d) over %v: %.2f× per-vu, expected %.2f× (span/2s); status %s",
		vus, pv.ConnsAccepted, pv.Requests, sc["pervu"].GetRequests(),
		nv.ConnsAccepted, nv.Requests, sc["never"].GetRequests(), nv.Requests,
		lt.ConnsAccepted, lt.Requests, sc["lifetime"].GetRequests(), lifeSpan.Round(time.Millisecond), ratio, wantRatio, s.GetStatus())
	if s.GetStatus() != "finished" {
		t.Errorf("status %q, error %q", s.GetStatus(), s.GetError())
	}
	if pv.ConnsAccepted != vus {
		t.Errorf("reuse per-vu: target accepted %d connections, want exactly %d (one per VU)", pv.ConnsAccepted, vus)
	}
	if nv.Requests == 0 || nv.ConnsAccepted != sc["never"].GetRequests() || nv.ConnsAccepted != nv.Requests {
		t.Errorf("reuse never: target accepted %d connections, summary has %d requests, target saw %d: want all equal",
			nv.ConnsAccepted, sc["never"].GetRequests(), nv.Requests)
	}
	for name, st := range map[string]target.Stats{"pervu": pv, "lifetime": lt} {
		if st.Requests != sc[name].GetRequests() || st.Requests == 0 {
			t.Errorf("%s: target saw %d requests, summary has %d", name, st.Requests, sc[name].GetRequests())
		}
	}
	// The agents count the connections they open: the summary's
	// connections section agrees with the target.
	js := report.FromProto(s)
	for name, st := range map[string]target.Stats{"pervu": pv, "never": nv, "lifetime": lt} {
		cn := js.Scenarios[name].Connections
		t.Logf("measured: %s: summary connections opened %d, closed %d, open at end %d, peak open %d; target accepted %d",
			name, cn.Opened, cn.Closed, cn.Open, cn.PeakOpen, st.ConnsAccepted)
		if cn.Opened != st.ConnsAccepted {
			t.Errorf("%s: summary says %d connections opened, target accepted %d", name, cn.Opened, st.ConnsAccepted)
		}
	}
	if math.Abs(ratio-wantRatio) > 0.2*wantRatio {
		t.Errorf("max_lifetime 2s: %d connections = %.2f× per-vu's %d, want %.2f× ±20%%", lt.ConnsAccepted, ratio, pv.ConnsAccepted, wantRatio)
	}
}

// HTTP/2 multiplexing, h2 over TLS (trusting the target's self-signed CA
// from a file) and h2c, with reuse: pool: 20 VUs over two agents (10 each)
// keep 10 requests in flight per agent, so with max_concurrent_streams 5
// each agent's pool opens ⌈10/5⌉ = 2 connections: ⌈20/5⌉ = 4 in all. The
// target's h2_conns counts the connections that carried HTTP/2 requests
// (an h2c client may dial a spare one it never uses).
func TestClientHTTP2(t *testing.T) {
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	c := Start(t, Options{
		Agents: twoAgents(nil),
		Target: target.Config{TLSListen: "127.0.0.1:0", TLSSelfSigned: true, TLSCAOut: caFile},
	})
	h2c := startTarget(t, target.Config{H2C: true})
	const vus, streams = 20, 5
	planYAML := fmt.Sprintf(`name: h2
scenarios:
  h2:
    executor: constant-vus
    vus: %[4]d
    duration: 3s
    connection: {reuse: pool, http2: h2, max_concurrent_streams: %[5]d, tls: {ca_file: %[3]q}}
    requests: [{url: "https://%[1]s/h2?delay=100ms"}]
  h2c:
    executor: constant-vus
    vus: %[4]d
    duration: 3s
    connection: {reuse: pool, http2: h2c, max_concurrent_streams: %[5]d}
    requests: [{url: "http://%[2]s/h2c?delay=100ms"}]
`, c.Target.TLSAddr(), h2c.Addr(), caFile, vus, streams)
	s, _ := c.Run(t, "h2.yaml", []byte(planYAML))
	sc := s.GetScenarios()
	js := report.FromProto(s)
	want := int64(math.Ceil(float64(vus) / streams))
	for _, x := range []struct {
		name string
		st   target.Stats
	}{{"h2", c.Target.Stats()}, {"h2c", h2c.Stats()}} {
		st := x.st
		t.Logf("measured: %s: %d requests (HTTP/2 %d, TLS %d; summary %d, errors %v) over h2_conns %d (conns_accepted %d; summary opened %d), streams peak %d; want %d connections",
			x.name, st.Requests, st.RequestsH2, st.RequestsTLS, sc[x.name].GetRequests(), sc[x.name].GetErrors(), st.H2Conns, st.ConnsAccepted,
			js.Scenarios[x.name].Connections.Opened, st.H2StreamsPeak, want)
		if st.Requests == 0 || st.RequestsH2 != st.Requests || st.Requests != sc[x.name].GetRequests() {
			t.Errorf("%s: target saw %d requests, %d of them HTTP/2; summary has %d", x.name, st.Requests, st.RequestsH2, sc[x.name].GetRequests())
		}
		if st.H2Conns != want {
			t.Errorf("%s: requests carried by %d connections, want ⌈%d/%d⌉ = %d", x.name, st.H2Conns, vus, streams, want)
		}
		if opened := js.Scenarios[x.name].Connections.Opened; opened != want {
			t.Errorf("%s: summary says %d connections opened, want %d", x.name, opened, want)
		}
		if st.H2StreamsPeak > streams {
			t.Errorf("%s: %d streams in flight on one connection, max_concurrent_streams is %d", x.name, st.H2StreamsPeak, streams)
		}
	}
	if st := c.Target.Stats(); st.RequestsTLS != st.Requests || st.TLSHandshakeErrors != 0 {
		t.Errorf("h2: %d of %d requests over TLS, %d handshake errors", st.RequestsTLS, st.Requests, st.TLSHandshakeErrors)
	}
	if s.GetAll().GetFailures() != 0 {
		t.Errorf("failures %d: %v", s.GetAll().GetFailures(), s.GetAll().GetErrors())
	}
}

// garbageServer accepts connections on loopback, reads a request's head and
// answers bytes that are not HTTP, then closes: a protocol error.
func garbageServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return // the listener closed
			}
			wg.Go(func() {
				defer conn.Close()
				_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
				r := bufio.NewReader(conn)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if line == "\r\n" {
						break
					}
				}
				_, _ = conn.Write([]byte("garbage\r\n\r\n"))
			})
		}
	})
	t.Cleanup(func() {
		_ = ln.Close()
		wg.Wait()
	})
	return ln.Addr().String()
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// Every error class, one scenario each, 3 requests per scenario: each
// scenario's failures all land under the class's name in the summary.
// dns: the URL's host is templated (so the agent's up-front check of the
// plan's hosts skips it) and expands to a name with a 64-byte label, which
// no resolver can look up: Go's answers "no such host" without sending a
// query, so the test needs no network.
func TestClientErrorClasses(t *testing.T) {
	c := Start(t, Options{
		Agents: twoAgents(nil),
		Target: target.Config{TLSListen: "127.0.0.1:0", TLSSelfSigned: true},
	})
	url := c.TargetURL()
	badName := strings.Repeat("x", 64) + ".invalid"
	scen := map[string]string{
		"timeout":  `{url: "` + url + `/slow?delay=5s", timeout: 200ms}`,
		"refused":  `{url: "http://` + closedPort(t) + `/refused"}`,
		"reset":    `{url: "` + url + `/reset?reset=1"}`,
		"tls":      `{url: "https://` + c.Target.TLSAddr() + `/tls"}`,
		"dns":      `{url: "http://{{region}}.` + badName + `/dns"}`,
		"http_4xx": `{url: "` + url + `/missing?status=404"}`,
		"http_5xx": `{url: "` + url + `/broken?status=500"}`,
		"protocol": `{url: "http://` + garbageServer(t) + `/garbage"}`,
	}
	const n = 4 // requests per class: 2 per agent
	var b strings.Builder
	b.WriteString("name: errors\nscenarios:\n")
	for name, req := range scen {
		fmt.Fprintf(&b, "  %s:\n    executor: shared-iterations\n    vus: 2\n    iterations: %d\n    requests: [%s]\n", name, n, req)
	}
	s, _ := c.Run(t, "errors.yaml", []byte(b.String()))
	js := report.FromProto(s)
	t.Logf("measured: summary errors %v; failures %d of %d requests; target %d requests, %d resets, by status %v, TLS handshake errors %d; status %s %s",
		js.Errors, js.Failures, js.Requests, c.Target.Stats().Requests, c.Target.Stats().Resets, c.Target.Stats().ByStatus,
		c.Target.Stats().TLSHandshakeErrors, s.GetStatus(), s.GetError())
	for name := range scen {
		got := js.Scenarios[name]
		t.Logf("measured: scenario %s: %d requests, %d failures, errors %v", name, got.Requests, got.Failures, got.Errors)
		if got.Requests != n || got.Failures != n || got.Errors[name] != n {
			t.Errorf("%s: %d requests, %d failures, errors %v: want %d failures, all under %q", name, got.Requests, got.Failures, got.Errors, n, name)
		}
		if js.Errors[name] != n {
			t.Errorf("summary errors[%q] = %d, want %d", name, js.Errors[name], n)
		}
	}
	if js.Failures != int64(n*len(scen)) {
		t.Errorf("summary failures %d, want %d", js.Failures, n*len(scen))
	}
}

// wsPlan is a plan of one per-vu-iterations scenario whose VUs each hold
// one WebSocket session for hold, sending rate messages a second.
func wsPlan(name, addr string, vus int, hold string, rate float64) []byte {
	return []byte(fmt.Sprintf(`name: %[1]s
scenarios:
  %[1]s:
    executor: per-vu-iterations
    vus: %[3]d
    iterations: 1
    flows:
      chat:
        steps:
          - websocket:
              name: chat
              url: "ws://%[2]s/ws?vu={{vu}}"
              hold: %[4]s
              send: {message: 'vu {{vu}} msg {{seq}}', rate: %[5]g}
              expect: {timeout: 10s}
`, name, addr, vus, hold, rate))
}

// 2,000 WebSocket sessions held for 30 s across two agents (each VU one
// session: per-vu-iterations with one iteration, so exactly 2,000), a
// message every 5 s each: the target sees all 2,000 open at once, every
// session ends with the client's close frame, and the summary's websocket
// section has the sessions and a round trip per message. (At a message a
// second, 4,000 messages/s under -race saturate a shared 2-core machine:
// round-trip p50 went to 2.6 s and replies were missed.)
func TestClientWebSocketHeld(t *testing.T) {
	c := Start(t, Options{Agents: twoAgents(patientAgent)})
	const sessions = 2000
	began := time.Now()
	s, _ := c.Run(t, "ws.yaml", wsPlan("held", c.Target.Addr(), sessions, "30s", 0.2))
	took := time.Since(began)
	st := sessionsEnded(t, c.Target)
	js := report.FromProto(s)
	t.Logf("measured: %d sessions in %v: target peak %d, accepted %d, closed by client %d, abnormal %d, dropped %d, messages in %d out %d; summary websocket: %s; status %s %s",
		sessions, took.Round(time.Millisecond), st.WSSessionsPeak, st.WSSessionsAccepted, st.WSClosedByClient, st.WSClosedAbnormal, st.WSDropped,
		st.WSMessagesIn, st.WSMessagesOut, wsSummary(js.WebSocket), s.GetStatus(), s.GetError())
	t.Logf("measured: summary handshakes %d, errors %v, duration %.1fs, notes %q", s.GetAll().GetRequests(), s.GetAll().GetErrors(), s.GetDurationS(), s.GetNotes())
	if s.GetStatus() != "finished" {
		t.Errorf("status %q, error %q", s.GetStatus(), s.GetError())
	}
	if st.WSSessionsPeak != sessions || st.WSSessionsAccepted != sessions {
		t.Errorf("target: %d sessions open at once, %d accepted; want all %d held at once", st.WSSessionsPeak, st.WSSessionsAccepted, sessions)
	}
	if st.WSClosedByClient != sessions || st.WSClosedAbnormal != 0 || st.WSDropped != 0 {
		t.Errorf("target: closed by client %d, abnormal %d, dropped %d; want %d, 0, 0", st.WSClosedByClient, st.WSClosedAbnormal, st.WSDropped, sessions)
	}
	// A message every 5 s over 30 s, the first at once: 6 a session (5 if
	// the last one falls past the hold).
	if st.WSMessagesIn < 5*sessions || st.WSMessagesIn > 6*sessions || st.WSMessagesOut != st.WSMessagesIn {
		t.Errorf("target: %d messages in, %d echoed; want %d-%d, all echoed", st.WSMessagesIn, st.WSMessagesOut, 5*sessions, 6*sessions)
	}
	checkWebSocketSummary(t, js, st, sessions, 0, 0)
}

// patientAgent raises the agent's pause detection threshold from 1 s to
// 10 s: under -race on two shared cores, thousands of sessions opening or
// closing at once can starve the agent's ticker for over a second, which
// it would take for a SIGSTOP and suspend its runs.
func patientAgent(c *agent.Config) { c.PauseThreshold = 10 * time.Second }

// sessionsEnded waits until the target has no WebSocket session open (the
// run's last close handshakes may still be under way when its summary
// comes) and returns its counters.
func sessionsEnded(t *testing.T, ts *target.Server) target.Stats {
	t.Helper()
	return waitFor(t, 30*time.Second, "every WebSocket session closed", func() (target.Stats, error) {
		st := ts.Stats()
		if st.WSSessionsActive != 0 {
			return st, fmt.Errorf("%d sessions open", st.WSSessionsActive)
		}
		return st, nil
	})
}

// checkWebSocketSummary checks the summary's websocket section against
// what the target counted: sessions opened and abnormal closes exactly;
// messages each way equal to the target's, except that up to slack
// messages in flight when the target dropped their sessions may be lost
// (one per dropped session at most, at these rates); and a round trip for
// every reply, with a median under a second.
func checkWebSocketSummary(t *testing.T, js *report.Summary, st target.Stats, opened, abnormal, slack int64) {
	t.Helper()
	ws := js.WebSocket
	if ws == nil {
		t.Error("summary has no websocket section")
		return
	}
	if ws.Sessions != opened || ws.AbnormalCloses != abnormal {
		t.Errorf("summary websocket: %d sessions, %d abnormal closes; want %d, %d", ws.Sessions, ws.AbnormalCloses, opened, abnormal)
	}
	if d := ws.MessagesOut - st.WSMessagesIn; d < 0 || d > slack {
		t.Errorf("summary websocket: %d messages sent, the target received %d (at most %d lost)", ws.MessagesOut, st.WSMessagesIn, slack)
	}
	if d := st.WSMessagesOut - ws.MessagesIn; d < 0 || d > slack {
		t.Errorf("summary websocket: %d messages received, the target echoed %d (at most %d lost)", ws.MessagesIn, st.WSMessagesOut, slack)
	}
	if rt := ws.RoundTripUS; rt == nil || rt.Count != ws.MessagesIn || ws.RepliesMissed != ws.MessagesOut-ws.MessagesIn || rt.P50 <= 0 || rt.P50 > 1_000_000 {
		t.Errorf("summary websocket round trips %+v, replies missed %d: want one per reply (%d), none missed but the lost, p50 in (0, 1s]",
			rt, ws.RepliesMissed, ws.MessagesIn)
	}
}

// wsSummary is the summary's websocket section for the log.
func wsSummary(ws *report.WebSockets) string {
	if ws == nil {
		return "none"
	}
	rt := ws.RoundTripUS
	if rt == nil {
		rt = &report.Latency{}
	}
	conn := ws.ConnectUS
	if conn == nil {
		conn = &report.Latency{}
	}
	return fmt.Sprintf("sessions %d (peak active %d), abnormal closes %d, reconnects %d, messages out %d in %d, replies missed %d, round trips %d p50 %dµs p99 %dµs, connect p50 %dµs p99 %dµs",
		ws.Sessions, ws.SessionsPeakActive, ws.AbnormalCloses, ws.Reconnects, ws.MessagesOut, ws.MessagesIn, ws.RepliesMissed, rt.Count, rt.P50, rt.P99, conn.P50, conn.P99)
}

// The target drops 50 of 200 held sessions (POST /__surge/ws/drop?n=50)
// once all are open: the summary counts exactly 50 abnormal closes, the
// rest close normally.
func TestClientWebSocketDrops(t *testing.T) {
	c := Start(t, Options{Agents: twoAgents(patientAgent)})
	const sessions, drop = 200, 50
	dropped := make(chan string, 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { dropped <- dropWhenHeld(ctx, c, sessions, drop) })
	s, _ := c.Run(t, "wsdrop.yaml", wsPlan("drops", c.Target.Addr(), sessions, "10s", 1))
	cancel()
	wg.Wait()
	res := <-dropped
	st := sessionsEnded(t, c.Target)
	js := report.FromProto(s)
	t.Logf("measured: drop endpoint answered %s; target peak %d, dropped %d, closed by client %d, abnormal %d, messages in %d; summary websocket: %s; status %s",
		res, st.WSSessionsPeak, st.WSDropped, st.WSClosedByClient, st.WSClosedAbnormal, st.WSMessagesIn, wsSummary(js.WebSocket), s.GetStatus())
	if res != fmt.Sprintf(`{"dropped":%d}`, drop) {
		t.Fatalf("drop: %s", res)
	}
	if st.WSDropped != drop || st.WSClosedByClient != sessions-drop || st.WSClosedAbnormal != 0 {
		t.Errorf("target: dropped %d, closed by client %d, abnormal %d; want %d, %d, 0", st.WSDropped, st.WSClosedByClient, st.WSClosedAbnormal, drop, sessions-drop)
	}
	checkWebSocketSummary(t, js, st, sessions, drop, drop)
}

// dropWhenHeld waits until n sessions are open on the cluster's target,
// then asks it over HTTP to drop k of them; it returns the reply's body or
// what went wrong.
func dropWhenHeld(ctx context.Context, c *Cluster, n, k int64) string {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for c.Target.Stats().WSSessionsActive < n {
		select {
		case <-ctx.Done():
			return fmt.Sprintf("never %d sessions open: %d", n, c.Target.Stats().WSSessionsActive)
		case <-tick.C:
		}
	}
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, fmt.Sprintf("%s%s?n=%d", c.TargetURL(), target.WSDropPath, k), nil)
	if err != nil {
		return err.Error()
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	var b strings.Builder
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		b.WriteString(strings.TrimSpace(sc.Text()))
	}
	return strings.ReplaceAll(b.String(), " ", "")
}

// Retries against a target failing 30% of requests with 503, attempts: 3
// on 5xx with a 1 ms constant backoff, 2,000 requests over two agents: the
// success rate is 1 − 0.3³ = 97.3% within 3 points, and every 503 the
// target sent is a failed attempt, either retried or the last attempt of a
// request that failed:
//
//	target 503 replies == summary retries + summary http_5xx failures
//
// and every attempt reached the target: target requests == summary
// requests + retries.
func TestClientRetries(t *testing.T) {
	c := Start(t, Options{Agents: twoAgents(nil)})
	const requests = 2000
	planYAML := fmt.Sprintf(`name: retries
scenarios:
  flaky:
    executor: shared-iterations
    vus: 20
    iterations: %d
    retry: {attempts: 3, on: [5xx], backoff: {type: constant, base: 1ms}}
    requests: [{name: flaky, url: "%s/flaky?status=503&fail_rate=0.3"}]
`, requests, c.TargetURL())
	s, _ := c.Run(t, "retries.yaml", []byte(planYAML))
	st := c.Target.Stats()
	js := report.FromProto(s)
	retries := js.Retries
	success := 1 - float64(js.Failures)/float64(js.Requests)
	t.Logf("measured: %d requests, %d failures (errors %v), success %.4f (want 0.973±0.03); summary retries %d; target %d requests, %d 503s (errors %d), by status %v",
		js.Requests, js.Failures, js.Errors, success, retries, st.Requests, st.ByStatus[503], st.Errors, st.ByStatus)
	if js.Requests != requests {
		t.Errorf("summary requests %d, want %d", js.Requests, requests)
	}
	if math.Abs(success-(1-0.3*0.3*0.3)) > 0.03 {
		t.Errorf("success rate %.4f, want 0.973±0.03", success)
	}
	if js.Failures != js.Errors["http_5xx"] {
		t.Errorf("failures %d, http_5xx %d: every failure should be a 503 after 3 attempts", js.Failures, js.Errors["http_5xx"])
	}
	if retries+js.Errors["http_5xx"] != st.ByStatus[503] || st.ByStatus[503] != st.Errors {
		t.Errorf("retries %d + final 5xx failures %d = %d, target sent %d 503s (errors %d)",
			retries, js.Errors["http_5xx"], retries+js.Errors["http_5xx"], st.ByStatus[503], st.Errors)
	}
	if st.Requests != js.Requests+retries {
		t.Errorf("target saw %d requests, summary requests %d + retries %d = %d", st.Requests, js.Requests, retries, js.Requests+retries)
	}
}
