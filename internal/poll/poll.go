// Package poll waits for a condition with a deadline, in place of a sleep
// that hopes the condition holds by then.
package poll

import (
	"fmt"
	"testing"
	"time"
)

// Interval is how long Until and Eventually wait between two checks.
const Interval = 10 * time.Millisecond

// Until calls cond every Interval until it returns nil, and returns nil
// then; once d has passed it returns cond's last error.
func Until(d time.Duration, cond func() error) error {
	deadline := time.Now().Add(d)
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %v: %w", d, err)
		}
		time.Sleep(Interval)
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
