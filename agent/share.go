package agent

import (
	"fmt"
	"math/big"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
	"github.com/surgeload/surge/plan"
)

// The agent's edge between shares on the wire and the executor's: an
// Assign carries surgev1.ScenarioShare, the executor runs
// plan.ScenarioShare. Everything past check and takeovers uses the latter.

// shareFromProto converts a share's wire scenario shares.
func shareFromProto(list []*surgev1.ScenarioShare) (plan.Share, error) {
	out := plan.Share{Scenarios: make([]plan.ScenarioShare, 0, len(list))}
	for _, ss := range list {
		s, err := scenarioShareFromProto(ss)
		if err != nil {
			return plan.Share{}, err
		}
		out.Scenarios = append(out.Scenarios, s)
	}
	return out, nil
}

// scenarioShareFromProto converts one wire scenario share; a segment bound
// that is not a fraction is an error naming the scenario.
func scenarioShareFromProto(ss *surgev1.ScenarioShare) (plan.ScenarioShare, error) {
	from, err := segmentBound(ss.GetSegmentFrom())
	if err != nil {
		return plan.ScenarioShare{}, fmt.Errorf("share: scenario %q: segment_from: %w", ss.GetScenario(), err)
	}
	to, err := segmentBound(ss.GetSegmentTo())
	if err != nil {
		return plan.ScenarioShare{}, fmt.Errorf("share: scenario %q: segment_to: %w", ss.GetScenario(), err)
	}
	return plan.ScenarioShare{
		Scenario: ss.GetScenario(), From: from, To: to,
		Arrivals: ss.GetArrivals(), TotalArrivals: ss.GetTotalArrivals(),
		PreAllocVUs: ss.GetPreAllocatedVus(), MaxVUs: ss.GetMaxVus(),
		VUs: ss.GetVus(), StageTargets: ss.GetStageTargets(),
		ArrivalFirst: ss.GetArrivalFirst(), ArrivalStride: ss.GetArrivalStride(),
	}, nil
}

// segmentBound reads a segment bound ("1/3"); nil when the wire has none
// (a takeover part).
func segmentBound(s string) (*big.Rat, error) {
	if s == "" {
		return nil, nil
	}
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return nil, fmt.Errorf("%q is not a fraction", s)
	}
	return r, nil
}
