package executor

import (
	"context"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// vuSlot is one VU of an arrival-rate executor: a goroutine that runs the
// iterations handed to it.
type vuSlot struct {
	id   int64
	jobs chan time.Time // intended times; capacity 1
}

// vuPool holds an arrival-rate executor's VUs. Idle VUs are a stack: the
// VU that finished last (its connection warm, its stack hot) takes the
// next arrival, and VUs beyond the working set stay idle (their
// connections never opened).
type vuPool struct {
	// freed is signalled when a VU becomes idle (see await).
	freed     chan struct{}
	mu        sync.Mutex
	idle      []*vuSlot
	all       []*vuSlot
	allocated int64
	active    int64
	max       int64
	// The arrival loop's alone (see takeVU): when an arrival past the
	// late bound last grew the pool, and when the loop went past the late
	// bound since it was last on time (zero: it has not).
	lateGrow, behind time.Time
}

// get returns an idle VU marked active, or a new one when the pool may
// grow (fresh: its goroutine is to be started), or nil.
func (p *vuPool) get(grow bool) (v *vuSlot, fresh bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := len(p.idle); n > 0 {
		v = p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.active++
		return v, false
	}
	if !grow || p.allocated >= p.max {
		return nil, false
	}
	return p.grow(true, false), true
}

// grow adds a VU: active, or idle when idle is set (else the VU is
// neither until ready adds it); p.mu is held.
func (p *vuPool) grow(active, idle bool) *vuSlot {
	p.allocated++
	v := &vuSlot{id: p.allocated, jobs: make(chan time.Time, 1)}
	p.all = append(p.all, v)
	switch {
	case active:
		p.active++
	case idle:
		p.idle = append(p.idle, v)
	}
	return v
}

// ready adds a VU that was grown neither active nor idle to the idle VUs.
func (p *vuPool) ready(v *vuSlot) {
	p.mu.Lock()
	p.idle = append(p.idle, v)
	p.mu.Unlock()
	p.signal()
}

func (p *vuPool) signal() {
	select {
	case p.freed <- struct{}{}:
	default:
	}
}

// await waits for an idle VU until tm fires or ctx ends; nil if none.
func (p *vuPool) await(ctx context.Context, tm Timer) *vuSlot {
	for {
		if v, _ := p.get(false); v != nil {
			return v
		}
		select {
		case <-p.freed:
		case <-tm.C():
			v, _ := p.get(false)
			return v
		case <-ctx.Done():
			return nil
		}
	}
}

// put returns a VU after its iteration.
func (p *vuPool) put(v *vuSlot) {
	p.mu.Lock()
	p.active--
	p.idle = append(p.idle, v)
	p.mu.Unlock()
	p.signal()
}

// closeJobs closes every VU's jobs: each goroutine ends after its
// iteration.
func (p *vuPool) closeJobs() {
	p.mu.Lock()
	for _, v := range p.all {
		close(v.jobs)
	}
	p.mu.Unlock()
}

func (p *vuPool) gauges() (active, allocated int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.active, p.allocated
}

// startLog records the intended times of the arrivals handed to VUs, in
// order, so that the started count of an interval is counted by intended
// time (an arrival due just before a boundary and handed over just after
// it belongs to the interval before, and the other way round). It keeps
// the last startLogSize times: enough for an interval boundary that is
// read late by up to startLogSize arrivals.
type startLog struct {
	ring  [startLogSize]atomic.Int64 // unix ns of the intended times
	total atomic.Int64               // arrivals handed over
	// pending is the intended time (unix ns) of the arrival the loop
	// waits for or hands over next; math.MaxInt64 once the loop ended.
	pending atomic.Int64
}

const startLogSize = 4096

// add records an arrival handed over; one writer (the arrival loop).
func (l *startLog) add(intended time.Time) {
	n := l.total.Load()
	l.ring[n%startLogSize].Store(intended.UnixNano())
	l.total.Store(n + 1)
}

// settleWait bounds how long startedBy waits for the arrival loop to hand
// over the arrivals due by the instant asked.
const settleWait = 2 * time.Millisecond

// startedBy returns how many arrivals due at or before at were handed over.
// When the loop has not yet reached at, it waits for it briefly (it is
// due now: the interval boundaries are read as they pass). The wait
// sleeps rather than yields, so the runtime polls the network and timers
// meanwhile, which wakes the loop.
func (l *startLog) startedBy(at time.Time) int64 {
	ns := at.UnixNano()
	if p := l.pending.Load(); p <= ns && p != math.MaxInt64 {
		deadline := time.Now().Add(settleWait)
		for l.pending.Load() <= ns && time.Now().Before(deadline) {
			time.Sleep(20 * time.Microsecond)
		}
	}
	n := l.total.Load()
	after := int64(0)
	for k := n - 1; k >= 0 && k >= n-startLogSize; k-- {
		if l.ring[k%startLogSize].Load() <= ns {
			break
		}
		after++
	}
	return n - after
}
