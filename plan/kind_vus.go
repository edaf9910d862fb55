package plan

import (
	"math/big"
	"time"
)

// vus is the closed-model kinds that follow a VU curve: constant-vus (vus
// for duration) and ramping-vus (start_vus through stages, VUs the curve
// removes get graceful_ramp_down to finish).
type vus struct {
	name    string
	ramping bool
}

var _ Kind = vus{}

func (k vus) Name() string { return k.name }
func (vus) Family() Family { return VUsFamily }
func (k vus) Options() []string {
	if k.ramping {
		return []string{"start_vus", "stages", "graceful_ramp_down"}
	}
	return []string{"vus", "duration"}
}

func (k vus) check(l *errorList, path string, s *Scenario) {
	if !k.ramping {
		if s.VUs < 1 {
			l.add(joinPath(path, "vus"), "must be >= 1, got %d", s.VUs)
		}
		checkPositive(l, joinPath(path, "duration"), s.Duration)
		checkArrivals(l, joinPath(path, "arrivals"), s.Arrivals)
		return
	}
	if s.StartVUs < 0 {
		l.add(joinPath(path, "start_vus"), "must be >= 0, got %d", s.StartVUs)
	}
	checkStages(l, path, s, true)
	if s.GracefulRampDown == 0 && !l.pos.has(joinPath(path, "graceful_ramp_down")) {
		s.GracefulRampDown = DefaultRampDown
	}
	if s.GracefulRampDown < 0 {
		l.add(joinPath(path, "graceful_ramp_down"), "must be >= 0, got %s", s.GracefulRampDown)
	}
	checkArrivals(l, joinPath(path, "arrivals"), s.Arrivals)
}

func (k vus) length(s *Scenario) time.Duration {
	if k.ramping {
		return stagesLength(s)
	}
	return s.Duration.D()
}

func (k vus) segments(s *Scenario) int {
	if k.ramping {
		return len(s.Stages)
	}
	return 1
}

func (k vus) segment(s *Scenario, i int) (secs, from, to float64) {
	if k.ramping {
		return stageSegment(s, i, float64(s.StartVUs))
	}
	v := float64(s.VUs)
	return s.Duration.D().Seconds(), v, v
}

// split apportions the VUs; ramping-vus apportions the start and each
// stage's target separately.
func (k vus) split(s *Scenario, fs []*big.Rat, parts []ScenarioShare) {
	if !k.ramping {
		splitVUs(s.VUs, fs, parts)
		return
	}
	for i := range parts {
		parts[i].StageTargets = make([]int64, len(s.Stages)+1)
	}
	for j := range len(s.Stages) + 1 {
		target := s.StartVUs
		if j > 0 {
			target = int64(s.Stages[j-1].Target)
		}
		for i, v := range apportion(target, fs, nil) {
			parts[i].StageTargets[j] = v
		}
	}
}

// peakVUs is vus, or the largest of start_vus and the stage targets.
func (k vus) peakVUs(s *Scenario) int64 {
	if !k.ramping {
		return s.VUs
	}
	peak := s.StartVUs
	for _, st := range s.Stages {
		peak = max(peak, int64(st.Target))
	}
	return peak
}
