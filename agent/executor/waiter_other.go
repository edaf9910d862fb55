//go:build !linux

package executor

import (
	"context"
	"errors"
	"time"
)

// newPreciseWaiter has no precise implementation off Linux: the arrival
// loop uses the runtime's timers.
func newPreciseWaiter(context.Context, time.Duration) (waiter, error) {
	return nil, errors.New("no precise waiter on this platform")
}
