package main

import (
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// hold sleeps d on a timerfd of its own, waited for through the runtime's
// netpoller. A Go timer (time.Sleep) fires up to a millisecond late when
// the process idles, because the netpoller waits in milliseconds; how late
// then depends on when requests arrive, so two clients' runs would meet
// two different targets. The timerfd expires on the kernel's
// high-resolution timer and ends the netpoller's wait at once.
func hold(d time.Duration) error {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return fmt.Errorf("hold: timerfd: %w", err)
	}
	f := os.NewFile(uintptr(fd), "timerfd")
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return fmt.Errorf("hold: %w", err)
	}
	spec := unix.ItimerSpec{Value: unix.NsecToTimespec(int64(d))}
	var (
		armed  bool
		armErr error
		buf    [8]byte
	)
	// Armed on the first call, after the poller was reset for this read,
	// so the expiry cannot be missed; read on the next ones.
	err = rc.Read(func(fd uintptr) bool {
		if !armed {
			armed = true
			armErr = unix.TimerfdSettime(int(fd), 0, &spec, nil)
			return armErr != nil
		}
		_, err := unix.Read(int(fd), buf[:])
		return !errors.Is(err, unix.EAGAIN)
	})
	if err = errors.Join(err, armErr); err != nil {
		return fmt.Errorf("hold: %w", err)
	}
	return nil
}
