package plan

import (
	"math"
	"math/big"
	"time"
)

// arrivalRate is the open-model kinds: constant-arrival-rate (rate for
// duration) and ramping-arrival-rate (start_rate through stages), per
// time_unit, from a pool of pre-allocated up to max VUs.
type arrivalRate struct {
	name    string
	ramping bool
}

var _ Kind = arrivalRate{}

func (k arrivalRate) Name() string { return k.name }
func (arrivalRate) Family() Family { return ArrivalRateFamily }
func (k arrivalRate) Options() []string {
	if k.ramping {
		return []string{"start_rate", "time_unit", "stages", "pre_allocated_vus", "max_vus", "arrivals"}
	}
	return []string{"rate", "time_unit", "duration", "pre_allocated_vus", "max_vus", "arrivals"}
}

func (k arrivalRate) check(l *errorList, path string, s *Scenario) {
	k.applyDefaults(s)
	if k.ramping {
		if !(s.StartRate >= 0) || math.IsInf(s.StartRate, 0) {
			l.add(joinPath(path, "start_rate"), "must be a finite number >= 0, got %v", s.StartRate)
		}
		checkStages(l, path, s, false)
	} else {
		if !(s.Rate > 0) || math.IsInf(s.Rate, 0) {
			l.add(joinPath(path, "rate"), "must be a finite number > 0, got %v", s.Rate)
		}
		checkPositive(l, joinPath(path, "duration"), s.Duration)
	}
	checkArrivals(l, joinPath(path, "arrivals"), s.Arrivals)
	checkPositive(l, joinPath(path, "time_unit"), s.TimeUnit)
	if s.PreAllocatedVUs < 1 {
		l.add(joinPath(path, "pre_allocated_vus"), "must be >= 1, got %d", s.PreAllocatedVUs)
	}
	if s.MaxVUs < s.PreAllocatedVUs {
		l.add(joinPath(path, "max_vus"), "must be >= pre_allocated_vus (%d), got %d", s.PreAllocatedVUs, s.MaxVUs)
	}
}

// applyDefaults fills in time_unit, pre_allocated_vus and max_vus.
// pre_allocated_vus defaults to max(1, ceil(peak rate per second)): enough
// VUs for iterations that take up to a second at the peak rate. max_vus
// defaults to pre_allocated_vus, as in k6.
func (arrivalRate) applyDefaults(s *Scenario) {
	if s.TimeUnit == 0 {
		s.TimeUnit = DefaultTimeUnit
	}
	if s.PreAllocatedVUs == 0 && s.TimeUnit > 0 {
		peak := s.PeakRate()
		if peak > 1<<40 || math.IsNaN(peak) {
			peak = 1 << 40
		}
		s.PreAllocatedVUs = max(1, int64(math.Ceil(peak)))
	}
	if s.MaxVUs == 0 {
		s.MaxVUs = s.PreAllocatedVUs
	}
}

func (k arrivalRate) length(s *Scenario) time.Duration {
	if k.ramping {
		return stagesLength(s)
	}
	return s.Duration.D()
}

func (k arrivalRate) segments(s *Scenario) int {
	if k.ramping {
		return len(s.Stages)
	}
	return 1
}

// segment is in arrivals per second: the plan's rates divided by time_unit.
func (k arrivalRate) segment(s *Scenario, i int) (secs, from, to float64) {
	unit := s.TimeUnit.D().Seconds()
	if unit <= 0 {
		return 0, 0, 0
	}
	if !k.ramping {
		r := s.Rate / unit
		return s.Duration.D().Seconds(), r, r
	}
	secs, from, to = stageSegment(s, i, s.StartRate)
	return secs, from / unit, to / unit
}

// split apportions the arrivals, then the VUs: an agent with arrivals gets
// at least one pre-allocated VU.
func (arrivalRate) split(s *Scenario, fs []*big.Rat, parts []ScenarioShare) {
	total := s.TotalArrivals()
	arrivals := apportion(total, fs, nil)
	need := make([]int64, len(fs))
	for k, a := range arrivals {
		if a > 0 {
			need[k] = 1
		}
	}
	pre := apportion(s.PreAllocatedVUs, fs, need)
	extra := apportion(max(s.MaxVUs-s.PreAllocatedVUs, 0), fs, nil)
	for k := range parts {
		parts[k].Arrivals = arrivals[k]
		parts[k].TotalArrivals = total
		parts[k].PreAllocVUs = pre[k]
		parts[k].MaxVUs = pre[k] + extra[k]
	}
}

func (arrivalRate) peakVUs(s *Scenario) int64 { return s.MaxVUs }
