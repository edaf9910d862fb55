package httpclient

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"
)

// HTTP/2: net/http client connections (http.Transport.NewClientConn, the
// successor of golang.org/x/net/http2's ClientConn) dialed by this
// package's dialer, in pools of this package, so that every connection is
// counted and a connection carries at most max_concurrent_streams requests
// (and no more than the server allows) before another is opened.

// h2conn is one HTTP/2 connection of a pool. Its fields are guarded by the
// pool's lock; cc, err and ph are set once, before ready is closed.
type h2conn struct {
	cc       *http.ClientConn
	ready    chan struct{}
	err      error
	ph       dialPhases
	inflight int   // requests assigned, dialing included
	requests int64 // requests ever assigned
	expires  time.Time
	idleFor  time.Duration
	lastUsed time.Time
	dead     bool // takes no new request
}

// h2pool holds the HTTP/2 connections to one host: a session's own
// (limit 0: no limit) or the client's shared pool (at most limit
// connections; a request waits for a free stream).
type h2pool struct {
	c       *Client
	rt      route
	limit   int
	mu      sync.Mutex
	conns   []*h2conn
	waiters []chan struct{}
	closed  bool
}

func (c *Client) newH2pool(rt route, limit int) *h2pool {
	return &h2pool{c: c, rt: rt, limit: limit}
}

// newH2Transport returns the transport that makes the client's HTTP/2
// connections: HTTP/2 only (ALPN h2 on TLS, prior knowledge on cleartext),
// dialed by dialH2's context.
func (c *Client) newH2Transport() *http.Transport {
	p := new(http.Protocols)
	p.SetHTTP2(true)
	p.SetUnencryptedHTTP2(true)
	dial := func(ctx context.Context, _, _ string) (net.Conn, error) {
		d, ok := ctx.Value(h2dialKey{}).(*h2dial)
		if !ok {
			return nil, errors.New("http2: a dial outside the client's pools")
		}
		return c.dialConn(ctx, d.rt, time.Time{}, "h2", d.now, d.ph)
	}
	return &http.Transport{Protocols: p, ForceAttemptHTTP2: true, DisableCompression: true,
		DialContext: dial, DialTLSContext: dial}
}

// h2dial carries a dial's route, clock and phases through the transport.
type h2dial struct {
	rt  route
	now func() time.Time
	ph  *dialPhases
}

type h2dialKey struct{}

// dialH2 opens an HTTP/2 connection to rt: over TLS negotiated by ALPN,
// or with prior knowledge (h2c) on cleartext.
func (c *Client) dialH2(ctx context.Context, rt route, dl time.Time, now func() time.Time, ph *dialPhases) (*http.ClientConn, error) {
	if !dl.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, dl)
		defer cancel()
	}
	scheme := "http"
	if rt.tls {
		scheme = "https"
	}
	ctx = context.WithValue(ctx, h2dialKey{}, &h2dial{rt: rt, now: now, ph: ph})
	cc, err := c.h2t.NewClientConn(ctx, scheme, rt.addr)
	if err != nil {
		return nil, err
	}
	return cc, nil
}

// dialConn dials rt (bounded by dl) and, for https, runs the TLS
// handshake offering alpn. The dial runs on a goroutine of its own, which
// the caller waits for: its deep call chain (resolver, socket, TLS) would
// otherwise grow the caller's stack for good, and a VU's goroutine lives
// as long as the VU, most of its life waiting on its connection (see
// docs/benchmarks.md, goal 6).
func (c *Client) dialConn(ctx context.Context, rt route, dl time.Time, alpn string, now func() time.Time, ph *dialPhases) (net.Conn, error) {
	type dialed struct {
		nc  net.Conn
		err error
	}
	done := make(chan dialed, 1)
	go func() {
		nc, err := c.dialConnHere(ctx, rt, dl, alpn, now, ph)
		done <- dialed{nc, err}
	}()
	d := <-done
	return d.nc, d.err
}

// dialConnHere is dialConn on the caller's goroutine.
func (c *Client) dialConnHere(ctx context.Context, rt route, dl time.Time, alpn string, now func() time.Time, ph *dialPhases) (net.Conn, error) {
	if !dl.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, dl)
		defer cancel()
	}
	raw, err := c.d.dial(ctx, "tcp", rt.addr, now, ph)
	if err != nil {
		return nil, err
	}
	if !rt.tls {
		return raw, nil
	}
	t := now()
	tc, err := c.handshake(ctx, raw, rt.host, alpn)
	if err != nil {
		return nil, err
	}
	ph.tls, ph.has = now().Sub(t), ph.has|HasTLS
	return tc, nil
}

// streamsOf is how many requests hc may carry at once: the plan's limit,
// or the server's when lower. Called with p.mu held.
func (p *h2pool) streamsOf(hc *h2conn) int {
	n := p.c.streams
	if hc.cc != nil {
		if m := hc.cc.Available() + hc.cc.InFlight(); m > 0 && m < n {
			n = m
		}
	}
	return n
}

// usable reports whether hc may take a new request. Called with p.mu held.
func (p *h2pool) usable(hc *h2conn, now time.Time) bool {
	switch {
	case hc.dead, hc.err != nil:
		return false
	case !hc.expires.IsZero() && !now.Before(hc.expires), p.c.maxReq > 0 && hc.requests >= p.c.maxReq:
		hc.dead = true
		return false
	case hc.cc != nil && hc.cc.Err() != nil:
		hc.dead = true
		return false
	}
	return hc.inflight < p.streamsOf(hc)
}

