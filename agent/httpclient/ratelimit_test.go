package httpclient

import (
	"testing"
	"time"
)

// TestRateLimitSlots: slots are 1/rate apart from the first request after
// an idle spell, idle time banks no burst, and a nil limit never waits.
func TestRateLimitSlots(t *testing.T) {
	l := NewRateLimit(4)
	t0 := time.Unix(100, 0)
	want := []time.Duration{0, 250 * time.Millisecond, 500 * time.Millisecond, 750 * time.Millisecond}
	for i, w := range want {
		if got := l.reserve(t0).Sub(t0); got != w {
			t.Errorf("slot %d at +%v, want +%v", i, got, w)
		}
	}
	// Asked at +2s, long after the last slot (+750ms): now, then 250ms on.
	t1 := t0.Add(2 * time.Second)
	if got := l.reserve(t1); !got.Equal(t1) {
		t.Errorf("after idle: %v, want now %v", got, t1)
	}
	if got := l.reserve(t1).Sub(t1); got != 250*time.Millisecond {
		t.Errorf("next after idle +%v, want +250ms", got)
	}
	// A third of a second apart: no drift over a million slots.
	l3 := NewRateLimit(3)
	var last time.Time
	for range 3_000_000 {
		last = l3.reserve(t0)
	}
	if d := last.Sub(t0); d < 999_999*time.Second+666*time.Millisecond || d > 999_999*time.Second+667*time.Millisecond {
		t.Errorf("slot 3,000,000 at +%v, want +999999.667s", d)
	}
	if NewRateLimit(0) != nil {
		t.Error("rate 0 limits")
	}
}
