package executor

import (
	"context"
	"fmt"
	"os"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// preciseWaiter sleeps on a Linux timerfd read through the runtime's
// netpoller. A Go timer due in less than a millisecond can fire up to a
// millisecond late while the process idles (the netpoller's epoll wait
// has millisecond timeouts); the timerfd is in the same epoll set, so the
// wait ends when the kernel's high-resolution timer expires. Each sleep
// costs two system calls (arm, read), both raw: they return at once, and
// a system call through the scheduler (entersyscall) wakes its monitor
// thread when the process was idle, a second thread wake-up per sleep
// (at 1000/s that doubled the CPU of each arrival).
type preciseWaiter struct {
	ctx  context.Context
	f    *os.File
	rc   syscall.RawConn
	fd   int
	stop func() bool
	// arm is the pending wait's timer value, set by the first call of
	// readable (after the poller was reset for this read, so the expiry
	// cannot be missed).
	arm      unix.ItimerSpec
	armed    bool
	armErr   error
	readable func(fd uintptr) bool
	buf      [8]byte
	// woke is when the last sleep ended.
	woke time.Time
	// spin: see newSpinWaiter. wake is the instant the last sleep was armed
	// for.
	spin time.Duration
	wake time.Time
}

func newPreciseWaiter(ctx context.Context, spin time.Duration) (waiter, error) {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("timerfd: %w", err)
	}
	f := os.NewFile(uintptr(fd), "timerfd")
	rc, err := f.SyscallConn()
	if err == nil {
		// A pollable file supports deadlines: the test that the netpoller
		// took it.
		err = f.SetReadDeadline(time.Time{})
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("timerfd: %w", err)
	}
	w := &preciseWaiter{ctx: ctx, f: f, rc: rc, fd: fd, spin: spin}
	w.readable = w.onReadable
	// The end of ctx interrupts a sleep: a deadline in the past.
	w.stop = context.AfterFunc(ctx, func() { _ = f.SetReadDeadline(time.Unix(1, 0)) })
	return w, nil
}

func (w *preciseWaiter) until(t time.Time) bool {
	slept := false
	for {
		now := time.Now()
		d := t.Sub(now)
		if d <= 0 {
			return w.ctx.Err() == nil
		}
		// The last spin before t follows this call's sleep, or a wake-up
		// allowed by the quantum: a spin is not a wake-up.
		if d <= w.spin && (slept || !now.Before(w.woke.Add(wakeQuantum))) {
			return spinUntil(w.ctx, t)
		}
		// Wake spin before t, but not within wakeQuantum of the last
		// wake-up (see wakeQuantum): with spin 0, at t or later.
		w.wake = t.Add(-w.spin)
		if next := w.woke.Add(wakeQuantum); next.After(w.wake) {
			w.wake = next
		}
		w.arm.Value = unix.NsecToTimespec(int64(w.wake.Sub(now)))
		w.armed, w.armErr = false, nil
		err := w.rc.Read(w.readable)
		switch {
		case w.ctx.Err() != nil:
			return false
		case err != nil || w.armErr != nil:
			// Not expected; fall back to the runtime's timer.
			return (&timerWaiter{ctx: w.ctx, c: RealClock{}, spin: w.spin}).until(t)
		}
		w.woke = time.Now()
		slept = true
	}
}

// onReadable arms the timer on its first call and waits (the poller was
// reset for this read before it, so the expiry cannot be missed), then
// reads the expiry: true when the read is done.
func (w *preciseWaiter) onReadable(fd uintptr) bool {
	if !w.armed {
		w.armed = true
		if _, _, e := unix.RawSyscall6(unix.SYS_TIMERFD_SETTIME, fd, 0, uintptr(unsafe.Pointer(&w.arm)), 0, 0, 0); e != 0 {
			w.armErr = fmt.Errorf("timerfd_settime: %w", e)
			return true
		}
		return false
	}
	_, _, e := unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&w.buf[0])), uintptr(len(w.buf)))
	return e != unix.EAGAIN
}

func (w *preciseWaiter) close() {
	w.stop()
	_ = w.f.Close()
}
