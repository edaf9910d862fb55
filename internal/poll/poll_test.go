package poll

import (
	"errors"
	"testing"
	"time"
)

func TestUntilReturnsOnceCondHolds(t *testing.T) {
	calls := 0
	err := Until(time.Minute, func() error {
		calls++
		if calls < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Fatalf("Until = %v after %d calls, want nil after 3", err, calls)
	}
}

func TestUntilGivesTheLastErrorAtTheDeadline(t *testing.T) {
	cause := errors.New("never")
	start := time.Now()
	err := Until(50*time.Millisecond, func() error { return cause })
	if !errors.Is(err, cause) {
		t.Fatalf("Until = %v, want it to wrap %v", err, cause)
	}
	if took := time.Since(start); took < 50*time.Millisecond {
		t.Fatalf("Until gave up after %v, before its 50ms deadline", took)
	}
}
