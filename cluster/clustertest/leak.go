// Package clustertest has test helpers for packages that run memberlist.
package clustertest

import (
	"fmt"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// LeakDeadline bounds how long VerifyTestMain waits for goroutines to end.
// memberlist's Shutdown does not wait for a probe already in flight; that
// goroutine ends by itself within one ProbeInterval (1 s in the local and
// LAN profiles), so a leak check right after Shutdown can see it.
const LeakDeadline = 5 * time.Second

// VerifyTestMain runs the tests, then polls goleak until no unexpected
// goroutine is left or LeakDeadline passes, and fails the binary if any is
// left then. It is goleak.VerifyTestMain with a deadline instead of
// goleak's short fixed retry.
func VerifyTestMain(m *testing.M, opts ...goleak.Option) {
	code := m.Run()
	if code == 0 {
		deadline := time.Now().Add(LeakDeadline)
		for {
			err := goleak.Find(opts...)
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				fmt.Fprintf(os.Stderr, "goleak: goroutines left %v after the tests: %v\n", LeakDeadline, err)
				code = 1
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	os.Exit(code)
}