// acquire assigns the request a stream on a connection with one free, or
// on a new connection (dialed by this call: dialed is true), or waits for
// one at the pool's limit, until ctx ends or dl passes.
func (p *h2pool) acquire(ctx context.Context, dl time.Time, now func() time.Time) (hc *h2conn, dialed bool, err error) {
	for {
		mono := time.Now()
		p.mu.Lock()
		var found *h2conn
		for _, x := range p.conns {
			if p.usable(x, mono) {
				found = x
				break
			}
		}
		if found != nil {
			found.inflight++
			found.requests++
			p.mu.Unlock()
			select {
			case <-found.ready:
			case <-ctx.Done():
				p.release(found)
				return nil, false, ctx.Err()
			}
			if found.err != nil {
				p.release(found)
				return nil, false, found.err
			}
			if err := found.cc.Reserve(); err != nil { // going away, or a limit it had not announced
				p.mu.Lock()
				found.dead = true
				p.mu.Unlock()
				p.release(found)
				continue
			}
			return found, false, nil
		}
		if p.limit == 0 || len(p.conns) < p.limit {
			hc := &h2conn{ready: make(chan struct{}), inflight: 1, requests: 1}
			hc.expires, hc.idleFor = p.c.life(mono)
			p.conns = append(p.conns, hc)
			p.mu.Unlock()
			cc, err := p.c.dialH2(ctx, p.rt, dl, now, &hc.ph)
			p.mu.Lock()
			hc.cc, hc.err = cc, err
			p.mu.Unlock()
			close(hc.ready)
			if err != nil {
				p.release(hc)
				return nil, false, err
			}
			if err := cc.Reserve(); err != nil {
				p.mu.Lock()
				hc.dead = true
				p.mu.Unlock()
				p.release(hc)
				return nil, false, fmt.Errorf("http2 connection to %s: %w", p.rt.addr, err)
			}
			return hc, true, nil
		}
		w := make(chan struct{}, 1)
		p.waiters = append(p.waiters, w)
		p.mu.Unlock()
		if err := p.waitOn(ctx, dl, mono, w); err != nil {
			return nil, false, err
		}
	}
}

// waitOn waits for w: a stream freed up.
func (p *h2pool) waitOn(ctx context.Context, dl, now time.Time, w chan struct{}) error {
	var expire <-chan time.Time
	if !dl.IsZero() {
		t := time.NewTimer(dl.Sub(now))
		defer t.Stop()
		expire = t.C
	}
	// A safety net: a server's SETTINGS can raise the streams allowed
	// without any release to wake the waiters.
	poll := time.NewTimer(50 * time.Millisecond)
	defer poll.Stop()
	var err error
	select {
	case <-w:
		return nil
	case <-poll.C:
	case <-ctx.Done():
		err = ctx.Err()
	case <-expire:
		err = context.DeadlineExceeded
	}
	p.mu.Lock()
	if i := slices.Index(p.waiters, w); i >= 0 {
		p.waiters = slices.Delete(p.waiters, i, i+1)
	}
	p.mu.Unlock()
	if err != nil {
		return fmt.Errorf("wait for an HTTP/2 stream of the pool (%d connections per host): %w", p.limit, err)
	}
	return nil
}

// release ends a request on hc: a connection that takes no more requests
// closes when its last one ends; a waiter is woken.
func (p *h2pool) release(hc *h2conn) {
	now := time.Now()
	p.mu.Lock()
	hc.inflight--
	hc.lastUsed = now
	var closing *h2conn
	if hc.inflight == 0 && (p.closed || p.done(hc, now)) {
		if i := slices.Index(p.conns, hc); i >= 0 {
			p.conns = slices.Delete(p.conns, i, i+1)
		}
		closing = hc
	}
	if len(p.waiters) > 0 {
		w := p.waiters[0]
		p.waiters = slices.Delete(p.waiters, 0, 1)
		w <- struct{}{}
	}
	p.mu.Unlock()
	if closing != nil && closing.cc != nil {
		closing.cc.Close()
	}
}

// done reports whether hc will take no more requests (it is not merely
// full). Called with p.mu held.
func (p *h2pool) done(hc *h2conn, now time.Time) bool {
	return hc.dead || hc.err != nil || !hc.expires.IsZero() && !now.Before(hc.expires) ||
		p.c.maxReq > 0 && hc.requests >= p.c.maxReq || hc.cc != nil && hc.cc.Err() != nil
}

// reap closes connections idle past their idle timeout or lifetime, and
// drops those the server closed.
func (p *h2pool) reap(now time.Time) {
	p.mu.Lock()
	var stale []*h2conn
	keep := p.conns[:0]
	for _, hc := range p.conns {
		if hc.inflight == 0 && hc.cc != nil &&
			(p.done(hc, now) || hc.idleFor > 0 && !hc.lastUsed.IsZero() && now.Sub(hc.lastUsed) >= hc.idleFor) {
			stale = append(stale, hc)
			continue
		}
		keep = append(keep, hc)
	}
	clear(p.conns[len(keep):])
	p.conns = keep
	p.mu.Unlock()
	for _, hc := range stale {
		hc.cc.Close()
	}
}

// closeAll closes idle connections; busy ones close when their last
// request ends.
func (p *h2pool) closeAll() {
	p.mu.Lock()
	p.closed = true
	var idle []*h2conn
	keep := p.conns[:0]
	for _, hc := range p.conns {
		if hc.inflight == 0 && hc.cc != nil {
			idle = append(idle, hc)
			continue
		}
		keep = append(keep, hc)
	}
	clear(p.conns[len(keep):])
	p.conns = keep
	for _, w := range p.waiters {
		w <- struct{}{}
	}
	p.waiters = nil
	p.mu.Unlock()
	for _, hc := range idle {
		hc.cc.Close()
	}
}
