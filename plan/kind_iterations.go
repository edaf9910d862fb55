package plan

import (
	"math/big"
	"time"
)

// iterations is the kinds that run a fixed number of iterations within
// max_duration: per-vu-iterations (each VU runs iterations) and
// shared-iterations (the VUs share iterations).
type iterations struct {
	name   string
	shared bool
}

var _ Kind = iterations{}

func (k iterations) Name() string                   { return k.name }
func (iterations) Family() Family                   { return IterationsFamily }
func (iterations) Options() []string                { return []string{"vus", "iterations", "max_duration"} }
func (iterations) length(s *Scenario) time.Duration { return s.MaxDuration.D() }
func (iterations) segments(*Scenario) int           { return 1 }
func (iterations) peakVUs(s *Scenario) int64        { return s.VUs }

func (k iterations) check(l *errorList, path string, s *Scenario) {
	if s.VUs == 0 && !l.pos.has(joinPath(path, "vus")) {
		s.VUs = 1
	}
	if s.Iterations == 0 && !l.pos.has(joinPath(path, "iterations")) {
		s.Iterations = 1
	}
	if s.MaxDuration == 0 && !l.pos.has(joinPath(path, "max_duration")) {
		s.MaxDuration = DefaultMaxDuration
	}
	if s.VUs < 1 {
		l.add(joinPath(path, "vus"), "must be >= 1, got %d", s.VUs)
	}
	switch {
	case s.Iterations < 1:
		l.add(joinPath(path, "iterations"), "must be >= 1, got %d", s.Iterations)
	case k.shared && s.Iterations < s.VUs:
		l.add(joinPath(path, "iterations"), "must be >= vus (%d), got %d, as in k6", s.VUs, s.Iterations)
	}
	checkPositive(l, joinPath(path, "max_duration"), s.MaxDuration)
	checkArrivals(l, joinPath(path, "arrivals"), s.Arrivals)
}

// segment is the VU count over max_duration.
func (iterations) segment(s *Scenario, _ int) (secs, from, to float64) {
	v := float64(s.VUs)
	return s.MaxDuration.D().Seconds(), v, v
}

// total is vus × iterations (per-vu) or iterations (shared).
func (k iterations) total(s *Scenario) int64 {
	if k.shared {
		return s.Iterations
	}
	return s.VUs * s.Iterations
}

// split apportions the VUs; iterations follow them: each VU runs
// `iterations` (per-vu), or the shared total is apportioned in proportion
// to the agents' VUs, so an agent never gets iterations without a VU.
func (k iterations) split(s *Scenario, fs []*big.Rat, parts []ScenarioShare) {
	vus := apportion(s.VUs, fs, nil)
	total := k.total(s)
	var iters []int64
	if k.shared {
		byVU := make([]*big.Rat, len(vus))
		for i, v := range vus {
			byVU[i] = big.NewRat(v, max(s.VUs, 1))
		}
		iters = apportion(total, byVU, nil)
	} else {
		iters = make([]int64, len(vus))
		for i, v := range vus {
			iters[i] = v * s.Iterations
		}
	}
	for i := range parts {
		parts[i].VUs = vus[i]
		parts[i].Arrivals = iters[i]
		parts[i].TotalArrivals = total
	}
}
