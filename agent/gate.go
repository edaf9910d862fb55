package agent

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/surgeload/surge/agent/executor"
)

// pauseWatch notices that this process did not run for a while (SIGSTOP, a
// frozen VM, a long stall): a ticker records the monotonic time every
// watchTick; a gap longer than the threshold is a pause. After a pause the
// agent may have been declared lost and its share given to others, so its
// runs are suspended — no arrival is sent, none is caught up — until the
// controller confirms the run's epoch over a fresh stream, or fences it.
type pauseWatch struct {
	base      time.Time // monotonic reference
	threshold time.Duration
	lastTick  atomic.Int64 // ns since base
}

const watchTick = 100 * time.Millisecond

func newPauseWatch(threshold time.Duration) *pauseWatch {
	w := &pauseWatch{base: time.Now(), threshold: threshold}
	w.lastTick.Store(0)
	return w
}

func (w *pauseWatch) now() int64 { return int64(time.Since(w.base)) }

// gapNow reports whether the process has not ticked for longer than the
// threshold: a pause the ticker has not handled yet.
func (w *pauseWatch) gapNow() bool {
	return w.now()-w.lastTick.Load() > int64(w.threshold)
}

// tick records a tick; it returns the gap since the previous one when that
// gap was a pause (after calling onPause, so anyone who sees the new tick
// also sees what onPause did).
func (w *pauseWatch) tick(onPause func(gap time.Duration)) {
	now := w.now()
	gap := time.Duration(now - w.lastTick.Load())
	if gap > w.threshold {
		onPause(gap)
	}
	w.lastTick.Store(now)
}

// gate holds a run's iterations while the run is suspended.
type gate struct {
	watch *pauseWatch

	mu        sync.Mutex
	suspended bool
	resumed   chan struct{} // closed when the gate opens
	// held counts open-model arrivals held while the gate was closed, by
	// scenario. They are resolved when the gate decides: deficit if the
	// controller confirms the run (nobody sent them), nothing if the agent
	// is fenced (the agents that took its share over sent them).
	held map[*executor.ScenarioRecorder]int64
}

func newGate(w *pauseWatch) *gate {
	g := &gate{watch: w, resumed: make(chan struct{})}
	close(g.resumed)
	return g
}

// closed reports whether iterations must not run now.
func (g *gate) closed() bool {
	if g.watch != nil && g.watch.gapNow() {
		return true
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.suspended
}

func (g *gate) suspend() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.suspended {
		g.suspended = true
		g.resumed = make(chan struct{})
	}
}

// resume opens the gate: the controller confirmed the run, so the arrivals
// held meanwhile were not sent by anyone and count as deficit.
func (g *gate) resume() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	for rec, n := range g.held {
		rec.Deficit(n)
	}
	clear(g.held)
	if !g.suspended {
		return false
	}
	g.suspended = false
	close(g.resumed)
	return true
}

// holder returns a Hold function for executor.Scenario: while the gate is
// closed it holds the arrival and counts it for rec.
func (g *gate) holder(rec *executor.ScenarioRecorder) func() bool {
	return func() bool {
		if !g.closed() {
			return false
		}
		g.mu.Lock()
		if g.held == nil {
			g.held = map[*executor.ScenarioRecorder]int64{}
		}
		g.held[rec]++
		g.mu.Unlock()
		return true
	}
}

// wait blocks until the gate opens (true) or ctx ends (false).
func (g *gate) wait(ctx context.Context) bool {
	for {
		g.mu.Lock()
		ch := g.resumed
		g.mu.Unlock()
		select {
		case <-ctx.Done():
			return false
		case <-ch:
		}
		if !g.closed() {
			return true
		}
		// Still in a pause the ticker has not handled: wait a tick.
		t := time.NewTimer(watchTick)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
	}
}

// wrap gates an iteration function. While the gate is closed an
// open-model arrival is not sent (it is deficit; one sent later than the
// lateness bound is counted so by the executor already) and a closed-model
// VU waits for the gate to open.
func (g *gate) wrap(next executor.IterFunc, rec *executor.ScenarioRecorder) executor.IterFunc {
	return func(ctx context.Context, vu int64, intended time.Time) bool {
		if g.closed() {
			if !intended.IsZero() {
				if time.Since(intended) <= executor.DefaultLateBound {
					rec.Deficit(1)
				}
				return false
			}
			if !g.wait(ctx) {
				return false
			}
		}
		return next(ctx, vu, intended)
	}
}
