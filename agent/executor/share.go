package executor

import (
	"errors"
	"fmt"

	"github.com/surgeload/surge/plan"
)

// ValidateShare checks a share against its plan: every scenario exists,
// counts are sane, and ramping-vus shares have one target per stage plus
// the start.
func ValidateShare(p *plan.Plan, share plan.Share) error {
	var errs []error
	seen := make(map[string]bool)
	for _, ss := range share.Scenarios {
		name := ss.Scenario
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

// PeakVUs is the most VUs the share may run (sum over scenarios).
func PeakVUs(p *plan.Plan, share plan.Share) int64 {
	var n int64
	for _, ss := range share.Scenarios {
		sc := p.Scenarios[ss.Scenario]
		if sc == nil {
			continue
		}
		if k, ok := kindOf(sc); ok {
			n += k.peakVUs(sc, ss)
		}
	}
	return n
}
