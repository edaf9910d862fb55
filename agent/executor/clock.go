// Package executor runs an agent's share of a plan: one goroutine tree per
// scenario, open-model (arrival-rate) executors paced on an absolute
// schedule and closed-model (VU) executors, recording every result into an
// interval Recorder. Time comes from an injectable Clock so schedules can
// be tested with a fake one.
package executor

import (
	"context"
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
// one of the clock's timers per wait.
func newWaiter(ctx context.Context, c Clock) waiter {
	if _, ok := c.(RealClock); ok {
		if w, err := newPreciseWaiter(ctx); err == nil {
			return w
		}
	}
	return &timerWaiter{ctx: ctx, c: c}
}

// timerWaiter waits on the clock's timers.
type timerWaiter struct {
	ctx context.Context
	c   Clock
}

func (w *timerWaiter) until(t time.Time) bool {
	d := t.Sub(w.c.Now())
	if d <= 0 {
		return w.ctx.Err() == nil
	}
	tm := w.c.NewTimer(d)
	defer tm.Stop()
	select {
	case <-w.ctx.Done():
		return false
	case <-tm.C():
		return true
	}
}

func (w *timerWaiter) close() {}

// wakeQuantum is the least time between two wake-ups of the precise
// waiter: arrivals due closer together than that are sent together, up to
// wakeQuantum late, when the previous wake-up was less than wakeQuantum
// ago. Each wake-up from idle costs the client (and the target, woken by
// a burst rather than by each request) about as much as a small request;
// at 1000/s arrivals are a millisecond apart and each is sent on time.
const wakeQuantum = 100 * time.Microsecond
