// Package wsclient holds the sessions of websocket steps: connect (with
// headers), send templated messages at a rate or after think times, match
// replies, hold the session for a drawn duration, close, and reconnect after
// an abnormal closure. Handshakes go through an http.Client whose dialer is
// the caller's (the agent's allow-listed dialer), so ws:// and wss://
// targets are checked like any other. What sessions do is counted in Stats.
package wsclient

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/surgeload/surge/agent/httpclient"
	"github.com/surgeload/surge/plan"
)

// Defaults.
const (
	// DefaultConnectTimeout bounds a handshake when the step gives none.
	DefaultConnectTimeout = 10 * time.Second
	// DefaultReplyTimeout is how long a sent message waits for its reply
	// when the step's expect gives no timeout.
	DefaultReplyTimeout = 10 * time.Second
	// MaxMatchedMessage bounds a received message that must be searched
	// for expect.contains; a bigger one ends the session (abnormally).
	// Without contains, messages of any size are read and discarded.
	MaxMatchedMessage = 1 << 20

	// writeGrace bounds a blocked write past the end of the hold.
	writeGrace = 10 * time.Second
)

// Handshake statuses besides HTTP status classes and httpclient's error
// kinds.
const (
	// StatusOpen is the status of a handshake that opened a session
	// (101 Switching Protocols).
	StatusOpen = "1xx"
	// StatusProtocol is a 101 reply that broke the WebSocket handshake
	// rules (bad Sec-WebSocket-Accept, unknown subprotocol or extension).
	StatusProtocol = "protocol"
)

// Options configure a Client.
type Options struct {
	// Dial opens TCP connections for handshakes; it should enforce the
	// agent's allow-list. nil allows loopback IP addresses only.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// TLS configures wss:// connections; nil uses the system roots.
	TLS *tls.Config
	// Now reads the clock for measurements; nil uses time.Now. It must
	// follow real time: waits use real timers.
	Now func() time.Time
}

// Client opens WebSocket sessions. It is safe for concurrent use and holds
// no connections between sessions, so it needs no Close.
type Client struct {
	hc  *http.Client
	now func() time.Time
}

