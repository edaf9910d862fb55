// Package aggregate merges one run's agent snapshots exactly: per interval
// and region, per region over the whole run, per agent and per scenario. It
// validates every snapshot before merging, is idempotent by (agent, seq),
// decides when an interval can be emitted, evaluates thresholds on the
// merged data and builds the run summary.
//
// A Run is plain state with no goroutines and no I/O; it is not safe for
// concurrent use: the controller's per-run goroutine owns it.
package aggregate

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
	"github.com/surgeload/surge/hist"
	"github.com/surgeload/surge/plan"
)

// Defaults for Config fields left zero.
const (
	DefaultMaxSeries    = 10_000
	DefaultMaxScenarios = 1_000
	DefaultRetain       = 5

	// poolHists bounds the histograms (and, apart, the merge buffers) a
	// run keeps for reuse between its intervals: enough for the sets one
	// interval releases in a run of a few regions and series (16 series
	// of 4 histograms), at most 11 MB of histograms and 6 MB of buffers
	// held; a run releasing more per interval leaves the rest to the
	// garbage collector.
	poolHists = 64
)

// RegionAll names the all-regions aggregate in progress updates.
const RegionAll = "all"

// ErrRejected marks a snapshot that failed validation; nothing of it was
// merged.
var ErrRejected = errors.New("snapshot rejected")

// Config describes one run to aggregate.
type Config struct {
	RunID string
	// Start is the run's start in the controller's clock; interval i covers
	// [Start + i*Interval, Start + (i+1)*Interval).
	Start    time.Time
	Interval time.Duration
	// MaxInterval is the highest interval index accepted.
	MaxInterval int64
	// Epoch is the share epoch snapshots must carry.
	Epoch uint64
	// Agents maps the run's agent ids to their regions.
	Agents map[string]string
	// MaxSeries bounds the series in one snapshot (DefaultMaxSeries).
	MaxSeries int
	// MaxScenarios bounds the scenario stats in one snapshot.
	MaxScenarios int
	// MaxWebSockets bounds the WebSocket stats in one snapshot
	// (DefaultMaxWebSockets).
	MaxWebSockets int
	// Retain is how many emitted intervals keep their histograms so late
	// snapshots still merge into them (DefaultRetain). Older intervals are
	// released; late snapshots for them merge into the whole run only.
	Retain int
	// Thresholds are evaluated by Evaluate.
	Thresholds []plan.ThresholdSpec
	// Saturation bounds generator honesty; zero fields take the plan's
	// defaults.
	Saturation plan.Saturation
}

// Outcome tells what Add did with a valid snapshot.
type Outcome int

const (
	// Merged: merged into its interval (still pending) and the whole run.
	Merged Outcome = iota
	// MergedLate: its interval had been emitted already; merged into the
	// interval (if still retained) and the whole run.
	MergedLate
	// Duplicate: the (agent, seq) was merged before; nothing changed.
	Duplicate
)

type agentState struct {
	region    string
	seqs      map[uint64]struct{}
	requests  int64
	snapshots int64
	// finalInterval is the interval of the agent's final snapshot, -1 until
	// it arrives.
	finalInterval int64
	gone          bool
	targetRate    float64
	// latest are the gauges of its latest snapshot.
	latest *gauges
}

type interval struct {
	sets map[string]*hist.Set // by region; nil once released
	// packed holds an emitted interval's sets encoded, by region, in
	// place of its sets (IntervalSeries packs them): their histograms
	// went back to the pool, about 280 KB each where the encoded series
	// take a few KB. A late snapshot unpacks its region's set again.
	packed   map[string][]*surgev1.Series
	requests map[string]int64
	failures map[string]int64
	reported map[string]bool    // by agent
	target   map[string]float64 // by agent: sum of its scenarios' target_rate
	arrivals map[string]int64   // by region: open-model iterations started
	// scen and ws are the merged scenario counters and WebSocket stats by
	// region; gauges are each agent's latest gauges in this interval.
	scen   map[string]map[string]*scenCounters
	ws     map[string]map[WSKey]*WSStats
	gauges map[string]*gauges
	// connSums, wsSums and vuSums (busy VUs) are the gauges summed over
	// agents, by peak key (updatePeaks).
	connSums map[peakKey]int64
	wsSums   map[wsPeakKey]int64
	vuSums   map[peakKey]int64
	emitted  bool
	// inWhole: sets were folded into the whole run (wholeSets); from then
	// on its snapshots merge into both.
	inWhole bool
}

type scenRegion struct{ scenario, region string }

