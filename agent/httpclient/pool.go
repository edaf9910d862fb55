package httpclient

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// hostPool holds HTTP/1.1 connections to one host: a session's own
// (reuse: per-vu, no limit) or the client's shared pool (reuse: pool, at
// most limit connections; a request waits for one).
type hostPool struct {
	c     *Client
	key   string
	limit int // 0: unlimited

	mu      sync.Mutex
	idle    []*h1conn // most recently used last
	open    int       // idle, in use or being dialed
	waiters []chan *h1conn
	closed  bool
}

// pooler is a pool the client's reaper visits and Close empties.
type pooler interface {
	reap(now time.Time)
	closeAll()
}

// expired reports whether hc is past its lifetime or idle timeout at now.
func (hc *h1conn) expired(now time.Time) bool {
	return !hc.expires.IsZero() && !now.Before(hc.expires) ||
		hc.idleFor > 0 && !hc.lastUsed.IsZero() && now.Sub(hc.lastUsed) >= hc.idleFor
}

// get returns an idle connection, or nil and a slot to dial one into. At
// the limit it waits for a connection or a slot until ctx ends or dl
// passes; waited tells it did.
func (p *hostPool) get(ctx context.Context, dl, now time.Time) (hc *h1conn, waited bool, err error) {
	var stale []*h1conn
	defer func() {
		for _, s := range stale {
			s.close()
		}
	}()
	p.mu.Lock()
	for n := len(p.idle); n > 0; n = len(p.idle) {
		hc := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		if hc.expired(now) {
			p.open--
			stale = append(stale, hc)
			continue
		}
		p.mu.Unlock()
		return hc, false, nil
	}
	if p.limit == 0 || p.open < p.limit {
		p.open++
		p.mu.Unlock()
		return nil, false, nil
	}
	w := make(chan *h1conn, 1)
	p.waiters = append(p.waiters, w)
	p.mu.Unlock()

	var expire <-chan time.Time
	if !dl.IsZero() {
		t := time.NewTimer(dl.Sub(now))
		defer t.Stop()
		expire = t.C
	}
	select {
	case hc := <-w:
		return hc, true, nil
	case <-ctx.Done():
		err = ctx.Err()
	case <-expire:
		err = context.DeadlineExceeded
	}
	p.mu.Lock()
	if i := slices.Index(p.waiters, w); i >= 0 {
		p.waiters = slices.Delete(p.waiters, i, i+1)
		p.mu.Unlock()
	} else { // handed a connection or a slot meanwhile: give it back
		p.mu.Unlock()
		if hc := <-w; hc != nil {
			p.put(hc, true, time.Now())
		} else {
			p.dialFailed()
		}
	}
	return nil, true, fmt.Errorf("wait for a connection of the pool (%d per host): %w", p.limit, err)
}

// put returns hc after a request: kept idle (or handed to a waiter) when
// reuse, else closed.
func (p *hostPool) put(hc *h1conn, reuse bool, now time.Time) {
	p.mu.Lock()
	if !reuse || p.closed {
		p.open--
		p.handSlot()
		p.mu.Unlock()
		hc.close()
		return
	}
	hc.lastUsed = now
	if len(p.waiters) > 0 {
		w := p.waiters[0]
		p.waiters = slices.Delete(p.waiters, 0, 1)
		p.mu.Unlock()
		w <- hc
		return
	}
	p.idle = append(p.idle, hc)
	p.mu.Unlock()
}

// dialFailed gives back the slot of a dial that failed.
func (p *hostPool) dialFailed() {
	p.mu.Lock()
	p.open--
	p.handSlot()
	p.mu.Unlock()
}

// handSlot gives a free slot to the first waiter, which then dials.
func (p *hostPool) handSlot() {
	if len(p.waiters) > 0 && (p.limit == 0 || p.open < p.limit) {
		w := p.waiters[0]
		p.waiters = slices.Delete(p.waiters, 0, 1)
		p.open++
		w <- nil
	}
}

// reap closes idle connections past their idle timeout or lifetime.
func (p *hostPool) reap(now time.Time) {
	p.mu.Lock()
	var stale []*h1conn
	keep := p.idle[:0]
	for _, hc := range p.idle {
		if hc.expired(now) {
			stale = append(stale, hc)
			continue
		}
		keep = append(keep, hc)
	}
	clear(p.idle[len(keep):])
	p.idle = keep
	p.open -= len(stale)
	p.mu.Unlock()
	for _, hc := range stale {
		hc.close()
	}
}

// closeAll closes the idle connections; those in use close when put back.
func (p *hostPool) closeAll() {
	p.mu.Lock()
	p.closed = true
	idle := p.idle
	p.idle = nil
	p.open -= len(idle)
	for _, w := range p.waiters { // let them dial: their connections close after
		p.open++
		w <- nil
	}
	p.waiters = nil
	p.mu.Unlock()
	for _, hc := range idle {
		hc.close()
	}
}
