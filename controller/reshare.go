package controller

import (
	"fmt"
	"sort"
	"time"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
	"github.com/surgeload/surge/plan"
)

// Agent-loss policies (the plan's on_agent_loss).
const (
	OnLossReshare  = "reshare"
	OnLossContinue = "continue"
	OnLossAbort    = "abort"
)

// arrivalDue is when arrival j of a share of a arrivals out of n is due, from
// the scenario's start: the agents' schedule (agent/executor SchedulePacer).
func arrivalDue(sc *plan.Scenario, j, a, n int64) time.Duration {
	return sc.TimeOfArrival((float64(j) + 0.5) * float64(n) / float64(a))
}

// partDueBy counts the arrivals of an arrival-rate part (its progression
// first, first+stride, ... below arrivals) due by se after the scenario's
// start: the arrivals that were the part's holder's own until se. Zero for
// other parts.
func partDueBy(sc *plan.Scenario, ss *surgev1.ScenarioShare, se time.Duration) int64 {
	a, total := ss.GetArrivals(), ss.GetTotalArrivals()
	first, stride := max(ss.GetArrivalFirst(), 0), max(ss.GetArrivalStride(), 1)
	if !sc.IsArrivalRate() || a <= 0 || total <= 0 || first >= a || se < 0 {
		return 0
	}
	count := (a - first + stride - 1) / stride
	return int64(sort.Search(int(count), func(m int) bool {
		return arrivalDue(sc, first+int64(m)*stride, a, total) > se
	}))
}

// splitCount divides v into k parts by largest remainder: part i gets
// v/k, plus one for the first v%k parts.
func splitCount(v int64, k, i int) int64 {
	q, r := v/int64(k), v%int64(k)
	if int64(i) < r {
		return q + 1
	}
	return q
}

// reshareParts divides what is left of a lost agent's parts, elapsed after
// the run's start, among k survivors. Arrival-rate parts become interleaved
// progressions of the arrivals not yet due (so the survivors together send
// exactly the arrivals the lost agent had left, each at its planned time);
// VU parts split their VUs per stage by largest remainder and start now.
// Parts whose scenario has ended are dropped. Every new part is named
// "e<epoch>/<from>/<n>" so an agent recognises a part it already runs.
func reshareParts(p *plan.Plan, parts []*surgev1.ScenarioShare, from string, epoch uint64, elapsed time.Duration, k int) [][]*surgev1.ScenarioShare {
	out := make([][]*surgev1.ScenarioShare, k)
	if k <= 0 {
		return out
	}
	for n, ss := range parts {
		sc := p.Scenarios[ss.GetScenario()]
		if sc == nil || sc.Kind() == nil {
			continue
		}
		se := elapsed - sc.StartTime.D()
		if se >= sc.Length() {
			continue
		}
		id := fmt.Sprintf("e%d/%s/%d", epoch, from, n)
		for i := range k {
			np := &surgev1.ScenarioShare{Scenario: ss.GetScenario(), PartId: id, FromAgent: from}
			var ok bool
			switch sc.Kind().Family() {
			case plan.ArrivalRateFamily:
				ok = reshareArrivals(np, sc, ss, se, k, i)
			case plan.VUsFamily:
				ok = reshareVUs(np, ss, k, i)
			}
			if !ok {
				continue // iterations are not reshared, or nothing is left for survivor i
			}
			out[i] = append(out[i], np)
		}
	}
	return out
}

// reshareArrivals makes np survivor i of k's progression of the arrivals
// of lost part ss not yet due se into the scenario; false when none is left.
func reshareArrivals(np *surgev1.ScenarioShare, sc *plan.Scenario, ss *surgev1.ScenarioShare, se time.Duration, k, i int) bool {
	a, total := ss.GetArrivals(), ss.GetTotalArrivals()
	first, stride := max(ss.GetArrivalFirst(), 0), max(ss.GetArrivalStride(), 1)
	if a <= 0 || total <= 0 || first >= a {
		return false
	}
	f := first + (partDueBy(sc, ss, se)+int64(i))*stride
	if f >= a {
		return false
	}
	np.Arrivals, np.TotalArrivals = a, total
	np.ArrivalFirst, np.ArrivalStride = f, stride*int64(k)
	np.PreAllocatedVus = (ss.GetPreAllocatedVus() + int64(k) - 1) / int64(k)
	np.MaxVus = (ss.GetMaxVus() + int64(k) - 1) / int64(k)
	return true
}

// reshareVUs gives np survivor i of k's part of lost part ss's VUs (a
// constant count, or each stage's target) by largest remainder; false when
// it gets none.
func reshareVUs(np *surgev1.ScenarioShare, ss *surgev1.ScenarioShare, k, i int) bool {
	if len(ss.GetStageTargets()) == 0 {
		np.Vus = splitCount(ss.GetVus(), k, i)
		return np.Vus > 0
	}
	var some bool
	for _, t := range ss.GetStageTargets() {
		v := splitCount(t, k, i)
		np.StageTargets = append(np.StageTargets, v)
		some = some || v > 0
	}
	return some
}
