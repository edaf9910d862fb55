package plan

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

func sec(x float64) Duration { return Duration(x * float64(time.Second)) }

func ramping(start float64, stages ...float64) *Scenario {
	s := &Scenario{Executor: RampingArrivalRate, StartRate: start, TimeUnit: DefaultTimeUnit}
	for i := 0; i+1 < len(stages); i += 2 {
		s.Stages = append(s.Stages, Stage{Duration: sec(stages[i]), Target: stages[i+1]})
	}
	return s
}

func TestScheduleTotals(t *testing.T) {
	for _, c := range []struct {
		name   string
		s      *Scenario
		length time.Duration
		total  int64
	}{
		{"ramp 0→100/s over 10s", ramping(0, 10, 100), 10 * time.Second, 500},
		{"ramp up hold down", ramping(0, 10, 100, 5, 100, 10, 0), 25 * time.Second, 1500},
		{"flat zero then ramp", ramping(0, 5, 0, 4, 8), 9 * time.Second, 16},
		{"down ramp", ramping(10, 10, 0), 10 * time.Second, 50},
		{"time unit 1m", &Scenario{Executor: ConstantArrivalRate, Rate: 30, TimeUnit: Duration(time.Minute), Duration: sec(90)}, 90 * time.Second, 45},
		{"constant 7/s for 3s", &Scenario{Executor: ConstantArrivalRate, Rate: 7, TimeUnit: DefaultTimeUnit, Duration: sec(3)}, 3 * time.Second, 21},
		{"fractional", &Scenario{Executor: ConstantArrivalRate, Rate: 1, TimeUnit: sec(3), Duration: sec(10)}, 10 * time.Second, 3},
		{"vus", &Scenario{Executor: ConstantVUs, VUs: 3, Duration: sec(10)}, 10 * time.Second, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := c.s.Length(); got != c.length {
				t.Errorf("Length = %s, want %s", got, c.length)
			}
			if got := c.s.TotalArrivals(); got != c.total {
				t.Errorf("TotalArrivals = %d, want %d", got, c.total)
			}
		})
	}
}

func TestRateAtAndVUsAt(t *testing.T) {
	s := ramping(20, 10, 120, 10, 120)
	for _, c := range []struct {
		t    time.Duration
		want float64
	}{{-time.Second, 0}, {0, 20}, {5 * time.Second, 70}, {10 * time.Second, 120}, {15 * time.Second, 120}, {20 * time.Second, 0}} {
		if got := s.RateAt(c.t); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("RateAt(%s) = %v, want %v", c.t, got, c.want)
		}
	}
	if got := s.PeakRate(); got != 120 {
		t.Errorf("PeakRate = %v", got)
	}
	v := &Scenario{Executor: RampingVUs, StartVUs: 2, Stages: []Stage{{sec(4), 10}, {sec(4), 0}}}
	for _, c := range []struct {
		t    time.Duration
		want float64
	}{{0, 2}, {2 * time.Second, 6}, {6 * time.Second, 5}, {8 * time.Second, 0}} {
		if got := v.VUsAt(c.t); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("VUsAt(%s) = %v, want %v", c.t, got, c.want)
		}
	}
	if v.RateAt(time.Second) != 0 || s.VUsAt(time.Second) != 0 {
		t.Error("RateAt of a VU executor or VUsAt of an arrival-rate one is not 0")
	}
}

func TestTimeOfArrival(t *testing.T) {
	s := ramping(0, 10, 100) // Cumulative(t) = 5t²
	for _, c := range []struct {
		n    float64
		want time.Duration
	}{{0, 0}, {5, time.Second}, {20, 2 * time.Second}, {500, 10 * time.Second}, {501, 10 * time.Second}} {
		if got := s.TimeOfArrival(c.n); got != c.want {
			t.Errorf("TimeOfArrival(%v) = %s, want %s", c.n, got, c.want)
		}
	}
	// A zero-rate stage: the first arrival comes after it.
	z := ramping(0, 5, 0, 4, 8)
	if got := z.TimeOfArrival(1e-12); got < 5*time.Second || got > 5*time.Second+time.Millisecond {
		t.Errorf("TimeOfArrival after a zero stage = %s, want ~5s", got)
	}
}

// TestCumulativeRoundTrip checks TimeOfArrival inverts Cumulative on random
// piecewise linear schedules, including flat, falling and zero stages.
func TestCumulativeRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 300 {
		s := ramping(float64(rng.IntN(3)) * rng.Float64() * 50)
		for range 1 + rng.IntN(6) {
			target := 0.0
			if rng.IntN(4) > 0 {
				target = rng.Float64() * 200
			}
			if rng.IntN(5) == 0 && len(s.Stages) > 0 {
				target = s.Stages[len(s.Stages)-1].Target // flat
			}
			s.Stages = append(s.Stages, Stage{Duration: sec(0.1 + rng.Float64()*20), Target: target})
		}
		total := s.Cumulative(s.Length())
		for range 50 {
			n := rng.Float64() * total
			at := s.TimeOfArrival(n)
			if got := s.Cumulative(at); math.Abs(got-n) > 1e-6*max(1, n) {
				t.Fatalf("Cumulative(TimeOfArrival(%v)) = %v on %+v", n, got, s.Stages)
			}
			if at > 0 && s.Cumulative(at-time.Microsecond) >= n+1e-6 {
				t.Fatalf("TimeOfArrival(%v) = %s is not the earliest", n, at)
			}
		}
		// Cumulative is the integral of RateAt (trapezoids over 10ms).
		var sum float64
		step := 10 * time.Millisecond
		for x := time.Duration(0); x < s.Length(); x += step {
			w := min(step, s.Length()-x)
			sum += (s.RateAt(x) + s.RateAt(x+w-1)) / 2 * w.Seconds()
		}
		if math.Abs(sum-total) > 1e-2*max(1, total) {
			t.Fatalf("integral of RateAt = %v, Cumulative = %v", sum, total)
		}
	}
}

func TestScheduleDoesNotAllocate(t *testing.T) {
	s := ramping(10, 10, 100, 5, 100, 10, 0)
	allocs := testing.AllocsPerRun(100, func() {
		_ = s.RateAt(7 * time.Second)
		_ = s.Cumulative(12 * time.Second)
		_ = s.TimeOfArrival(900)
		_ = s.TotalArrivals()
		_ = s.VUsAt(time.Second)
	})
	if allocs != 0 {
		t.Fatalf("schedule functions allocate %v times", allocs)
	}
}
