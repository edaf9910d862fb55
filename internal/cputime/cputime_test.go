//go:build unix

package cputime

import (
	"testing"
	"time"
)

func TestProcessGrowsWithWork(t *testing.T) {
	before := Process()
	x := 0
	for deadline := time.Now().Add(50 * time.Millisecond); time.Now().Before(deadline); {
		x++
	}
	if after := Process(); after <= before {
		t.Fatalf("Process() = %v after busy work, was %v (x=%d)", after, before, x)
	}
}
