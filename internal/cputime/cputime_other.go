//go:build !unix

// Package cputime reads the CPU time this process has used, for benchmarks
// and stats that report work per CPU second.
package cputime

import "time"

// Process is unavailable here: it is always 0.
func Process() time.Duration { return 0 }
