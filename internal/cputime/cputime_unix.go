//go:build unix

// Package cputime reads the CPU time this process has used, for benchmarks
// and stats that report work per CPU second.
package cputime

import (
	"syscall"
	"time"
)

// Process is this process's user plus system CPU time so far (0 if the
// system will not say).
func Process() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
