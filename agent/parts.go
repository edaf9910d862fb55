package agent

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sort"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/surgeload/surge/agent/executor"
	"github.com/surgeload/surge/agent/httpclient"
	surgev1 "github.com/surgeload/surge/gen/surge/v1"
	"github.com/surgeload/surge/hist"
	"github.com/surgeload/surge/plan"
)

// progressionPacer sends the arrivals j = first, first+stride, ... (j <
// arrivals) of the uniform schedule of arrivals/total along a scenario's
// rate curve: one agent's part of a lost agent's remaining arrivals after a
// reshare. The survivors' progressions interleave, so together they send
// exactly the arrivals the lost agent had left, each at its planned time.
type progressionPacer struct {
	base          *executor.SchedulePacer
	first, stride int64
	count         int64
}

var (
	_ executor.Pacer      = (*progressionPacer)(nil)
	_ executor.DueCounter = (*progressionPacer)(nil)
)

func newProgressionPacer(sc *plan.Scenario, ss plan.ScenarioShare) *progressionPacer {
	first, stride := ss.ArrivalFirst, max(ss.ArrivalStride, 1)
	var count int64
	if a := ss.Arrivals; first >= 0 && first < a {
		count = (a - first + stride - 1) / stride
	}
	return &progressionPacer{
		base:  executor.NewSchedulePacer(sc, ss.Arrivals, ss.TotalArrivals),
		first: max(first, 0), stride: stride, count: count,
	}
}

// Next implements executor.Pacer.
func (p *progressionPacer) Next(n int64) (time.Duration, bool) {
	if n < 0 || n >= p.count {
		return 0, true
	}
	return p.base.Next(p.first + n*p.stride)
}

// Rate implements executor.Pacer.
func (p *progressionPacer) Rate(elapsed time.Duration) float64 {
	if p.count == 0 {
		return 0
	}
	return p.base.Rate(elapsed) / float64(p.stride)
}

// DueBy implements executor.DueCounter.
func (p *progressionPacer) DueBy(elapsed time.Duration) int64 {
	return int64(sort.Search(int(p.count), func(n int) bool {
		due, _ := p.Next(int64(n))
		return due > elapsed
	}))
}

// partPeakRate is the most arrivals per second one share part plans.
func partPeakRate(p *plan.Plan, ss plan.ScenarioShare) float64 {
	sc := p.Scenarios[ss.Scenario]
	if sc == nil || !sc.IsArrivalRate() || ss.TotalArrivals <= 0 {
		return 0
	}
	return sc.PeakRate() * float64(ss.Arrivals) / float64(ss.TotalArrivals) / float64(max(ss.ArrivalStride, 1))
}

// part is one piece of work of a run on this agent: its own share, or a part
// of a lost agent's share taken over at a reshare. Each part records into a
// recorder of its own; the run merges them into one snapshot per interval.
type part struct {
	id   string
	rec  *executor.Recorder
	done chan error
}

// partOptions are what running a part needs.
type partOptions struct {
	plan   *plan.Plan
	shares []plan.ScenarioShare
	// takeover parts pace with a progressionPacer; the own share with the
	// executor's default pacer.
	takeover bool
	client   httpclient.Options
	gate     *gate
	log      *slog.Logger
	onSample func(scenario, request, status string, latencyUS int64)
	// runID seeds random arrivals and flows; region expands {{region}}.
	runID, region string
	// pacingSpin: see Config.PacingSpin.
	pacingSpin time.Duration
}

