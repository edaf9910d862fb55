package httpclient

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/surgeload/surge/plan"
)

// Session is one VU's client: with reuse: per-vu it holds the VU's own
// connections. It is safe for concurrent use (a VU's batch steps).
type Session struct {
	c      *Client
	mu     sync.Mutex
	h1     map[string]*hostPool
	h2     map[string]*h2pool
	last   atomic.Pointer[hostPool] // the last HTTP/1.1 pool used
	closed bool
	// jar holds the VU's cookies; nil when the scenario keeps none.
	jar *cookieJar
}

// Session returns a new session, with its own cookie jar unless the
// scenario turned cookies off; Close it when its VU ends.
func (c *Client) Session() *Session {
	s := &Session{c: c}
	if c.cookies {
		s.jar = newCookieJar()
	}
	return s
}

// Close closes the session's own connections (reuse: per-vu); those in
// use close when their request ends.
func (s *Session) Close() {
	s.mu.Lock()
	s.closed = true
	var pools []pooler
	for _, p := range s.h1 {
		pools = append(pools, p)
	}
	for _, p := range s.h2 {
		pools = append(pools, p)
	}
	s.h1, s.h2 = nil, nil
	s.mu.Unlock()
	s.last.Store(nil)
	for _, p := range pools {
		s.c.unregister(p)
		p.closeAll()
	}
}

// h1pool returns the HTTP/1.1 pool for rt: the session's own, or the
// client's (reuse: pool).
func (s *Session) h1pool(rt *route) *hostPool {
	if s.c.reuse == plan.ReusePool {
		return s.c.sharedPool(rt.key)
	}
	if p := s.last.Load(); p != nil && p.key == rt.key {
		return p
	}
	s.mu.Lock()
	p := s.h1[rt.key]
	created := p == nil
	if created {
		p = &hostPool{c: s.c, key: rt.key, closed: s.closed}
		if !s.closed {
			if s.h1 == nil {
				s.h1 = map[string]*hostPool{}
			}
			s.h1[rt.key] = p
		}
	}
	s.mu.Unlock()
	if created && !p.closed {
		s.c.register(p)
	}
	s.last.Store(p)
	return p
}

// h2pool returns the HTTP/2 pool for rt: the session's own, or the
// client's (reuse: pool).
func (s *Session) h2pool(rt *route) *h2pool {
	if s.c.reuse == plan.ReusePool {
		return s.c.sharedPool2(*rt)
	}
	s.mu.Lock()
	p := s.h2[rt.key]
	created := p == nil
	if created {
		p = s.c.newH2pool(*rt, 0)
		p.closed = s.closed
		if !s.closed {
			if s.h2 == nil {
				s.h2 = map[string]*h2pool{}
			}
			s.h2[rt.key] = p
		}
	}
	s.mu.Unlock()
	if created && !p.closed {
		s.c.register(p)
	}
	return p
}

// Do sends req (its templates expanded from v; v may be nil for a static
// request), reads the body, retries per the client's policy, and
// classifies the outcome. now supplies the result's timestamps. Errors of
// requests that use {{env}} are redacted: they never carry an expanded
// value. req.Timeout bounds each attempt; ctx bounds the whole.
func (s *Session) Do(ctx context.Context, req *Request, v *Vars, now func() time.Time) Result {
	res := s.do(ctx, req, v, now)
	res.Err = redactErr(res.Err, req, v)
	return res
}

// attemptState is what an attempt tells the retry loop beyond its Result.
type attemptState struct {
	retryAfter time.Duration
	hasRA      bool
	location   string
}

