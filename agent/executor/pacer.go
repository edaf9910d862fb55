package executor

import (
	"sort"
	"time"

	"github.com/surgeload/surge/plan"
)

// Pacer decides when arrivals are due. Arrival processes (uniform along the
// plan's rate curve, and later poisson, on-off, mmpp) are Pacers; the
// arrival-rate executor does not know which.
type Pacer interface {
	// Next returns when arrival n (0-based) is due, as an offset from the
	// scenario's start, or stop = true when there is no arrival n. It is
	// called with n = 0, 1, 2, ... in order, so a pacer may keep state.
	Next(n int64) (due time.Duration, stop bool)
	// Rate is the planned arrival rate, per second, at elapsed.
	Rate(elapsed time.Duration) float64
}

// DueCounter is implemented by pacers that can count the arrivals due
// by an offset (at or before it); it makes the scheduled count of each interval exact.
type DueCounter interface {
	DueBy(elapsed time.Duration) int64
}

// SchedulePacer spreads an agent's share of a scenario's arrivals along the
// plan's rate curve: of the scenario's total arrivals N, this agent sends
// arrivals A, and its arrival j is due at TimeOfArrival((j+0.5)·N/A).
type SchedulePacer struct {
	s               *plan.Scenario
	arrivals, total int64
}

var (
	_ Pacer      = (*SchedulePacer)(nil)
	_ DueCounter = (*SchedulePacer)(nil)
)

// NewSchedulePacer returns the pacer for arrivals of total along s.
func NewSchedulePacer(s *plan.Scenario, arrivals, total int64) *SchedulePacer {
	if total <= 0 || arrivals <= 0 {
		arrivals, total = 0, 1
	}
	return &SchedulePacer{s: s, arrivals: arrivals, total: total}
}

// Next implements Pacer.
func (p *SchedulePacer) Next(n int64) (time.Duration, bool) {
	if n < 0 || n >= p.arrivals {
		return 0, true
	}
	return p.s.TimeOfArrival((float64(n) + 0.5) * float64(p.total) / float64(p.arrivals)), false
}

// Rate implements Pacer: the plan's rate scaled to this agent's share.
func (p *SchedulePacer) Rate(elapsed time.Duration) float64 {
	return p.s.RateAt(elapsed) * float64(p.arrivals) / float64(p.total)
}

// DueBy is the number of arrivals due at or before elapsed.
func (p *SchedulePacer) DueBy(elapsed time.Duration) int64 {
	return int64(sort.Search(int(p.arrivals), func(j int) bool {
		due, _ := p.Next(int64(j))
		return due > elapsed
	}))
}