// startPart runs the scenarios of o from the run's start (scenarios that
// start late pick up their schedule where it stands now) until they end or
// ctx ends. It returns at once; part.done receives the result.
func startPart(ctx context.Context, wg *sync.WaitGroup, id string, start time.Time, o partOptions) (*part, error) {
	pt := &part{id: id, rec: executor.NewRecorder(), done: make(chan error, 1)}
	pt.rec.SetObserver(o.onSample)
	scens, err := executor.BuildScenarios(executor.ShareOptions{
		Plan:       o.plan,
		Share:      plan.Share{Scenarios: o.shares},
		Client:     o.client,
		Recorder:   pt.rec,
		Logger:     o.log.With("part", id),
		PacingSpin: o.pacingSpin,
		RunID:      o.runID + "/" + id,
		Region:     o.region,
		Env:        o.plan.LookupEnv(os.LookupEnv),
		Adjust: func(s *executor.Scenario) {
			s.Iterate = o.gate.wrap(s.Iterate, s.Rec)
			s.Hold = o.gate.holder(s.Rec)
			if o.takeover && s.Plan.IsArrivalRate() {
				s.Pacer = newProgressionPacer(s.Plan, s.Share)
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("part %s: %w", id, err)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		pt.done <- executor.RunScenarios(ctx, start, scens)
	}()
	return pt, nil
}

// swapParts ends the interval at at in every part's recorder and merges the
// results into one series set (encoded with enc, empty series left out),
// one stats entry per scenario and one per WebSocket step. The parts'
// sets go back to their recorders (see executor.Recorder.Recycle).
func swapParts(parts []*part, at time.Time, enc *hist.Encoder) ([]*surgev1.Series, []*surgev1.ScenarioStats, []*surgev1.WebSocketStats, error) {
	var set *hist.Set
	sets := make([]*hist.Set, len(parts))
	var stats []*surgev1.ScenarioStats
	var ws []*surgev1.WebSocketStats
	var wsErr error
	byName := map[string]*surgev1.ScenarioStats{}
	for i, pt := range parts {
		s, sc := pt.rec.Swap(at)
		// The first part's set takes the others: merging into a set of its
		// own would allocate its histograms anew every interval.
		if sets[i] = s; set == nil {
			set = s
		} else {
			set.Merge(s)
		}
		if w := pt.rec.SwapWebSockets(); len(ws) == 0 {
			ws = w
		} else if len(w) > 0 {
			merged, err := mergeWebSocketStats(ws, w, true)
			if err != nil {
				wsErr = fmt.Errorf("part %s: %w", pt.id, err)
			} else {
				ws = merged
			}
		}
		for _, st := range sc {
			if cur := byName[st.GetScenario()]; cur != nil {
				mergeScenarioStats(cur, st, true)
				continue
			}
			byName[st.GetScenario()] = st
			stats = append(stats, st)
		}
	}
	var series []*surgev1.Series
	if set != nil {
		series = slices.DeleteFunc(set.EncodeProto(enc), emptySeries)
	}
	for i, pt := range parts {
		pt.rec.Recycle(sets[i])
	}
	return series, stats, ws, wsErr
}

// emptySeries reports whether p recorded nothing: no counters, no values
// (a recycled set's series of a request not sent this interval).
func emptySeries(p *surgev1.Series) bool {
	if p.GetLatency() != nil || p.GetService() != nil || proto.Size(p.GetCounters()) != 0 {
		return false
	}
	for ph := range hist.NumPhases {
		if hist.PhaseProto(p, ph) != nil {
			return false
		}
	}
	return true
}

// mergeScenarioStats adds o into dst. Counters add up; gauges add up when
// both describe the same instant (parts), else o's (the later one) wins.
func mergeScenarioStats(dst, o *surgev1.ScenarioStats, sameInstant bool) {
	dst.Scheduled += o.GetScheduled()
	dst.Started += o.GetStarted()
	dst.Completed += o.GetCompleted()
	dst.Dropped += o.GetDropped()
	dst.Deficit += o.GetDeficit()
	mergeConnCounts(dst, o, sameInstant)
	if sameInstant {
		dst.ActiveVus += o.GetActiveVus()
		dst.AllocatedVus += o.GetAllocatedVus()
		dst.TargetRate += o.GetTargetRate()
	} else {
		dst.ActiveVus, dst.AllocatedVus, dst.TargetRate = o.GetActiveVus(), o.GetAllocatedVus(), o.GetTargetRate()
	}
	h, err := hist.FromProto(dst.GetLateness())
	if err != nil {
		h = hist.New()
	}
	if _, err := hist.MergeProto(h, o.GetLateness()); err == nil {
		dst.Lateness = hist.ToProto(h)
	}
}

// mergeSnapshots returns one snapshot covering a then b (consecutive
// snapshots of one run by this agent): series and counters add up, gauges
// and the interval are b's, and the seq range runs from a's first to b's.
func mergeSnapshots(a, b *surgev1.Snapshot) (*surgev1.Snapshot, error) {
	if a.GetRunId() != b.GetRunId() || a.GetSeq() >= b.GetSeq() {
		return nil, fmt.Errorf("merge snapshots: %s seq %d and %s seq %d are not consecutive", a.GetRunId(), a.GetSeq(), b.GetRunId(), b.GetSeq())
	}
	set := hist.NewSet()
	if _, err := set.MergeProto(a.GetSeries()); err != nil {
		return nil, fmt.Errorf("merge snapshots: %w", err)
	}
	if _, err := set.MergeProto(b.GetSeries()); err != nil {
		return nil, fmt.Errorf("merge snapshots: %w", err)
	}
	first := a.GetSeqFirst()
	if first == 0 {
		first = a.GetSeq()
	}
	out := &surgev1.Snapshot{
		RunId: b.GetRunId(), AgentId: b.GetAgentId(), Seq: b.GetSeq(), SeqFirst: first,
		Epoch: b.GetEpoch(), Interval: b.GetInterval(), Series: set.ToProto(),
		Agent: b.GetAgent(), Final: b.GetFinal(),
	}
	ws, err := mergeWebSocketStats(a.GetWebsockets(), b.GetWebsockets(), false)
	if err != nil {
		return nil, fmt.Errorf("merge snapshots: %w", err)
	}
	out.Websockets = ws
	byName := map[string]*surgev1.ScenarioStats{}
	for _, src := range [][]*surgev1.ScenarioStats{a.GetScenarios(), b.GetScenarios()} {
		for _, st := range src {
			if cur := byName[st.GetScenario()]; cur != nil {
				mergeScenarioStats(cur, st, false)
				continue
			}
			c := &surgev1.ScenarioStats{Scenario: st.GetScenario()}
			mergeScenarioStats(c, st, false)
			byName[st.GetScenario()] = c
			out.Scenarios = append(out.Scenarios, c)
		}
	}
	return out, nil
}