// scratch holds histograms that are filled, read and reset within one
// call, kept from one interval to the next: a long run allocates none per
// interval. Each is Reset before use; nil until first needed.
type scratch struct {
	all, region   *hdrhistogram.Histogram // Emit: latency over all regions, one region's
	allLate, late *hdrhistogram.Histogram // Emit (setLive): send lateness
	merged        *hist.Series            // Evaluate (merged)
	ws            *WSStats                // Evaluate (wsTotals)
	enc           hist.Encoder            // IntervalSeries
}

// reset returns *h reset, creating it on first use.
func reset(h **hdrhistogram.Histogram) *hdrhistogram.Histogram {
	if *h == nil {
		*h = hist.New()
	} else {
		(*h).Reset()
	}
	return *h
}

type scenTotals struct {
	scenCounters
	// lateness is the whole run's send lateness (open model), nil until
	// a snapshot brings one.
	lateness *hdrhistogram.Histogram
}

// Run is one run's aggregation state.
type Run struct {
	cfg       Config
	agents    map[string]*agentState
	intervals map[int64]*interval
	// whole is the whole run's series by region, but for the retained
	// intervals not yet inWhole: read it through wholeSets.
	whole   map[string]*hist.Set
	scen    map[scenRegion]*scenTotals
	wholeWS map[string]map[WSKey]*WSStats // by region
	// peakConns, peakWS and peakVUs are the most connections open, sessions
	// active and VUs busy at an interval's end (summed over agents).
	peakConns map[peakKey]int64
	peakWS    map[wsPeakKey]int64
	peakVUs   map[peakKey]int64
	merger    hist.Merger
	late      *hdrhistogram.PackedHistogram // saturation's scratch
	// pool holds the histograms and merge buffers of released intervals
	// for the intervals that follow: a long run's interval sets reuse
	// them instead of allocating 184 KB per histogram per interval.
	pool *hist.Pool
	// scratch is Emit's, Evaluate's and IntervalSeries' reused space.
	scratch scratch
	// releasedBelow: intervals below it no longer keep histograms.
	releasedBelow int64
	nextEmit      int64
	// active counts the agents neither gone nor finished (final sent).
	active  int
	maxSeen int64 // highest interval index merged, -1 before any

	lateMerges    int64
	rejected      int64
	droppedValues int64

	saturationFlags    []*surgev1.SaturationFlag
	saturatedIntervals map[int64]bool
	// monitors are the plan's monitors' values by name (monitors.go).
	monitors map[string]*monitor
}

