package plan

import (
	"math"
	"sort"
	"time"
)

// ScenarioNames returns the scenario names sorted.
func (p *Plan) ScenarioNames() []string { return sortedKeys(p.Scenarios) }

// TotalDuration is the longest scenario's start_time + duration (or sum of
// stages), without graceful stop.
func (p *Plan) TotalDuration() time.Duration {
	var total time.Duration
	for _, s := range p.Scenarios {
		if s == nil {
			continue
		}
		total = max(total, s.StartTime.D()+s.Length())
	}
	return total
}

// IsArrivalRate reports whether the executor is open-model.
func (s *Scenario) IsArrivalRate() bool { return s.family() == ArrivalRateFamily }

// family is the scenario's kind's family; zero for an unknown executor.
func (s *Scenario) family() Family {
	if k := s.Kind(); k != nil {
		return k.Family()
	}
	return 0
}

// Length is the scenario's own duration (duration, or the sum of stages),
// excluding start_time and graceful_stop.
func (s *Scenario) Length() time.Duration {
	if k := s.Kind(); k != nil {
		return k.length(s)
	}
	return 0
}

// IsIterations reports whether the executor runs a fixed number of
// iterations (per-vu-iterations, shared-iterations).
func (s *Scenario) IsIterations() bool { return s.family() == IterationsFamily }

// TotalIterations is the iterations an iteration executor runs in all:
// vus × iterations (per-vu-iterations) or iterations (shared-iterations).
func (s *Scenario) TotalIterations() int64 {
	if k, ok := s.Kind().(iterations); ok {
		return k.total(s)
	}
	return 0
}

// segments is the number of linear pieces of the scenario's curve: its
// rate (arrival-rate executors) or VU count (VU executors).
func (s *Scenario) segments() int {
	if k := s.Kind(); k != nil {
		return k.segments(s)
	}
	return 0
}

// segment returns piece i of the curve: its length in seconds and its
// values at both ends, per second for rates.
func (s *Scenario) segment(i int) (secs, from, to float64) {
	if k := s.Kind(); k != nil {
		return k.segment(s, i)
	}
	return 0, 0, 0
}

// curveAt evaluates the piecewise linear curve at t: 0 outside [0, Length).
func (s *Scenario) curveAt(t time.Duration) float64 {
	if t < 0 {
		return 0
	}
	x := t.Seconds()
	for i := range s.segments() {
		d, a, b := s.segment(i)
		if x < d {
			return a + (b-a)*x/d
		}
		x -= d
	}
	return 0
}

// RateAt is the planned arrival rate, per second, at t since the scenario's
// start (arrival-rate executors): zero outside [0, Length()) and for VU
// executors.
func (s *Scenario) RateAt(t time.Duration) float64 {
	if !s.IsArrivalRate() {
		return 0
	}
	return s.curveAt(t)
}

// PeakRate is the highest planned arrival rate, per second (zero for VU
// executors).
func (s *Scenario) PeakRate() float64 {
	if !s.IsArrivalRate() {
		return 0
	}
	var peak float64
	for i := range s.segments() {
		_, a, b := s.segment(i)
		peak = max(peak, a, b)
	}
	return peak
}

// Cumulative is the number of arrivals planned in [0, t): the integral of
// RateAt, exact for the piecewise linear curve.
func (s *Scenario) Cumulative(t time.Duration) float64 {
	if !s.IsArrivalRate() || t <= 0 {
		return 0
	}
	x := t.Seconds()
	var sum float64
	for i := range s.segments() {
		d, a, b := s.segment(i)
		if x < d {
			return sum + a*x + (b-a)/d*x*x/2
		}
		sum += (a + b) / 2 * d
		x -= d
	}
	return sum
}

// TimeOfArrival inverts Cumulative: the earliest t with Cumulative(t) >= n.
// For n <= 0 it returns 0; for n beyond the total it returns Length().
func (s *Scenario) TimeOfArrival(n float64) time.Duration {
	if !s.IsArrivalRate() || !(n > 0) {
		return 0
	}
	var start, cum float64
	for i := range s.segments() {
		d, a, b := s.segment(i)
		area := (a + b) / 2 * d
		if area > 0 && cum+area >= n {
			m := n - cum
			// Solve a*x + k*x²/2 = m with k = (b-a)/d; this form is stable
			// for rising, falling and flat pieces and for a = 0.
			k := (b - a) / d
			disc := max(a*a+2*k*m, 0)
			x := 2 * m / (a + math.Sqrt(disc))
			x = min(max(x, 0), d)
			return secondsToDuration(start + x)
		}
		cum += area
		start += d
	}
	return s.Length()
}

// TotalArrivals is floor(Cumulative(Length())), with a relative tolerance
// of 1e-9 so that totals such as 0→100/s over 10s give exactly 500.
func (s *Scenario) TotalArrivals() int64 {
	c := s.Cumulative(s.Length())
	return int64(math.Floor(c + 1e-9*max(1, c)))
}

// VUsAt is the planned VU count at t for VU executors (constant: VUs;
// ramping: linear interpolation from start_vus through stages, as k6). It is
// zero outside [0, Length()) and for arrival-rate executors.
func (s *Scenario) VUsAt(t time.Duration) float64 {
	if s.IsArrivalRate() {
		return 0
	}
	return s.curveAt(t)
}

// PeakVUs is the most VUs the scenario may run: max_vus for arrival-rate
// executors, vus for constant-vus, the largest of start_vus and the stage
// targets for ramping-vus.
func (s *Scenario) PeakVUs() int64 {
	if k := s.Kind(); k != nil {
		return k.peakVUs(s)
	}
	return 0
}

// breakpoints appends the times, since the scenario's start, where its
// curve changes slope, and returns the sorted result.
func (s *Scenario) breakpoints(dst []float64) []float64 {
	var x float64
	dst = append(dst, 0)
	for i := range s.segments() {
		d, _, _ := s.segment(i)
		x += d
		dst = append(dst, x)
	}
	sort.Float64s(dst)
	return dst
}

// rateLimits returns the left and right limits of the rate curve at x
// seconds since the scenario's start.
func (s *Scenario) rateLimits(x float64) (left, right float64) {
	var start float64
	for i := range s.segments() {
		d, a, b := s.segment(i)
		end := start + d
		if x > start && x <= end {
			left = a + (b-a)*(x-start)/d
		}
		if x >= start && x < end {
			right = a + (b-a)*(x-start)/d
		}
		start = end
	}
	return left, right
}

func secondsToDuration(x float64) time.Duration {
	return time.Duration(math.Round(x * float64(time.Second)))
}
