//go:build linux && race

package httpclient

import (
	"errors"
	"syscall"
)

// Under the race detector the raw path's system calls go through package
// syscall, which tells the detector that what one goroutine wrote before
// sending is visible to the one that reads it (raw system calls would
// hide that order, and tests of servers that record what they saw would
// report races that are not).

func rawWrite(fd uintptr, b []byte) (int, syscall.Errno) {
	n, err := syscall.Write(int(fd), b)
	return max(n, 0), errno(err)
}

func rawRead(fd uintptr, b []byte) (int, syscall.Errno) {
	n, err := syscall.Read(int(fd), b)
	return max(n, 0), errno(err)
}

func errno(err error) syscall.Errno {
	var e syscall.Errno
	if err != nil && !errors.As(err, &e) {
		return syscall.EIO
	}
	return e
}
