package controller

import (
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
)

// lossAccount is what the controller knows of one agent's open-model
// arrivals, to count what a lost agent left unsent: the arrivals it
// reported handled (sent or dropped) per scenario, and once it is lost the
// instant up to which its share was its own.
type lossAccount struct {
	// handled: started + dropped per scenario, from its merged snapshots
	// (those of a fenced agent only up to the interval it was lost in: later
	// ones hold arrivals of the agents that took its share over).
	handled map[string]int64
	// left: it was lost mid-run with work left. Its arrivals due before
	// until (from the run's start) were its own; open: up to the run's end
	// (on_agent_loss continue, or no agent to take its share).
	left   bool
	until  time.Duration
	open   bool
	window time.Duration // stream lost -> reshared; 0 unknown
}

// account adds a merged snapshot of a to its handled arrivals.
func (r *run) account(a *runAgent, s *surgev1.Snapshot) {
	if a == nil || (a.lost && s.GetInterval() > a.lostAt) {
		return
	}
	for _, sc := range s.GetScenarios() {
		if n := sc.GetStarted() + sc.GetDropped(); n > 0 {
			if a.loss.handled == nil {
				a.loss.handled = map[string]int64{}
			}
			a.loss.handled[sc.GetScenario()] += n
		}
	}
}

// lossDeficit returns, per scenario, the arrivals of lost agent a's parts
// due before its loss (open: before now) that it never reported sent or
// dropped: the ones due between its last report and the reshare, which
// nobody sent. It is an upper bound when the agent was killed: what it
// sent in its last, unreported interval is counted here too.
func (r *run) lossDeficit(a *runAgent, now time.Time) map[string]int64 {
	if !a.loss.left {
		return nil
	}
	until := a.loss.until
	if a.loss.open {
		until = max(until, now.Sub(r.start))
	}
	due := map[string]int64{}
	for _, ss := range append(slices.Clone(a.share.GetScenarios()), a.takeovers...) {
		sc := r.plan.Scenarios[ss.GetScenario()]
		if sc == nil || !sc.IsArrivalRate() {
			continue
		}
		due[ss.GetScenario()] += partDueBy(sc, ss, until-sc.StartTime.D())
	}
	gaps := map[string]int64{}
	for name, n := range due {
		if gap := n - a.loss.handled[name]; gap > 0 {
			gaps[name] = gap
		}
	}
	return gaps
}

// addLossDeficit adds the arrivals lost agents left unsent (lossDeficit) to
// the deficit of their scenarios, their region and the run, with a note
// for each agent.
func (r *run) addLossDeficit(sum *surgev1.RunSummary, now time.Time) {
	for _, id := range r.order {
		a := r.members[id]
		gaps := r.lossDeficit(a, now)
		if len(gaps) == 0 {
			continue
		}
		var total int64
		var per []string
		for _, name := range slices.Sorted(maps.Keys(gaps)) {
			n := gaps[name]
			total += n
			per = append(per, fmt.Sprintf("%s %d", name, n))
			statsIn(sum.Scenarios, name).Deficit += n
		}
		statsIn(sum.Regions, a.region).Deficit += total
		if sum.All == nil {
			sum.All = &surgev1.Stats{}
		}
		sum.All.Deficit += total
		by := fmt.Sprintf("by its loss %s into the run", a.loss.until.Round(time.Millisecond))
		if a.loss.open {
			by = "from its loss to the end, with nobody to take them over"
		}
		sum.Notes = append(sum.Notes, fmt.Sprintf("deficit %d: arrivals of lost agent %s (%s) due %s that it never reported sent or dropped (%s)",
			total, a.id, a.region, by, strings.Join(per, ", ")))
	}
}

// statsIn returns m[k], creating it.
func statsIn(m map[string]*surgev1.Stats, k string) *surgev1.Stats {
	st := m[k]
	if st == nil {
		st = &surgev1.Stats{}
		m[k] = st
	}
	return st
}

// refusePart handles a survivor's refusal of a takeover part (over its caps
// or allow-list): nobody sends the part's arrivals, so they count as the
// scenario's deficit in the summary, with a note. The part leaves the
// agent's takeovers, so a later reshare does not hand it on (or count it)
// twice. VU parts have no arrivals to count; the note says so.
func (r *run) refusePart(a *runAgent, partID, msg string) {
	var kept []*surgev1.ScenarioShare
	var arrivals int64
	var scenarios []string
	for _, ss := range a.takeovers {
		if ss.GetPartId() != partID {
			kept = append(kept, ss)
			continue
		}
		scenarios = append(scenarios, ss.GetScenario())
		if n := progressionLen(ss); n > 0 {
			if r.refused == nil {
				r.refused = map[[2]string]int64{}
			}
			r.refused[[2]string{ss.GetScenario(), a.region}] += n
			arrivals += n
		}
	}
	if len(scenarios) == 0 {
		r.log.Warn("refusal of a takeover part the agent does not have", slog.String("agent", a.id), slog.String("part", partID))
		return
	}
	a.takeovers = kept
	r.persist()
	r.note("agent %s (%s) refused takeover part %s (%s): %s; its %d arrivals are deficit",
		a.id, a.region, partID, strings.Join(scenarios, ", "), msg, arrivals)
}

// progressionLen is how many arrivals a takeover part sends: those of its
// progression first, first+stride, ... below arrivals.
func progressionLen(ss *surgev1.ScenarioShare) int64 {
	first, stride, n := max(ss.GetArrivalFirst(), 0), max(ss.GetArrivalStride(), 1), ss.GetArrivals()
	if n <= first {
		return 0
	}
	return (n - first + stride - 1) / stride
}

// addRefusedDeficit adds the arrivals of refused takeover parts to the
// summary's deficit.
func (r *run) addRefusedDeficit(sum *surgev1.RunSummary) {
	for k, n := range r.refused {
		statsIn(sum.Scenarios, k[0]).Deficit += n
		statsIn(sum.Regions, k[1]).Deficit += n
		if sum.All == nil {
			sum.All = &surgev1.Stats{}
		}
		sum.All.Deficit += n
	}
}
