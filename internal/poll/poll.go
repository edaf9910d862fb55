// Package poll waits for a condition with a deadline, in place of a sleep
// that hopes the condition holds by then.
package poll

import (
	"fmt"
	"testing"
	"time"
)

// The wait between two checks starts at firstWait and doubles up to
// maxWait: a condition that soon holds is seen soon, and one that runs a
// command or a query is not run hundreds of times a second.
const (
	firstWait = 5 * time.Millisecond
	maxWait   = 100 * time.Millisecond
)

// Until calls cond until it returns nil, and returns nil then; once d has
// passed it returns cond's last error.
func Until(d time.Duration, cond func() error) error {
	deadline := time.Now().Add(d)
	for wait := firstWait; ; wait = min(2*wait, maxWait) {
		err := cond()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %v: %w", d, err)
		}
		time.Sleep(wait)
	}
}

// Eventually fails t unless cond holds within d; what names the condition
// in the failure.
func Eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	EventuallyErr(t, d, what, func() error {
		if cond() {
			return nil
		}
		return fmt.Errorf("%s does not hold", what)
	})
}

// EventuallyErr fails t unless cond returns nil within d, reporting cond's
// last error.
func EventuallyErr(t testing.TB, d time.Duration, what string, cond func() error) {
	t.Helper()
	if err := Until(d, cond); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}