func (s *Session) do(ctx context.Context, req *Request, v *Vars, now func() time.Time) (res Result) {
	cl, err := newCall(req, v)
	if err != nil {
		t := now()
		return Result{Status: StatusOther, Err: err, Sent: t, End: t}
	}
	if s.jar != nil {
		cl.keep = req.keepJar
	}
	p := s.c.retry
	if !s.c.limit.wait(ctx) {
		t := now()
		return Result{Status: Classify(ctx.Err()), Err: ctx.Err(), Sent: t, End: t}
	}
	res.Sent = now()
	start := res.Sent
	for n := 1; ; n++ {
		var st attemptState
		s.attempt(ctx, &cl, req.Timeout, start, now, &res, &st)
		retry := p != nil && n < p.attempts && ctx.Err() == nil && p.retryable(res.Code, res.Err)
		if retry || res.Attempts != nil {
			if res.Attempts == nil {
				res.Attempts = make([]time.Duration, 0, min(p.attempts, 8))
			}
			res.Attempts = append(res.Attempts, res.End.Sub(start))
		}
		if !retry || !sleep(ctx, p.wait(n, res.Code, st.retryAfter, st.hasRA, s.c.uniform())) || !s.c.limit.wait(ctx) {
			break
		}
		res.Retries++
		start = now()
	}
	if res.Err != nil {
		res.Status = Classify(res.Err)
	} else {
		res.Status = StatusClass(res.Code)
	}
	return res
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

// attempt sends one attempt, following redirects, into res.
func (s *Session) attempt(ctx context.Context, cl *call, timeout time.Duration, start time.Time, now func() time.Time, res *Result, st *attemptState) {
	res.Code, res.Err, res.Body, res.Header, res.SetCookies = 0, nil, nil, nil, nil
	res.DNS, res.Connect, res.TLS, res.TTFB, res.Phases = 0, 0, 0, 0, 0
	mono := time.Now()
	var dl time.Time
	if timeout > 0 {
		dl = mono.Add(timeout)
	}
	if d, ok := ctx.Deadline(); ok && (dl.IsZero() || d.Before(dl)) {
		dl = d
	}
	hop := cl
	var next call
	for hops := 0; ; hops++ {
		st.location = ""
		sent, set := hop, len(res.SetCookies)
		if s.jar != nil { // the redirect is made from hop, without them
			sent = s.jar.attach(hop)
		}
		if err := s.send(ctx, sent, dl, mono, start, now, res, st); err != nil {
			res.Err = err
			break
		}
		if s.jar != nil {
			s.jar.add(hop.u, res.SetCookies[set:])
		}
		if st.location == "" || !isRedirect(res.Code) {
			break
		}
		if hops == maxRedirects {
			res.Err = fmt.Errorf("request %q: stopped after %d redirects", cl.name, maxRedirects)
			break
		}
		var err error
		if next, err = hop.redirect(st.location, res.Code); err != nil {
			res.Err = err
			break
		}
		hop, start = &next, time.Time{}
	}
	res.End = now()
}

func isRedirect(code int) bool {
	switch code {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return true
	}
	return false
}

// send sends one hop over HTTP/2 when the client speaks it to cl's
// scheme, else HTTP/1.1. t0, when set, is when the request was handed
// over: the write's time if the connection is at hand.
func (s *Session) send(ctx context.Context, cl *call, dl, mono, t0 time.Time, now func() time.Time, res *Result, st *attemptState) error {
	if cl.rt.tls && s.c.http2 != plan.HTTP2Off || !cl.rt.tls && s.c.http2 == plan.HTTP2H2C {
		return s.sendH2(ctx, cl, dl, now, res, st)
	}
	return s.sendH1(ctx, cl, dl, mono, t0, now, res, st)
}

func (res *Result) addPhases(ph *dialPhases) {
	res.DNS, res.Connect, res.Phases = ph.dns, ph.connect, res.Phases|ph.has
	if ph.has&HasTLS != 0 {
		res.TLS = ph.tls
	}
}

// sendH1 sends cl on an HTTP/1.1 connection of its pool (or a new one).
func (s *Session) sendH1(ctx context.Context, cl *call, dl, mono, t0 time.Time, now func() time.Time, res *Result, st *attemptState) error {
	c := s.c
	never := c.reuse == plan.ReuseNever
	var p *hostPool
	if !never {
		p = s.h1pool(&cl.rt)
	}
	for try := 0; ; try++ {
		var hc *h1conn
		if p != nil {
			var waited bool
			var err error
			if hc, waited, err = p.get(ctx, dl, mono); err != nil {
				return err
			}
			if waited {
				t0 = time.Time{}
			}
		}
		fresh := hc == nil
		if fresh {
			var ph dialPhases
			nc, err := c.dialConn(ctx, cl.rt, dl, "http/1.1", now, &ph)
			res.addPhases(&ph)
			if err != nil {
				if p != nil {
					p.dialFailed()
				}
				return err
			}
			hc = newH1conn(c, nc)
			hc.expires, hc.idleFor = c.life(mono)
			t0 = time.Time{}
		}
		closeReq := never || c.maxReq > 0 && hc.requests+1 >= c.maxReq
		wire := cl.wireFor(closeReq)
		if err := hc.setDeadline(dl); err != nil {
			s.putH1(p, hc, false)
			return fmt.Errorf("set deadline: %w", err)
		}
		hc.watch(ctx)
		if t0.IsZero() {
			t0 = now()
		}
		rsp := response{keep: cl.keep}
		err := hc.roundTrip(wire, cl.method == http.MethodHead, cl.needBody, c.retry != nil, &rsp, now)
		canceled := hc.unwatch(ctx)
		hc.requests++
		res.BytesOut += int64(len(wire))
		res.BytesIn += rsp.bytesIn
		if err != nil {
			s.putH1(p, hc, false)
			if canceled {
				return fmt.Errorf("request interrupted: %w", context.Cause(ctx))
			}
			if !fresh && !rsp.gotByte && try == 0 && cl.replayable() && staleConnErr(err) && ctx.Err() == nil {
				t0 = time.Time{} // the server closed it while idle: once more on a new connection
				continue
			}
			return err
		}
		res.Code, res.Body = rsp.code, rsp.body
		res.keepHeaders(rsp.kept)
		res.TTFB, res.Phases = rsp.firstByte.Sub(t0), res.Phases|HasTTFB
		st.retryAfter, st.hasRA, st.location = rsp.retryAfter, rsp.hasRA, rsp.location
		s.putH1(p, hc, !never && !closeReq && !rsp.closeAfter)
		return nil
	}
}

// putH1 returns hc to p (or closes it): reused unless told otherwise or
// past its lifetime.
func (s *Session) putH1(p *hostPool, hc *h1conn, reuse bool) {
	hc.releaseBuf()
	if p == nil {
		hc.close()
		return
	}
	now := time.Now()
	if !hc.expires.IsZero() && !now.Before(hc.expires) {
		reuse = false
	}
	p.put(hc, reuse, now)
}

// sendH2 sends cl as an HTTP/2 stream on a connection of its pool (or a
// new one).
func (s *Session) sendH2(ctx context.Context, cl *call, dl time.Time, now func() time.Time, res *Result, st *attemptState) error {
	c := s.c
	rctx := ctx
	if !dl.IsZero() {
		var cancel context.CancelFunc
		rctx, cancel = context.WithDeadline(ctx, dl)
		defer cancel()
	}
	hr, err := cl.httpRequest(rctx)
	if err != nil {
		return err
	}
	var cc *http.ClientConn
	if c.reuse == plan.ReuseNever {
		var ph dialPhases
		cc, err = c.dialH2(ctx, cl.rt, dl, now, &ph)
		res.addPhases(&ph)
		if err != nil {
			return err
		}
		defer cc.Close()
	} else {
		p := s.h2pool(&cl.rt)
		hc, dialed, err := p.acquire(ctx, dl, now)
		if err != nil {
			return err
		}
		defer p.release(hc)
		if dialed {
			res.addPhases(&hc.ph)
		}
		cc = hc.cc
	}
	t0 := now()
	resp, err := cc.RoundTrip(hr)
	res.BytesOut += int64(len(cl.wireFor(false)))
	if err != nil {
		return fmt.Errorf("http2 request: %w", err)
	}
	defer resp.Body.Close()
	res.TTFB, res.Phases = now().Sub(t0), res.Phases|HasTTFB
	res.Code = resp.StatusCode
	if k := cl.keep; k != nil {
		if len(k.names) > 0 {
			res.Header = resp.Header
		}
		if k.setCookie {
			res.SetCookies = append(res.SetCookies, resp.Header["Set-Cookie"]...)
		}
	}
	if ra := resp.Header.Get("Retry-After"); ra != "" {
		st.retryAfter, st.hasRA = parseRetryAfter([]byte(ra))
	}
	if isRedirect(resp.StatusCode) {
		st.location = resp.Header.Get("Location")
	}
	var n int64
	if cl.needBody {
		res.Body, err = io.ReadAll(io.LimitReader(resp.Body, maxCheckedBody))
		n = int64(len(res.Body))
		if err == nil {
			var m int64
			m, err = io.Copy(io.Discard, resp.Body)
			n += m
		}
	} else {
		n, err = io.Copy(io.Discard, resp.Body)
	}
	res.BytesIn += n
	if err != nil {
		return fmt.Errorf("read body: %w", err)
	}
	return nil
}

// call is one request ready to send: a static request's prepared bytes,
// or a templated request's expansion, or a redirect's target.
type call struct {
	name            string
	method          string
	u               *url.URL
	rt              route
	hdrs            []hdr
	body            string
	wire, wireClose []byte
	needBody        bool
	keep            *keepSpec
}

// newCall prepares req for one send, expanding its templates from v.
func newCall(req *Request, v *Vars) (call, error) {
	cl := call{name: req.Name, method: req.Method, u: req.URL, rt: req.rt, hdrs: req.hdrs, body: req.Body,
		wire: req.wire, wireClose: req.wireClose, needBody: req.needBody, keep: req.keep}
	if !req.Templated() {
		if req.rtErr != nil {
			return cl, fmt.Errorf("request %q: %w", req.Name, req.rtErr)
		}
		return cl, nil
	}
	cl.wire, cl.wireClose = nil, nil
	if v == nil {
		v = &Vars{}
	}
	if req.urlT != nil {
		b, err := req.urlT.Expand(nil, v)
		if err != nil {
			return cl, fmt.Errorf("request %q: url: %w", req.Name, err)
		}
		u, err := url.Parse(string(b))
		if err != nil {
			return cl, fmt.Errorf("request %q: the expanded URL is invalid", req.Name)
		}
		if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
			return cl, fmt.Errorf("request %q: the expanded URL is not absolute", req.Name)
		}
		cl.u = u
	}
	var err error
	if cl.rt, err = routeOf(cl.u); err != nil {
		return cl, fmt.Errorf("request %q: %w", req.Name, err)
	}
	if req.headerT != nil {
		extra := make(map[string]string, len(req.headerT))
		for k, t := range req.headerT {
			b, err := t.Expand(nil, v)
			if err != nil {
				return cl, fmt.Errorf("request %q: header %s: %w", req.Name, k, err)
			}
			if !validHeader(k, string(b)) {
				return cl, fmt.Errorf("request %q: header %s: the expanded value holds a line break", req.Name, k)
			}
			extra[k] = string(b)
		}
		cl.hdrs = sortedHeaders(req.Header, extra)
	}
	if req.bodyT != nil {
		b, err := req.bodyT.Expand(nil, v)
		if err != nil {
			return cl, fmt.Errorf("request %q: body: %w", req.Name, err)
		}
		cl.body = string(b)
	}
	return cl, nil
}