// New returns a client whose handshakes dial with o.Dial.
func New(o Options) *Client {
	dial := o.Dial
	if dial == nil {
		dial = loopbackDial
	}
	var tc *tls.Config
	if o.TLS != nil {
		tc = o.TLS.Clone()
	} else {
		tc = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	tc.NextProtos = []string{"http/1.1"} // the upgrade is HTTP/1.1 only
	tr := &http.Transport{
		Proxy:              nil,
		DialContext:        dial,
		TLSClientConfig:    tc,
		DisableKeepAlives:  true, // every session is a connection of its own
		DisableCompression: true,
	}
	now := o.Now
	if now == nil {
		now = time.Now
	}
	return &Client{hc: &http.Client{Transport: tr}, now: now}
}

// loopbackDial is the dialer of a client given none: loopback IP
// addresses only, so a missing allow-list never opens the world.
func loopbackDial(ctx context.Context, network, addr string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err == nil {
		if ip, perr := netip.ParseAddr(host); perr == nil && ip.IsLoopback() {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		}
	}
	return nil, fmt.Errorf("wsclient: no dialer configured, so only loopback IP addresses may be dialled, not %q", addr)
}

// Step is a compiled websocket step: its templates parsed once.
type Step struct {
	name           string
	url            *httpclient.Template
	headers        []header
	subprotocols   []string
	connectTimeout time.Duration
	hold           *plan.Dist
	send           *sendSpec
	expect         *expectSpec
	reconnect      *plan.WSReconnect
}

type header struct {
	name string
	t    *httpclient.Template
}

type sendSpec struct {
	// msg are the message's pieces around its {{seq}} calls.
	msg   []*httpclient.Template
	typ   websocket.MessageType
	rate  float64
	every *plan.Dist
	count int64
}

type expectSpec struct {
	contains []byte
	timeout  time.Duration
	count    int64
}

// Compile parses w's templates. {{seq}} in the message is the message's
// number within its session, from 1.
func Compile(w *plan.WebSocket) (*Step, error) {
	name := w.Name
	if name == "" {
		name = w.URL
	}
	fail := func(what string, err error) (*Step, error) {
		return nil, fmt.Errorf("websocket step %q: %s: %w", name, what, err)
	}
	s := &Step{name: name, subprotocols: w.Subprotocols, hold: w.Hold, reconnect: w.Reconnect,
		connectTimeout: w.ConnectTimeout.D()}
	if s.connectTimeout <= 0 {
		s.connectTimeout = DefaultConnectTimeout
	}
	if w.Hold == nil {
		return fail("hold", errors.New("required"))
	}
	var err error
	if s.url, err = httpclient.CompileTemplate(w.URL); err != nil {
		return fail("url", err)
	}
	for k, v := range w.Headers {
		t, err := httpclient.CompileTemplate(v)
		if err != nil {
			return fail("header "+k, err)
		}
		s.headers = append(s.headers, header{name: k, t: t})
	}
	if sd := w.Send; sd != nil {
		if (sd.Rate > 0) == (sd.Every != nil) || math.IsInf(sd.Rate, 0) || math.IsNaN(sd.Rate) {
			return fail("send", errors.New("give rate (messages per second) or every (a think time), not both or neither"))
		}
		msg, err := compileMessage(sd.Message)
		if err != nil {
			return fail("send.message", err)
		}
		s.send = &sendSpec{msg: msg, typ: websocket.MessageText, rate: sd.Rate, every: sd.Every, count: sd.Count}
		if sd.Binary {
			s.send.typ = websocket.MessageBinary
		}
	}
	if e := w.Expect; e != nil {
		s.expect = &expectSpec{contains: []byte(e.Contains), timeout: e.Timeout.D(), count: e.Count}
		if s.expect.timeout <= 0 {
			s.expect.timeout = DefaultReplyTimeout
		}
	}
	return s, nil
}

// Name is the step's name: its metrics' and request series' label.
func (s *Step) Name() string { return s.name }

// Templates returns the step's template texts (URL, header values,
// message), for finding the feeders it reads.
func Templates(w *plan.WebSocket) []string {
	out := []string{w.URL}
	for _, v := range w.Headers {
		out = append(out, v)
	}
	if w.Send != nil {
		out = append(out, stripSeq(w.Send.Message))
	}
	return out
}

// splitSeq splits s around its {{seq}} calls (spaces inside the braces
// allowed).
func splitSeq(s string) []string {
	var pieces []string
	start, i := 0, 0
	for {
		j := strings.Index(s[i:], "{{")
		if j < 0 {
			break
		}
		j += i
		k := strings.Index(s[j:], "}}")
		if k < 0 {
			break
		}
		k += j
		if f := strings.Fields(s[j+2 : k]); len(f) == 1 && f[0] == "seq" {
			pieces = append(pieces, s[start:j])
			start = k + 2
		}
		i = k + 2
	}
	return append(pieces, s[start:])
}

// stripSeq is s without its {{seq}} calls.
func stripSeq(s string) string { return strings.Join(splitSeq(s), "") }

// compileMessage compiles the pieces of a message around its {{seq}}s.
func compileMessage(s string) ([]*httpclient.Template, error) {
	pieces := splitSeq(s)
	out := make([]*httpclient.Template, len(pieces))
	for i, p := range pieces {
		t, err := httpclient.CompileTemplate(p)
		if err != nil {
			return nil, err
		}
		out[i] = t
	}
	return out, nil
}

// appendMessage appends message number seq to dst.
func (sd *sendSpec) appendMessage(dst []byte, v *httpclient.Vars, seq int64) ([]byte, error) {
	for i, t := range sd.msg {
		if i > 0 {
			dst = strconv.AppendInt(dst, seq, 10)
		}
		var err error
		if dst, err = t.Expand(dst, v); err != nil {
			return dst, err
		}
	}
	return dst, nil
}

// Handshake is one connection attempt of a step.
type Handshake struct {
	Start, End time.Time
	// Status is StatusOpen when a session opened; otherwise the class of
	// a non-101 HTTP reply ("4xx"), StatusProtocol, or the error's kind
	// (httpclient.Classify).
	Status string
	// Code is the HTTP status of the reply; 0 when none came.
	Code int
	Err  error
	// Reconnect tells a reconnect attempt from the step's first connect.
	Reconnect bool
}

// Result is what one Run of a step did.
type Result struct {
	// Sessions opened: the first and every successful reconnect.
	Sessions int64
	// Replies received over all the sessions.
	Replies int64
	// Checks of expect.count: one per session that ended other than by
	// ctx.
	ChecksPassed, ChecksFailed int64
	// Status is the last handshake's; Err its error, or the message
	// template's when it could not expand (which ends the step).
	Status string
	Err    error
	// Interrupted: ctx ended the step (the run is stopping).
	Interrupted bool
}

// Run holds the step's session: connect, hold for a duration drawn from
// the step's hold (from the first connect), sending and matching replies,
// then close normally (1000). A session the peer drops, or closes with a
// code other than 1000/1001, is an abnormal closure; with a reconnect
// policy it is reopened, up to its max attempts, while the hold lasts. A
// failed first connect ends the step. Every handshake except one cut
// short by ctx is passed to onHandshake (may be nil) and counted in st.
// When ctx ends, the session closes normally, is not counted abnormal, and
// its unanswered messages are not counted missed. Run returns when every
// goroutine it started has ended. v.Rand draws the hold, think times and
// backoff jitter; Run uses it from the calling goroutine only.
func (c *Client) Run(ctx context.Context, s *Step, v *httpclient.Vars, st *Stats, onHandshake func(Handshake)) Result {
	if v == nil {
		v = &httpclient.Vars{}
	}
	rng := v.Rand
	if rng == nil {
		rng = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	var res Result
	ss := &session{c: c, s: s, st: st, v: v, rng: rng}
	hold := s.hold.Sample(rng)
	conn, t0, ok := c.open(ctx, s, ss, false, &res, onHandshake)
	if !ok {
		return res
	}
	deadline := t0.Add(hold)
	var attempts int64
	for {
		end := ss.run(ctx, conn, t0, deadline)
		res.Sessions++
		ss.mu.Lock()
		replies := ss.replies
		ss.mu.Unlock()
		res.Replies += replies
		if end == endInterrupted {
			res.Interrupted = true
			return res
		}
		if ss.sendErr != nil {
			res.Err = ss.sendErr
		}
		if e := s.expect; e != nil && e.count > 0 {
			if replies >= e.count {
				res.ChecksPassed++
			} else {
				res.ChecksFailed++
			}
		}
		if end != endAbnormal || s.reconnect == nil || ss.sendErr != nil {
			return res
		}
		for {
			if attempts >= s.reconnect.Max {
				return res
			}
			attempts++
			wait := s.reconnect.Backoff.Wait(attempts, rng.Float64())
			if !c.now().Add(wait).Before(deadline) {
				return res // the hold ends before the next attempt
			}
			if !sleep(ctx, wait) {
				res.Interrupted = true
				return res
			}
			st.reconnect()
			if conn, t0, ok = c.open(ctx, s, ss, true, &res, onHandshake); ok {
				break
			}
			if res.Interrupted {
				return res
			}
		}
	}
}

// open makes one handshake and records it; ok reports a session opened.
func (c *Client) open(ctx context.Context, s *Step, ss *session, reconnect bool, res *Result, onHandshake func(Handshake)) (conn *websocket.Conn, opened time.Time, ok bool) {
	h := Handshake{Start: c.now(), Reconnect: reconnect}
	conn, h = c.dial(ctx, s, ss, h)
	if h.Err != nil && ctx.Err() != nil {
		res.Interrupted = true
		return nil, time.Time{}, false
	}
	res.Status, res.Err = h.Status, h.Err
	if h.Err != nil {
		ss.st.connectFailed()
	} else {
		ss.st.opened(h.End.Sub(h.Start))
	}
	if onHandshake != nil {
		onHandshake(h)
	}
	return conn, h.End, h.Err == nil
}

// dial expands the step's URL and headers and makes the handshake.
func (c *Client) dial(ctx context.Context, s *Step, ss *session, h Handshake) (*websocket.Conn, Handshake) {
	fail := func(err error) (*websocket.Conn, Handshake) {
		h.End, h.Status, h.Err = c.now(), httpclient.StatusOther, err
		return nil, h
	}
	var err error
	ss.msg, err = s.url.Expand(ss.msg[:0], ss.v)
	if err != nil {
		return fail(fmt.Errorf("websocket step %q: url: %w", s.name, err))
	}
	u := string(ss.msg)
	hdr := make(http.Header, len(s.headers))
	host := ""
	for _, hd := range s.headers {
		ss.msg, err = hd.t.Expand(ss.msg[:0], ss.v)
		if err != nil {
			return fail(fmt.Errorf("websocket step %q: header %s: %w", s.name, hd.name, err))
		}
		if strings.EqualFold(hd.name, "Host") {
			host = string(ss.msg) // net/http sends the request's Host, not a header
			continue
		}
		hdr.Set(hd.name, string(ss.msg))
	}
	dctx, cancel := context.WithTimeout(ctx, s.connectTimeout)
	conn, resp, err := websocket.Dial(dctx, u, &websocket.DialOptions{
		HTTPClient: c.hc, HTTPHeader: hdr, Host: host, Subprotocols: s.subprotocols,
	})
	cancel()
	h.End = c.now()
	if err == nil {
		h.Status, h.Code = StatusOpen, http.StatusSwitchingProtocols
		return conn, h
	}
	h.Err = fmt.Errorf("websocket step %q: connect: %w", s.name, err)
	h.Status = httpclient.Classify(err)
	if resp != nil {
		h.Code = resp.StatusCode
		if resp.StatusCode == http.StatusSwitchingProtocols {
			h.Status = StatusProtocol
		} else {
			h.Status = httpclient.StatusClass(resp.StatusCode)
		}
	}
	return nil, h
}

// sleep waits d; false when ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
