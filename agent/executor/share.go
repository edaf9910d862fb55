package executor

import (
	"errors"
	"fmt"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
	"github.com/surgeload/surge/plan"
)

// ValidateShare checks a share against its plan: every scenario exists,
// counts are sane, and ramping-vus shares have one target per stage plus
// the start.
func ValidateShare(p *plan.Plan, share *surgev1.Share) error {
	var errs []error
	seen := make(map[string]bool)
	for _, ss := range share.GetScenarios() {
		name := ss.GetScenario()
		sc := p.Scenarios[name]
		switch {
		case sc == nil:
			errs = append(errs, fmt.Errorf("share: scenario %q is not in the plan", name))
			continue
		case seen[name]:
			errs = append(errs, fmt.Errorf("share: scenario %q appears twice", name))
			continue
		}
		seen[name] = true
		if k, ok := kindOf(sc); ok {
			errs = append(errs, k.checkShare(name, sc, ss)...)
		}
	}
	return errors.Join(errs...)
}

// PeakRate is the most arrivals per second the share plans (the sum of
// every scenario's peak: a conservative bound for staggered scenarios).
func PeakRate(p *plan.Plan, share *surgev1.Share) float64 {
	var r float64
	for _, ss := range share.GetScenarios() {
		sc := p.Scenarios[ss.GetScenario()]
		if sc == nil || !sc.IsArrivalRate() || ss.GetTotalArrivals() <= 0 {
			continue
		}
		r += sc.PeakRate() * float64(ss.GetArrivals()) / float64(ss.GetTotalArrivals())
	}
	return r
}

// PeakVUs is the most VUs the share may run (sum over scenarios).
func PeakVUs(p *plan.Plan, share *surgev1.Share) int64 {
	var n int64
	for _, ss := range share.GetScenarios() {
		sc := p.Scenarios[ss.GetScenario()]
		if sc == nil {
			continue
		}
		if k, ok := kindOf(sc); ok {
			n += k.peakVUs(sc, ss)
		}
	}
	return n
}
