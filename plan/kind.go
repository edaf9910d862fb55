package plan

import (
	"math/big"
	"strings"
	"time"
)

// Family is the runtime that runs an executor kind on an agent.
type Family int

// The executor families: open model, VU curve, fixed iterations.
const (
	ArrivalRateFamily Family = iota + 1
	VUsFamily
	IterationsFamily
)

// Kind is what differs between executor kinds in a plan. Every kind is a
// row of kinds; the methods are pure functions of the scenario.
type Kind interface {
	// Name is the executor's name in a plan.
	Name() string
	// Family is the agent runtime that runs the kind.
	Family() Family
	// Options are the scenario keys the kind takes beyond the common ones.
	Options() []string
	// check applies the defaults of the kind's options to s and adds every
	// problem with them to l.
	check(l *errorList, path string, s *Scenario)
	// length is the scenario's own duration, without start_time and
	// graceful_stop.
	length(s *Scenario) time.Duration
	// segments is the number of linear pieces of the scenario's curve; segment
	// returns piece i: its length in seconds and its values at both ends
	// (arrivals per second, or VUs).
	segments(s *Scenario) int
	segment(s *Scenario, i int) (secs, from, to float64)
	// split sets each agent's counts in parts; fs are the agents' fractions.
	split(s *Scenario, fs []*big.Rat, parts []ScenarioShare)
	// peakVUs is the most VUs the scenario may run.
	peakVUs(s *Scenario) int64
}

// kinds is the table of executor kinds, in the order errors list them;
// never mutated.
var kinds = []Kind{
	arrivalRate{name: ConstantArrivalRate},
	arrivalRate{name: RampingArrivalRate, ramping: true},
	vus{name: ConstantVUs},
	vus{name: RampingVUs, ramping: true},
	iterations{name: PerVUIterations},
	iterations{name: SharedIterations, shared: true},
}

// kindOptions are the scenario keys that only some kinds take.
var kindOptions = []string{
	"rate", "start_rate", "time_unit", "pre_allocated_vus", "max_vus",
	"vus", "start_vus", "duration", "stages", "iterations", "max_duration",
	"graceful_ramp_down", "arrivals",
}

// KindOf returns the executor kind named name.
func KindOf(name string) (Kind, bool) {
	for _, k := range kinds {
		if k.Name() == name {
			return k, true
		}
	}
	return nil, false
}

// Kind is the scenario's executor kind; nil for an unknown executor.
func (s *Scenario) Kind() Kind {
	k, _ := KindOf(s.Executor)
	return k
}

func kindNames() string {
	names := make([]string, len(kinds))
	for i, k := range kinds {
		names[i] = k.Name()
	}
	return strings.Join(names, ", ")
}

func takes(k Kind, option string) bool {
	for _, o := range k.Options() {
		if o == option {
			return true
		}
	}
	return false
}

// stagesLength is the sum of the stages' durations.
func stagesLength(s *Scenario) time.Duration {
	var d time.Duration
	for _, st := range s.Stages {
		d += st.Duration.D()
	}
	return d
}

// stageSegment is stage i of a curve that starts at start.
func stageSegment(s *Scenario, i int, start float64) (secs, from, to float64) {
	from = start
	if i > 0 {
		from = s.Stages[i-1].Target
	}
	st := s.Stages[i]
	return st.Duration.D().Seconds(), from, st.Target
}

// splitVUs gives each agent its part of vus by largest remainder.
func splitVUs(vus int64, fs []*big.Rat, parts []ScenarioShare) {
	for k, v := range apportion(vus, fs, nil) {
		parts[k].VUs = v
	}
}
