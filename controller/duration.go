package controller

import (
	"time"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
)

// noteEnd records when agent a's measurement of the run ended, in the
// controller's clock, from its final snapshot's own end (agents that do not
// send one leave it unknown).
func noteEnd(a *runAgent, s *surgev1.Snapshot, from *agentConn) {
	if a == nil || from == nil || !s.GetFinal() || s.GetEndUnixNs() == 0 {
		return
	}
	a.endNs = max(a.endNs, s.GetEndUnixNs()+from.offset())
}

// measuredDuration is the run's exact duration, for rates: from its start
// to the last agent's end, within the last interval with data. Without an
// agent's end it is the aggregate's: to the end of that interval.
func (r *run) measuredDuration() time.Duration {
	whole := r.agg.MeasuredDuration()
	var end int64
	for _, a := range r.members {
		end = max(end, a.endNs)
	}
	if end == 0 {
		return whole
	}
	// An end outside the last interval is a clock estimate off by more
	// than the interval's rest: keep it inside.
	return min(max(time.Duration(end-r.start.UnixNano()), whole-r.interval), whole)
}
