package hist

import (
	"fmt"
	"slices"
	"strings"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
)

// MaxChecks bounds the checks of one series on the wire. Check names come
// from the plan (a request's check keys), so a series has a handful.
const MaxChecks = 256

// Check is one check's passes and fails within a series.
type Check struct {
	Name          string
	Passes, Fails int64
}

// AddCheck adds passes and fails to the series' check name and to its
// checks_passed and checks_failed counters, so that the two agree.
func (s *Series) AddCheck(name string, passes, fails int64) {
	c := s.check(name)
	c.Passes += passes
	c.Fails += fails
	s.Counters.ChecksPassed += passes
	s.Counters.ChecksFailed += fails
}

// check returns the series' check name, adding it in name order if needed.
func (s *Series) check(name string) *Check {
	var c *Check
	s.Checks, c = checkIn(s.Checks, name)
	return c
}

// checkIn returns cs's check name, adding it in name order if needed.
func checkIn(cs []Check, name string) ([]Check, *Check) {
	i, ok := slices.BinarySearchFunc(cs, name, func(c Check, n string) int { return strings.Compare(c.Name, n) })
	if !ok {
		cs = slices.Insert(cs, i, Check{Name: name})
	}
	return cs, &cs[i]
}

// addChecks adds checks cs into the series' checks, not into its counters
// (those add up with the rest of them).
func (s *Series) addChecks(cs []Check) {
	s.Checks = AddChecks(s.Checks, cs)
}

// AddChecks adds checks from into into by name, keeping into sorted.
func AddChecks(into, from []Check) []Check {
	for _, o := range from {
		var c *Check
		into, c = checkIn(into, o.Name)
		c.Passes += o.Passes
		c.Fails += o.Fails
	}
	return into
}

// ChecksProto is cs's wire form, leaving out checks with no counts (a
// recycled series' of a check not made this interval).
func ChecksProto(cs []Check) []*surgev1.CheckStats {
	var out []*surgev1.CheckStats
	for _, c := range cs {
		if c.Passes != 0 || c.Fails != 0 {
			out = append(out, &surgev1.CheckStats{Name: c.Name, Passes: c.Passes, Fails: c.Fails})
		}
	}
	return out
}

// addChecksProto adds validated wire checks into the series' checks.
func (s *Series) addChecksProto(ps []*surgev1.CheckStats) {
	for _, p := range ps {
		c := s.check(p.GetName())
		c.Passes += p.GetPasses()
		c.Fails += p.GetFails()
	}
}

// validChecks checks wire series p's checks: at most MaxChecks, named,
// sorted without duplicates, and, when there are any, with passes and
// fails that add up to the counters' checks_passed and checks_failed.
func validChecks(p *surgev1.Series) error {
	cs := p.GetChecks()
	if len(cs) == 0 {
		return nil
	}
	if len(cs) > MaxChecks {
		return fmt.Errorf("%w: %d checks, at most %d", ErrInvalid, len(cs), MaxChecks)
	}
	passed, failed := p.GetCounters().GetChecksPassed(), p.GetCounters().GetChecksFailed()
	for i, c := range cs {
		switch {
		case c.GetName() == "":
			return fmt.Errorf("%w: check %d has no name", ErrInvalid, i)
		case i > 0 && c.GetName() <= cs[i-1].GetName():
			return fmt.Errorf("%w: check %q out of order or repeated", ErrInvalid, c.GetName())
		case c.GetPasses() < 0 || c.GetFails() < 0:
			return fmt.Errorf("%w: check %q: negative count", ErrInvalid, c.GetName())
		case c.GetPasses() > passed || c.GetFails() > failed:
			return fmt.Errorf("%w: checks up to %q add up to more than the series' %d passed, %d failed", ErrInvalid,
				c.GetName(), p.GetCounters().GetChecksPassed(), p.GetCounters().GetChecksFailed())
		}
		passed -= c.GetPasses()
		failed -= c.GetFails()
	}
	if passed != 0 || failed != 0 {
		return fmt.Errorf("%w: checks add up to %d passed, %d failed, not the series' %d and %d", ErrInvalid,
			p.GetCounters().GetChecksPassed()-passed, p.GetCounters().GetChecksFailed()-failed,
			p.GetCounters().GetChecksPassed(), p.GetCounters().GetChecksFailed())
	}
	return nil
}
