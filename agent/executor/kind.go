package executor

import (
	"context"
	"time"

	"github.com/surgeload/surge/plan"
)

// kind is what differs between the executor families on an agent: how a
// share runs, what makes a share sane, and the most VUs it may run. Every
// plan.Family is a row of kinds; a new family is a row here and a file
// kind_<family>.go implementing these three methods.
type kind interface {
	// run runs s's share from start until its schedule and graceful stop
	// end or ctx ends (see Scenario.Run); it blocks until every goroutine
	// it started has returned.
	run(ctx context.Context, s *Scenario, start time.Time) error
	// checkShare returns the problems of ss, a share of the scenario sc
	// named name; it does not block.
	checkShare(name string, sc *plan.Scenario, ss plan.ScenarioShare) []error
	// peakVUs is the most VUs ss, a share of sc, may run; it does not block.
	peakVUs(sc *plan.Scenario, ss plan.ScenarioShare) int64
}

// kinds is the agent's runtime of each executor family; never mutated.
var kinds = map[plan.Family]kind{
	plan.ArrivalRateFamily: arrivalRate{},
	plan.VUsFamily:         vus{},
	plan.IterationsFamily:  iterations{},
}

// kindOf returns the runtime of sc's executor; false for an unknown one.
func kindOf(sc *plan.Scenario) (kind, bool) {
	pk := sc.Kind()
	if pk == nil {
		return nil, false
	}
	k, ok := kinds[pk.Family()]
	return k, ok
}
