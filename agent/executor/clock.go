// Package executor runs an agent's share of a plan: one goroutine tree per
// scenario, open-model (arrival-rate) executors paced on an absolute
// schedule and closed-model (VU) executors, recording every result into an
// interval Recorder. Time comes from an injectable Clock so schedules can
// be tested with a fake one.
package executor

import (
	"context"
	"runtime"
	"time"
)

// Clock is the source of time for executors.
type Clock interface {
	Now() time.Time
	// NewTimer returns a timer that fires once after d.
	NewTimer(d time.Duration) Timer
}

// Timer is a one-shot timer of a Clock.
type Timer interface {
	C() <-chan time.Time
	// Stop prevents the timer from firing; it reports whether it did.
	Stop() bool
}

// RealClock is the system clock.
type RealClock struct{}

var _ Clock = RealClock{}

// Now returns time.Now().
func (RealClock) Now() time.Time { return time.Now() }

// NewTimer wraps time.NewTimer.
func (RealClock) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

type realTimer struct{ t *time.Timer }

func (t realTimer) C() <-chan time.Time { return t.t.C }
func (t realTimer) Stop() bool          { return t.t.Stop() }

// waiter waits for instants on a clock, one wait at a time: the arrival
// loop's sleeps between arrivals.
type waiter interface {
	// until waits until t; false if ctx ended first.
	until(t time.Time) bool
	// close releases the waiter.
	close()
}

// newWaiter returns the waiter of the arrival loop for ctx: on the real
// clock a precise one where the platform has it (see preciseWaiter), else
// one of the clock's timers per wait. It does not spin (see
// newSpinWaiter).
func newWaiter(ctx context.Context, c Clock) waiter { return newSpinWaiter(ctx, c, 0) }

// newSpinWaiter is newWaiter with a spin (0 to MaxPacingSpin; real clock
// only): each wait that sleeps wakes spin before its instant and
// busy-waits the rest (see spinUntil), so that the wake-up's own lateness
// is absorbed by the spin, at the cost of up to spin of CPU per wait.
// Zero sleeps until the instant, as newWaiter.
func newSpinWaiter(ctx context.Context, c Clock, spin time.Duration) waiter {
	if _, ok := c.(RealClock); ok {
		spin = min(max(spin, 0), MaxPacingSpin)
		if w, err := newPreciseWaiter(ctx, spin); err == nil {
			return w
		}
		return &timerWaiter{ctx: ctx, c: c, spin: spin}
	}
	return &timerWaiter{ctx: ctx, c: c}
}

// MaxPacingSpin is the longest spin of the arrival loop's waiter (see
// newSpinWaiter): at 1000 arrivals/s, up to a whole core.
const MaxPacingSpin = time.Millisecond

// timerWaiter waits on the clock's timers; with a spin (real clock only)
// it wakes spin early and busy-waits the rest.
type timerWaiter struct {
	ctx  context.Context
	c    Clock
	spin time.Duration
}

func (w *timerWaiter) until(t time.Time) bool {
	d := t.Sub(w.c.Now())
	if d <= 0 {
		return w.ctx.Err() == nil
	}
	if d > w.spin {
		tm := w.c.NewTimer(d - w.spin)
		defer tm.Stop()
		select {
		case <-w.ctx.Done():
			return false
		case <-tm.C():
		}
	}
	if w.spin > 0 {
		return spinUntil(w.ctx, t)
	}
	return true
}

// spinUntil busy-waits on the real clock until t, yielding its processor
// to other goroutines between looks; false if ctx ended first.
func spinUntil(ctx context.Context, t time.Time) bool {
	for time.Now().Before(t) {
		if ctx.Err() != nil {
			return false
		}
		runtime.Gosched()
	}
	return ctx.Err() == nil
}

func (w *timerWaiter) close() {}

// wakeQuantum is the least time between two wake-ups of the precise
// waiter: arrivals due closer together than that are sent together, up to
// wakeQuantum late, because a wake-up from idle costs more CPU than the
// request it sends. Rates up to 5,000/s are never batched. Measured in
// docs/benchmarks.md ("Agent dispatch").
const wakeQuantum = 200 * time.Microsecond
