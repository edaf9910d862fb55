package plan

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestBackoffWait(t *testing.T) {
	zero := 0.0
	exp := &Backoff{Type: BackoffExponential, Base: Duration(100 * time.Millisecond), Max: Duration(time.Second), Jitter: &zero}
	for n, want := range map[int64]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 4: 800 * time.Millisecond, 5: time.Second} {
		if got := exp.Wait(n, 0.7); got != want {
			t.Errorf("exponential Wait(%d) = %v, want %v", n, got, want)
		}
	}
	constant := &Backoff{Type: BackoffConstant, Base: Duration(50 * time.Millisecond), Jitter: &zero}
	if got := constant.Wait(7, 0.3); got != 50*time.Millisecond {
		t.Errorf("constant Wait(7) = %v, want 50ms", got)
	}
	var none *Backoff
	// Defaults: exponential from 100ms, ×2, full jitter: u=0 is the whole
	// wait, u→1 nearly none.
	if got := none.Wait(3, 0); got != 400*time.Millisecond {
		t.Errorf("default Wait(3, 0) = %v, want 400ms", got)
	}
	if got := none.Wait(3, 0.5); got != 200*time.Millisecond {
		t.Errorf("default Wait(3, 0.5) = %v, want 200ms", got)
	}
	if got := none.Wait(30, 0); got != DefaultBackoffMax {
		t.Errorf("default Wait(30, 0) = %v, want the 10s cap", got)
	}
	if none.Cap() != DefaultBackoffMax || exp.Cap() != time.Second {
		t.Errorf("Cap: %v, %v", none.Cap(), exp.Cap())
	}
}

func TestDistSample(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	uni := &Dist{Uniform: []Duration{Duration(time.Second), Duration(2 * time.Second)}}
	var sum time.Duration
	for range 1000 {
		d := uni.Sample(rng)
		if d < time.Second || d > 2*time.Second {
			t.Fatalf("uniform sample %v outside [1s, 2s]", d)
		}
		sum += d
	}
	if mean := sum / 1000; mean < 1400*time.Millisecond || mean > 1600*time.Millisecond {
		t.Errorf("uniform mean %v, want about 1.5s", mean)
	}
	if got := (&Dist{Constant: Duration(time.Second)}).Sample(rng); got != time.Second {
		t.Errorf("constant sample %v", got)
	}
	var none *Dist
	if none.Sample(rng) != 0 {
		t.Error("nil dist sample is not 0")
	}
	neg := &Dist{Normal: &NormalDist{Mean: 0, StdDev: Duration(time.Second)}}
	for range 100 {
		if neg.Sample(rng) < 0 {
			t.Fatal("normal sample below 0")
		}
	}
}