// wireFor returns the HTTP/1.1 bytes, with "Connection: close" when close.
func (cl *call) wireFor(close bool) []byte {
	if close {
		if cl.wireClose == nil {
			cl.wireClose = appendRequest(nil, cl.method, cl.u, cl.hdrs, cl.body, true)
		}
		return cl.wireClose
	}
	if cl.wire == nil {
		cl.wire = appendRequest(nil, cl.method, cl.u, cl.hdrs, cl.body, false)
	}
	return cl.wire
}

// replayable reports whether cl may be sent again after a kept-alive
// connection turned out closed: idempotent methods only.
func (cl *call) replayable() bool {
	switch cl.method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// httpRequest builds cl as a net/http request, for HTTP/2.
func (cl *call) httpRequest(ctx context.Context) (*http.Request, error) {
	var body io.Reader
	if cl.body != "" {
		body = strings.NewReader(cl.body)
	}
	hr, err := http.NewRequestWithContext(ctx, cl.method, cl.u.String(), body)
	if err != nil {
		return nil, fmt.Errorf("request %q: %w", cl.name, err)
	}
	for _, x := range cl.hdrs {
		if x.k == "Host" {
			hr.Host = x.v
			continue
		}
		hr.Header.Add(x.k, x.v)
	}
	if hr.Header.Get("User-Agent") == "" {
		hr.Header.Set("User-Agent", "surge")
	}
	return hr, nil
}

// redirect returns the call that follows a redirect to loc, as browsers
// and net/http do: 301, 302 and 303 turn other methods than GET and HEAD
// into a GET without body; credentials stay with their host.
func (cl *call) redirect(loc string, code int) (call, error) {
	u, err := cl.u.Parse(loc)
	if err != nil {
		return call{}, fmt.Errorf("request %q: redirect to an invalid Location %q", cl.name, loc)
	}
	rt, err := routeOf(u)
	if err != nil {
		return call{}, fmt.Errorf("request %q: redirect: %w", cl.name, err)
	}
	n := call{name: cl.name, method: cl.method, u: u, rt: rt, body: cl.body, needBody: cl.needBody, keep: cl.keep}
	if code != http.StatusTemporaryRedirect && code != http.StatusPermanentRedirect &&
		cl.method != http.MethodGet && cl.method != http.MethodHead {
		n.method, n.body = http.MethodGet, ""
	}
	same := rt.key == cl.rt.key
	for _, x := range cl.hdrs {
		switch x.k {
		case "Host":
			continue
		case "Authorization", "Cookie", "Proxy-Authorization", "Www-Authenticate":
			if !same {
				continue
			}
		}
		n.hdrs = append(n.hdrs, x)
	}
	return n, nil
}

// Warm opens a connection for req into the session ahead of its first
// send: when the session keeps its own connections (reuse: per-vu), req
// goes over HTTP/1.1 to a static URL, and the session has no idle
// connection to req's host. The connection counts as opened; its connect
// and TLS phases belong to no request. An arrival-rate executor warms its
// pre-allocated VUs so that its first second does not open a connection
// per arrival.
func (s *Session) Warm(ctx context.Context, req *Request) error {
	c := s.c
	if c.reuse != plan.ReusePerVU || req.urlT != nil || req.rtErr != nil ||
		req.rt.tls && c.http2 != plan.HTTP2Off || !req.rt.tls && c.http2 == plan.HTTP2H2C {
		return nil
	}
	p := s.h1pool(&req.rt)
	mono := time.Now()
	hc, _, err := p.get(ctx, time.Time{}, mono)
	if err != nil {
		return err
	}
	if hc != nil { // one is there already
		p.put(hc, true, mono)
		return nil
	}
	var ph dialPhases
	nc, err := c.dialConn(ctx, req.rt, mono.Add(c.dialTimeout), "http/1.1", time.Now, &ph)
	if err != nil {
		p.dialFailed()
		return err
	}
	hc = newH1conn(c, nc)
	hc.expires, hc.idleFor = c.life(mono)
	p.put(hc, true, time.Now())
	return nil
}
