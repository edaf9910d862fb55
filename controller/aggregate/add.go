package aggregate

import (
	"fmt"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
	"github.com/surgeload/surge/hist"
)

// Add validates s and merges it. A duplicate (agent, seq) is reported as
// Duplicate and not merged again. An invalid snapshot returns an error
// wrapping ErrRejected and changes nothing but the rejected counter.
func (r *Run) Add(s *surgev1.Snapshot) (Outcome, error) {
	a, err := r.validate(s)
	if err != nil {
		return 0, err
	}
	if _, dup := a.seqs[s.GetSeq()]; dup {
		// Not merged again, but refused all the same when invalid.
		if err := hist.ValidateProto(s.GetSeries(), r.cfg.MaxSeries); err != nil {
			return 0, r.reject("%w", err)
		}
		return Duplicate, nil
	}
	ivSet, err := r.mergeSeries(a, s)
	if err != nil {
		return 0, err
	}
	a.seqs[s.GetSeq()] = struct{}{}

	var requests, failures int64
	for _, sr := range s.GetSeries() {
		requests += sr.GetCounters().GetRequests()
		failures += sr.GetCounters().GetFailures()
	}
	target, arrivals := r.addScenarios(a.region, s.GetScenarios())
	g := gaugesOf(s)
	out := MergedLate
	if idx := s.GetInterval(); idx >= r.releasedBelow {
		iv := r.interval(idx)
		if !iv.emitted {
			out = Merged
		}
		if ivSet != nil {
			iv.sets[a.region] = ivSet
			delete(iv.packed, a.region)
		}
		iv.requests[a.region] += requests
		iv.failures[a.region] += failures
		iv.target[s.GetAgentId()] = target
		iv.arrivals[a.region] += arrivals
		if err := r.addToInterval(iv, a.region, s, g); err != nil {
			return 0, err
		}
	}
	if err := r.addWS(r.wholeWS, a.region, s.GetWebsockets(), nil); err != nil {
		return 0, err
	}
	keepLatest(&a.latest, g)
	r.addSaturation(r.saturation(s, a.region))
	r.agentReported(a, s, requests, target)
	if out == MergedLate {
		r.lateMerges++
	}
	return out, nil
}

// mergeSeries merges s's series, checking them in the same pass (one read
// of each histogram's bytes), all or nothing: an invalid snapshot is
// rejected here having changed nothing else. A retained interval's series
// reach the whole run when it is read (wholeSets: one merge of the
// interval's set, where merging every snapshot twice made the whole-run
// merge half of a large fleet's cost); after that, and for released
// intervals, they merge into the whole run here too, which cannot fail once
// the interval's took the same series. It returns the interval's set when
// it made one (Add keeps it), else nil.
func (r *Run) mergeSeries(a *agentState, s *surgev1.Snapshot) (*hist.Set, error) {
	idx := s.GetInterval()
	var made *hist.Set
	toWhole := true
	if idx >= r.releasedBelow {
		iv := r.intervals[idx]
		var ivSet *hist.Set
		if iv != nil {
			ivSet = iv.sets[a.region]
		}
		if ivSet == nil {
			var err error
			if ivSet, err = r.unpack(iv, a.region, idx); err != nil {
				return nil, err
			}
			made = ivSet
		}
		d, err := ivSet.ValidateAndMergeProto(s.GetSeries(), r.cfg.MaxSeries)
		if err != nil {
			if made != nil {
				made.Release()
			}
			return nil, r.reject("%w", err)
		}
		r.droppedValues += d
		toWhole = iv != nil && iv.inWhole
	}
	if toWhole {
		w := r.whole[a.region]
		if w == nil {
			w = hist.NewSet()
		}
		d, err := w.ValidateAndMergeProto(s.GetSeries(), r.cfg.MaxSeries)
		if err != nil { // only when the interval was released: nothing merged
			if made != nil {
				made.Release()
			}
			return nil, r.reject("%w", err)
		}
		r.whole[a.region] = w
		r.droppedValues += d
	}
	return made, nil
}

// unpack returns a new pooled set for region's series of interval idx,
// holding what an emitted interval packed for it (iv may be nil).
func (r *Run) unpack(iv *interval, region string, idx int64) (*hist.Set, error) {
	set := hist.NewPoolSet(r.pool)
	if iv != nil && iv.packed[region] != nil {
		// Encoded by this Run: cannot fail.
		if _, err := set.MergeProto(iv.packed[region]); err != nil {
			set.Release()
			return nil, fmt.Errorf("aggregate: unpack interval %d: %w", idx, err)
		}
	}
	return set, nil
}

// addScenarios adds a snapshot's scenario counters and send lateness into
// the whole run's, returning the agent's target rate and the open-model
// iterations it started.
func (r *Run) addScenarios(region string, scs []*surgev1.ScenarioStats) (target float64, arrivals int64) {
	for _, sc := range scs {
		target += sc.GetTargetRate()
		if sc.GetTargetRate() > 0 || sc.GetScheduled() > 0 { // open model
			arrivals += sc.GetStarted()
		}
		k := scenRegion{sc.GetScenario(), region}
		t := r.scen[k]
		if t == nil {
			t = &scenTotals{}
			r.scen[k] = t
		}
		t.add(sc)
		if l := sc.GetLateness(); l.GetTotal() > 0 {
			if t.lateness == nil {
				t.lateness = hist.New()
			}
			// Validated with the snapshot (validateStats); a failure here
			// would be a bug, and the lateness is a diagnostic: log-free skip.
			_, _ = r.merger.MergeProto(t.lateness, l)
		}
	}
	return target, arrivals
}

// addToInterval adds a snapshot's scenario counters, WebSocket stats and
// gauges into its retained interval iv.
func (r *Run) addToInterval(iv *interval, region string, s *surgev1.Snapshot, g *gauges) error {
	iv.reported[s.GetAgentId()] = true
	scen := iv.scen[region]
	if scen == nil {
		scen = map[string]*scenCounters{}
		iv.scen[region] = scen
	}
	for _, sc := range s.GetScenarios() {
		c := scen[sc.GetScenario()]
		if c == nil {
			c = &scenCounters{}
			scen[sc.GetScenario()] = c
		}
		c.add(sc)
	}
	if err := r.addWS(iv.ws, region, s.GetWebsockets(), r.pool); err != nil {
		return err
	}
	old := iv.gauges[s.GetAgentId()]
	cur := old
	keepLatest(&cur, g)
	if cur != old {
		iv.gauges[s.GetAgentId()] = cur
		r.updatePeaks(iv, region, old, cur)
	}
	return nil
}

// addWS merges WebSocket stats into by[region] (histograms from pool, or
// fresh when nil). They were validated with the snapshot.
func (r *Run) addWS(by map[string]map[WSKey]*WSStats, region string, list []*surgev1.WebSocketStats, pool *hist.Pool) error {
	if len(list) == 0 {
		return nil
	}
	ws := by[region]
	if ws == nil {
		ws = map[WSKey]*WSStats{}
		by[region] = ws
	}
	if err := r.mergeWS(ws, list, pool); err != nil {
		return r.reject("%w", err)
	}
	return nil
}

// agentReported updates agent a's totals for its snapshot s.
func (r *Run) agentReported(a *agentState, s *surgev1.Snapshot, requests int64, target float64) {
	a.requests += requests
	a.snapshots++
	a.targetRate = target
	idx := s.GetInterval()
	if s.GetFinal() {
		if a.finalInterval < 0 && !a.gone {
			r.active--
		}
		a.finalInterval = max(a.finalInterval, idx)
	}
	r.maxSeen = max(r.maxSeen, idx)
}
