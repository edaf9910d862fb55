package httpclient

import (
	"context"
	"sync"
	"time"
)

// RateLimit spaces requests to at most Rate per second, evenly: request k
// after an idle spell is sent at base + k/Rate (a plan's rps, this agent's
// part of it). It is shared by every scenario of a run on the agent. Idle
// time does not bank a burst. The zero *RateLimit (nil) never waits.
type RateLimit struct {
	rate float64
	mu   sync.Mutex
	base time.Time
	k    int64
}

// NewRateLimit limits to rate requests per second; nil for rate <= 0.
func NewRateLimit(rate float64) *RateLimit {
	if rate <= 0 {
		return nil
	}
	return &RateLimit{rate: rate}
}

// reserve is the time of the next free slot, taken.
func (l *RateLimit) reserve(now time.Time) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	at := l.base.Add(time.Duration(float64(l.k) * float64(time.Second) / l.rate))
	if l.base.IsZero() || at.Before(now) {
		l.base, l.k, at = now, 0, now
	}
	l.k++
	return at
}

// wait blocks until the caller's slot; false when ctx ended first. A nil
// limit returns at once, without touching ctx (every request passes here).
func (l *RateLimit) wait(ctx context.Context) bool {
	if l == nil {
		return true
	}
	return sleep(ctx, time.Until(l.reserve(time.Now())))
}