// New returns an empty aggregation for cfg.
func New(cfg Config) *Run {
	if cfg.MaxSeries <= 0 {
		cfg.MaxSeries = DefaultMaxSeries
	}
	if cfg.MaxScenarios <= 0 {
		cfg.MaxScenarios = DefaultMaxScenarios
	}
	if cfg.MaxWebSockets <= 0 {
		cfg.MaxWebSockets = DefaultMaxWebSockets
	}
	if cfg.Retain <= 0 {
		cfg.Retain = DefaultRetain
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	r := &Run{
		cfg:       cfg,
		agents:    make(map[string]*agentState, len(cfg.Agents)),
		intervals: map[int64]*interval{},
		whole:     map[string]*hist.Set{},
		scen:      map[scenRegion]*scenTotals{},
		wholeWS:   map[string]map[WSKey]*WSStats{},
		peakConns: map[peakKey]int64{},
		peakWS:    map[wsPeakKey]int64{},
		peakVUs:   map[peakKey]int64{},
		pool:      hist.NewPool(poolHists),
		maxSeen:   -1,

		saturatedIntervals: map[int64]bool{},
	}
	for id, region := range cfg.Agents {
		r.agents[id] = &agentState{region: region, seqs: map[uint64]struct{}{}, finalInterval: -1}
	}
	r.active = len(r.agents)
	return r
}

// Counters reports how many snapshots were merged late, rejected, and how
// many histogram values merges dropped.
func (r *Run) Counters() (late, rejected, droppedValues int64) {
	return r.lateMerges, r.rejected, r.droppedValues
}

// reject counts a rejected snapshot and returns ErrRejected with format
// and args; a %w in format keeps its cause.
func (r *Run) reject(format string, args ...any) error {
	r.rejected++
	return fmt.Errorf("%w: "+format, append([]any{ErrRejected}, args...)...)
}

func finiteNonNeg(v float64) bool { return v >= 0 && !math.IsInf(v, 0) }

// validate checks s without changing anything.
func (r *Run) validate(s *surgev1.Snapshot) (*agentState, error) {
	if s.GetRunId() != r.cfg.RunID {
		return nil, r.reject("run %q, this is run %q", s.GetRunId(), r.cfg.RunID)
	}
	a, ok := r.agents[s.GetAgentId()]
	if !ok {
		return nil, r.reject("agent %q is not part of run %s", s.GetAgentId(), r.cfg.RunID)
	}
	if s.GetEpoch() != r.cfg.Epoch {
		return nil, r.reject("epoch %d, current epoch is %d", s.GetEpoch(), r.cfg.Epoch)
	}
	if s.GetSeq() == 0 {
		return nil, r.reject("seq 0 (sequence numbers start at 1)")
	}
	if iv := s.GetInterval(); iv < 0 || iv > r.cfg.MaxInterval {
		return nil, r.reject("interval %d outside [0, %d]", iv, r.cfg.MaxInterval)
	}
	// The series are checked as they are merged (Add), all or nothing.
	if err := r.validateStats(s); err != nil {
		return nil, r.reject("%w", err)
	}
	if st := s.GetAgent(); st != nil && !finiteNonNeg(st.GetCpuPercent()) {
		return nil, r.reject("agent cpu %v", st.GetCpuPercent())
	}
	return a, nil
}

func (r *Run) interval(idx int64) *interval {
	iv := r.intervals[idx]
	if iv == nil {
		iv = &interval{
			sets:     map[string]*hist.Set{},
			requests: map[string]int64{},
			failures: map[string]int64{},
			reported: map[string]bool{},
			target:   map[string]float64{},
			arrivals: map[string]int64{},
			scen:     map[string]map[string]*scenCounters{},
			ws:       map[string]map[WSKey]*WSStats{},
			gauges:   map[string]*gauges{},
		}
		r.intervals[idx] = iv
	}
	return iv
}

// MarkGone stops waiting for agent id: it was lost, failed or finished
// without a final snapshot.
func (r *Run) MarkGone(id string) {
	if a := r.agents[id]; a != nil {
		if !a.gone && a.finalInterval < 0 {
			r.active--
		}
		a.gone = true
	}
}

// Done reports whether agent id sent its final snapshot or is gone.
func (r *Run) Done(id string) bool {
	a := r.agents[id]
	return a == nil || a.gone || a.finalInterval >= 0
}

// AllDone reports whether every agent is Done.
func (r *Run) AllDone() bool {
	for id := range r.agents {
		if !r.Done(id) {
			return false
		}
	}
	return true
}

// Snapshots returns how many snapshots agent id had merged.
func (r *Run) Snapshots(id string) int64 {
	if a := r.agents[id]; a != nil {
		return a.snapshots
	}
	return 0
}

// intervalEnd is when interval i ends in the controller's clock.
func (r *Run) intervalEnd(i int64) time.Time {
	return r.cfg.Start.Add(time.Duration(i+1) * r.cfg.Interval)
}

// ready reports whether interval i can be emitted at now: every agent still
// expected has reported it, or grace has passed since it ended.
func (r *Run) ready(i int64, now time.Time, grace time.Duration) bool {
	if i > r.cfg.MaxInterval {
		return false
	}
	if !now.Before(r.intervalEnd(i).Add(grace)) {
		return true
	}
	iv := r.intervals[i]
	// Every active agent must have reported i: fewer reports than active
	// agents is a quick no, the usual answer while an interval fills up
	// (the loop below costs a lookup per agent, per snapshot).
	if r.active > 0 && (iv == nil || len(iv.reported) < r.active) {
		return false
	}
	expected := 0
	for id, a := range r.agents {
		if a.gone || (a.finalInterval >= 0 && a.finalInterval < i) {
			continue
		}
		expected++
		if iv == nil || !iv.reported[id] {
			return false
		}
	}
	// With nobody left to report, only intervals that have data are due.
	return expected > 0 || i <= r.maxSeen
}

// Ready returns the intervals that can be emitted at now, in order.
func (r *Run) Ready(now time.Time, grace time.Duration) []int64 {
	var out []int64
	for i := r.nextEmit; r.ready(i, now, grace); i++ {
		out = append(out, i)
	}
	return out
}

// Remaining returns the intervals not yet emitted up to the highest one any
// agent reported, for the end of a run.
func (r *Run) Remaining() []int64 {
	var out []int64
	for i := r.nextEmit; i <= r.maxSeen; i++ {
		out = append(out, i)
	}
	return out
}

// Emit marks interval i emitted (Ready or Remaining gives i in order) and
// returns its progress: per region and "all", agents, target and achieved
// rate over the interval, and latency percentiles over the run so far.
func (r *Run) Emit(i int64) *surgev1.Progress {
	iv := r.interval(i)
	iv.emitted = true
	r.nextEmit = max(r.nextEmit, i+1)

	secs := r.cfg.Interval.Seconds()
	regions := r.regions()
	whole := r.wholeSets() // before any interval is released below
	p := &surgev1.Progress{RunId: r.cfg.RunID, Interval: i}
	allHist := reset(&r.scratch.all)
	var allLate *hdrhistogram.Histogram
	all := &surgev1.RegionProgress{Region: RegionAll}
	for _, region := range regions {
		rp := &surgev1.RegionProgress{Region: region}
		for id, a := range r.agents {
			if a.region != region {
				continue
			}
			if !a.gone {
				rp.Agents++
			}
			if t, ok := iv.target[id]; ok {
				rp.TargetRps += t
			} else if !a.gone {
				rp.TargetRps += a.targetRate
			}
		}
		rp.AchievedRps = float64(iv.requests[region]) / secs
		rp.ArrivalRps = float64(iv.arrivals[region]) / secs
		if w := whole[region]; w != nil {
			// Counters and latency only (Total would merge every
			// histogram of every series).
			lat := reset(&r.scratch.region)
			for _, k := range w.Keys() {
				sr := w.Lookup(k)
				rp.Requests += sr.Counters.Requests
				rp.Failures += sr.Counters.Failures
				lat.Merge(sr.Latency)
			}
			setPercentiles(rp, lat)
			allHist.Merge(lat)
		}
		if late := r.setLive(rp, iv); late != nil {
			if allLate == nil {
				allLate = reset(&r.scratch.allLate)
			}
			allLate.Merge(late)
		}
		all.ConnsOpen += rp.ConnsOpen
		all.WsOpen += rp.WsOpen
		all.Vus, all.VusMax = all.Vus+rp.Vus, r.peakVUs[peakKey{}]
		all.Agents += rp.Agents
		all.TargetRps += rp.TargetRps
		all.AchievedRps += rp.AchievedRps
		all.ArrivalRps += rp.ArrivalRps
		all.Requests += rp.Requests
		all.Failures += rp.Failures
		p.Regions = append(p.Regions, rp)
	}
	setPercentiles(all, allHist)
	if allLate != nil {
		all.SendLatenessP99Us = allLate.ValueAtQuantile(99)
	}
	p.All = all
	p.Saturation = r.SaturationFlags(i)

	// Release histograms of intervals too old for late merges.
	// Their histograms go to the pool, for the intervals to come: nothing
	// outside the Run holds them (IntervalSeries and IntervalStats encode
	// copies).
	for ; r.releasedBelow < r.ReleasedBy(i); r.releasedBelow++ {
		if iv := r.intervals[r.releasedBelow]; iv != nil {
			r.release(iv)
		}
		delete(r.intervals, r.releasedBelow)
	}
	return p
}

// release gives a released interval's histograms to the run's pool.
func (r *Run) release(iv *interval) {
	for _, set := range iv.sets {
		set.Release()
	}
	iv.sets, iv.packed = nil, nil
	for _, stats := range iv.ws {
		for _, st := range stats {
			st.release(r.pool)
		}
	}
	iv.ws = nil
}

func setPercentiles(rp *surgev1.RegionProgress, h *hdrhistogram.Histogram) {
	if h == nil || h.TotalCount() == 0 {
		return
	}
	rp.P50Us, rp.P95Us, rp.P99Us = h.ValueAtQuantile(50), h.ValueAtQuantile(95), h.ValueAtQuantile(99)
}

// regions lists the run's agent regions, sorted.
func (r *Run) regions() []string {
	set := map[string]bool{}
	for _, a := range r.agents {
		set[a.region] = true
	}
	return slices.Sorted(maps.Keys(set))
}

// MeasuredDuration is from the start to the end of the last interval any
// agent reported; zero before any.
func (r *Run) MeasuredDuration() time.Duration {
	return time.Duration(r.maxSeen+1) * r.cfg.Interval
}

// wholeSets returns the whole run's series by region, once the retained
// intervals not yet inWhole were merged into them.
func (r *Run) wholeSets() map[string]*hist.Set {
	for _, iv := range r.intervals {
		if iv.inWhole || len(iv.sets) == 0 {
			continue // an empty one joins when it has series
		}
		for region, set := range iv.sets {
			w := r.whole[region]
			if w == nil {
				w = hist.NewSet()
				r.whole[region] = w
			}
			r.droppedValues += w.Merge(set)
		}
		iv.inWhole = true
	}
	return r.whole
}

// WholeSeries returns the whole-run merged series per region, for storage.
func (r *Run) WholeSeries() map[string][]*surgev1.Series {
	whole := r.wholeSets()
	out := make(map[string][]*surgev1.Series, len(whole))
	for region, set := range whole {
		out[region] = set.ToProto()
	}
	return out
}
