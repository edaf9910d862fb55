package controller

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/surgeload/surge/controller/aggregate"
	"github.com/surgeload/surge/controller/store"
	surgev1 "github.com/surgeload/surge/gen/surge/v1"
	"github.com/surgeload/surge/plan"
)

// Run statuses (RunSummary.status).
const (
	StatusPending  = "pending"
	StatusRunning  = "running"
	StatusFinished = "finished"
	StatusStopped  = "stopped"
	StatusAborted  = "aborted"
	StatusFailed   = "failed"
)

// Verdicts.
const (
	VerdictPass = "pass"
	VerdictFail = "fail"
)

type phase int

const (
	phasePending phase = iota // assigned, waiting for every ACCEPTED
	phaseRunning
	phaseStopping // Stop sent; waiting for finals or stopTimeout
)

// runAgent is one agent's part in a run, owned by the run goroutine.
type runAgent struct {
	id, region string
	conn       *agentConn
	share      *surgev1.Share
	offsetNs   int64 // at assignment

	accepted   bool
	startedNs  int64 // STARTED, controller clock; 0 until then
	finishedAt time.Time
	endNs      int64 // its final snapshot's end, controller clock; 0 until then
	failed     string
	// lost: declared lost and fenced; its share went to others (or not,
	// per on_agent_loss). It is never re-admitted to the run.
	lost        bool
	lostAt      int64 // the interval in which it was declared lost
	incarnation string
	// epoch is the share epoch of the agent's latest Assign; takeovers are
	// the parts of lost agents' shares it took over.
	epoch     uint64
	takeovers []*surgev1.ScenarioShare
	// suspectUntil: its stream ended (or the controller restarted); it is
	// declared lost at this time unless it re-attaches first. Zero: fine.
	suspectUntil time.Time
	// loss: the arrivals it handled, and what it left when lost (loss.go).
	loss lossAccount
}

// run is one active run. Its goroutine (loop) owns every field below
// "owned by loop"; the rest is immutable or guarded by mu.
type run struct {
	c        *Controller
	log      *slog.Logger
	id       string
	planName string
	planYAML []byte
	planJSON []byte
	start    time.Time // controller clock
	interval time.Duration
	total    time.Duration
	deadline time.Time
	epoch    uint64
	members  map[string]*runAgent // keys immutable; values owned by loop
	order    []string             // member ids sorted
	specs    []plan.ThresholdSpec
	plan     *plan.Plan
	onLoss   string
	maxIdx   int64
	restored bool // taken over from a previous controller's journal

	in       chan runInput
	done     chan struct{}
	accepted chan error // Submit's answer, buffered 1

	mu       sync.Mutex
	watchers map[chan *surgev1.Progress]struct{}
	final    *surgev1.RunSummary // set before done closes

	// owned by loop
	agg          *aggregate.Run
	phase        phase
	stopStatus   string
	stopDeadline time.Time
	errMsg       string
	notes        []string
	// refused: arrivals of takeover parts that survivors refused, by
	// scenario and region (loss.go); they count as deficit.
	refused    map[[2]string]int64
	fencedLate map[string]int64 // snapshots from fenced agents, by agent
	lateUnsunk int64            // late merges whose interval was released (sinks.go)
	// lateDirty: emitted, retained intervals that late snapshots merged
	// into since their sinks last had them (flushLate).
	lateDirty   map[int64]struct{}
	lateFlushed time.Time // when flushLate last sent every dirty interval
	// monitored: the monitors' samples have arrived for the intervals
	// below it (monitors.go).
	monitored int64
}

// deliver hands in to the run goroutine, giving up when the run ended or
// ctx is done.
func (r *run) deliver(ctx context.Context, in runInput) bool {
	select {
	case r.in <- in:
		return true
	case <-r.done:
		return false
	case <-ctx.Done():
		return false
	}
}

func (r *run) subscribe() (chan *surgev1.Progress, func()) {
	ch := make(chan *surgev1.Progress, 64)
	r.mu.Lock()
	r.watchers[ch] = struct{}{}
	r.mu.Unlock()
	return ch, func() {
		r.mu.Lock()
		delete(r.watchers, ch)
		r.mu.Unlock()
	}
}

// broadcast sends p to every watcher without blocking; a watcher too slow to
// keep 64 updates queued misses some (the summary always arrives).
func (r *run) broadcast(p *surgev1.Progress) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for ch := range r.watchers {
		select {
		case ch <- p:
		default:
		}
	}
}

func (r *run) note(format string, args ...any) {
	r.notes = append(r.notes, fmt.Sprintf(format, args...))
}

func (r *run) sendAll(m func(a *runAgent) *surgev1.ControllerMessage, skip func(a *runAgent) bool) {
	for _, id := range r.order {
		a := r.members[id]
		if a.lost || a.conn == nil || (skip != nil && skip(a)) {
			continue
		}
		a.conn.send(m(a))
	}
}

func (r *run) sendStop(reason string) {
	r.sendAll(func(*runAgent) *surgev1.ControllerMessage {
		return &surgev1.ControllerMessage{Msg: &surgev1.ControllerMessage_Stop{Stop: &surgev1.Stop{RunId: r.id, Epoch: r.epoch, Reason: reason}}}
	}, func(a *runAgent) bool { return r.agg.Done(a.id) })
}

// loop is the run goroutine: it assigns, collects accepts, merges snapshots,
// emits intervals, evaluates thresholds and finalizes.
func (r *run) loop(ctx context.Context) {
	defer close(r.done)
	if !r.restored {
		for _, id := range r.order {
			a := r.members[id]
			a.conn.send(r.assignMsg(a))
		}
	}
	acceptTimer := time.NewTimer(acceptTimeout)
	defer acceptTimer.Stop()
	tick := time.NewTicker(min(max(r.interval/5, 20*time.Millisecond), 250*time.Millisecond))
	defer tick.Stop()
	if r.plan.Monitors != nil {
		mctx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Go(func() { r.sampleMonitors(mctx) })
		defer wg.Wait()
		defer cancel()
	}

	for {
		select {
		case <-ctx.Done():
			r.note("controller shut down during the run")
			if r.phase == phasePending {
				r.failPending("controller is shutting down")
				return
			}
			r.sendStop("controller shutting down")
			r.finish(StatusStopped)
			return
		case <-acceptTimer.C:
			if r.phase == phasePending {
				var missing []string
				for _, id := range r.order {
					if !r.members[id].accepted {
						missing = append(missing, id)
					}
				}
				r.failPending(fmt.Sprintf("agents %s did not accept the run within %s", strings.Join(missing, ", "), acceptTimeout))
				return
			}
		case in := <-r.in:
			if in.apply(r, time.Now()) {
				return
			}
		case now := <-tick.C:
			if r.tick(now) {
				return
			}
		}
	}
}

// flushLate hands the sinks the intervals below bound that late snapshots
// merged into since they were last sent, in order. tick calls it once an
// interval period passed since the last flush, emit with the bound its
// Emit releases below (a rewrite is never lost to a release), finish with
// every interval. So each interval is encoded at most once per period for
// late snapshots, at most Retain of them.
func (r *run) flushLate(bound int64, now time.Time) {
	if len(r.lateDirty) == 0 {
		return
	}
	all := true
	for _, i := range slices.Sorted(maps.Keys(r.lateDirty)) {
		if i >= bound {
			all = false
			break
		}
		r.sinkInterval(i, nil, true, now)
		delete(r.lateDirty, i)
	}
	if all {
		r.lateFlushed = now
	}
}

// tick emits intervals due by time and enforces deadlines; true means the
// run ended.
func (r *run) tick(now time.Time) bool {
	if r.phase == phasePending {
		return false
	}
	if now.Sub(r.lateFlushed) >= r.interval {
		r.flushLate(math.MaxInt64, now)
	}
	for _, id := range r.order {
		a := r.members[id]
		if !a.lost && !a.suspectUntil.IsZero() && !now.Before(a.suspectUntil) {
			if r.lose(a, now, "it did not reconnect in time") {
				return true
			}
		}
	}
	for _, id := range r.order {
		a := r.members[id]
		// FINISHED without a final snapshot: stop waiting after the grace.
		if !a.finishedAt.IsZero() && !r.agg.Done(id) && now.Sub(a.finishedAt) >= r.c.cfg.EmitGrace {
			r.agg.MarkGone(id)
			r.note("agent %s finished without a final snapshot", id)
		}
	}
	r.emitReady(now)
	if r.phase == phaseRunning && now.After(r.deadline) {
		var missing []string
		for _, id := range r.order {
			if !r.agg.Done(id) {
				missing = append(missing, id)
			}
		}
		r.note("run deadline passed before agents %s sent their final snapshots", strings.Join(missing, ", "))
		r.finish(StatusFinished)
		return true
	}
	if r.phase == phaseStopping && now.After(r.stopDeadline) {
		r.note("agents did not all send their final snapshots within %s of the stop", stopTimeout)
		r.finish(r.stopStatus)
		return true
	}
	return r.checkEnd(now)
}

// checkEnd finalizes the run once every agent is done.
func (r *run) checkEnd(now time.Time) bool {
	if r.phase == phasePending || !r.agg.AllDone() || r.monitorsPending(now) {
		return false
	}
	st := StatusFinished
	if r.phase == phaseStopping {
		st = r.stopStatus
	} else if r.allFailed() {
		st = StatusFailed
		r.errMsg = "every agent failed"
	}
	r.finish(st)
	return true
}

func (r *run) allFailed() bool {
	for _, a := range r.members {
		if a.failed == "" {
			return false
		}
	}
	return true
}

func (r *run) beginStop(st, reason string, now time.Time) {
	if r.phase == phaseStopping {
		return
	}
	r.phase, r.stopStatus, r.stopDeadline = phaseStopping, st, now.Add(stopTimeout)
	r.sendStop(reason)
	r.log.Info("stopping run", slog.String("status", st), slog.String("reason", reason))
}

func (r *run) emitReady(now time.Time) {
	for _, i := range r.agg.Ready(now, r.c.cfg.EmitGrace) {
		r.emit(i, now)
	}
}

func (r *run) emit(i int64, now time.Time) {
	r.flushLate(r.agg.ReleasedBy(i), now) // before Emit releases them
	p := r.agg.Emit(i)
	elapsed := time.Duration(i+1) * r.interval
	p.Status = r.liveStatus()
	p.ElapsedMs = elapsed.Milliseconds()
	p.TotalMs = r.total.Milliseconds()
	p.Monitors = r.agg.MonitorLatest()
	results := r.agg.Evaluate(elapsed)
	for _, t := range results {
		p.Thresholds = append(p.Thresholds, t.Proto())
	}
	r.broadcast(p)
	r.sinkInterval(i, p, false, now)
	if r.phase != phaseRunning {
		return
	}
	for _, t := range results {
		if reason := t.AbortReason(elapsed); reason != "" {
			r.errMsg = reason
			r.note("aborted: %s", reason)
			r.beginStop(StatusAborted, reason, now)
			return
		}
	}
}

func (r *run) liveStatus() string {
	switch r.phase {
	case phasePending:
		return StatusPending
	case phaseStopping:
		return r.stopStatus
	}
	return StatusRunning
}

// failPending ends a run that never started: Stop to the agents that got
// it, store it failed, and answer Submit.
func (r *run) failPending(msg string) {
	r.sendAll(func(*runAgent) *surgev1.ControllerMessage {
		return &surgev1.ControllerMessage{Msg: &surgev1.ControllerMessage_Stop{Stop: &surgev1.Stop{RunId: r.id, Epoch: r.epoch, Reason: msg}}}
	}, nil)
	r.errMsg = msg
	r.finish(StatusFailed)
	r.accepted <- errors.New(msg)
}

// summary builds the run summary as of now with status st.
func (r *run) summary(st string, now time.Time) *surgev1.RunSummary {
	dur := r.measuredDuration()
	sum := r.agg.Summary(dur)
	sum.PlanName = r.planName
	sum.Tags = r.plan.Tags
	sum.Status = st
	if r.phase != phasePending { // a run refused before its start never started
		sum.StartedAtUnixMs = r.start.UnixMilli()
	}
	sum.Error = r.errMsg
	okAll := true
	for _, t := range r.agg.Evaluate(dur) {
		sum.Thresholds = append(sum.Thresholds, t.Proto())
		okAll = okAll && t.OK
	}
	var minStart, maxStart int64
	for _, as := range sum.Agents {
		a := r.members[as.Id]
		if a == nil {
			continue
		}
		as.ClockOffsetUs = a.offsetNs / 1000
		if a.startedNs != 0 {
			if minStart == 0 || a.startedNs < minStart {
				minStart = a.startedNs
			}
			maxStart = max(maxStart, a.startedNs)
		}
	}
	sum.StartSpreadUs = (maxStart - minStart) / 1000
	switch st {
	case StatusPending, StatusRunning:
	default:
		sum.EndedAtUnixMs = now.UnixMilli()
		sum.Verdict = VerdictFail
		if st == StatusFinished && okAll {
			sum.Verdict = VerdictPass
		}
	}
	sum.Notes = slices.Clone(r.notes)
	r.addLossDeficit(sum, now)
	r.addRefusedDeficit(sum)
	if note := refusedNote(sum, r.plan); note != "" {
		sum.Notes = append(sum.Notes, note)
	}
	if note := r.agg.SaturationNote(); note != "" {
		sum.Notes = append(sum.Notes, "verdict "+cmp.Or(sum.Verdict, "pending")+" with caution: "+note)
	}
	for _, id := range slices.Sorted(maps.Keys(r.fencedLate)) {
		sum.Notes = append(sum.Notes, fmt.Sprintf("%d snapshots from fenced agent %s arrived after it was fenced (merged: measured before the fence)", r.fencedLate[id], id))
	}
	for _, m := range sum.GetMonitors() {
		if m.GetMissing() > 0 {
			sum.Notes = append(sum.Notes, fmt.Sprintf("monitor %s: no value for %d of %d intervals (last: %s)", m.GetName(), m.GetMissing(), m.GetMissing()+m.GetSamples(), m.GetLastError()))
		}
	}
	late, rejected, dropped := r.agg.Counters()
	if late > 0 {
		sum.Notes = append(sum.Notes, fmt.Sprintf("%d late snapshots merged after their interval was emitted", late))
	}
	if rejected > 0 {
		sum.Notes = append(sum.Notes, fmt.Sprintf("%d invalid snapshots rejected", rejected))
	}
	if dropped > 0 {
		sum.Notes = append(sum.Notes, fmt.Sprintf("%d histogram values dropped by merges", dropped))
	}
	return sum
}

// finish emits what is left, builds the final summary, stores it and
// publishes it to watchers (done closes when loop returns).
func (r *run) finish(st string) {
	now := time.Now()
	r.flushLate(math.MaxInt64, now)
	for _, i := range r.agg.Remaining() {
		r.emit(i, now)
	}
	sum := r.summary(st, now)
	sum.Notes = append(sum.Notes, r.sinkNotes()...)
	rec := r.storeRecord(st, sum.GetVerdict(), sum, r.agg.WholeSeries())
	rec.Scenarios, rec.WebSockets = r.agg.WholeStats()
	if err := r.c.store.Put(rec); err != nil {
		r.log.Error("store run summary", slog.Any("err", err))
		sum.Notes = append(sum.Notes, "the run could not be stored: "+err.Error())
	}
	if r.c.journal != nil {
		if err := r.c.journal.DeleteRun(r.id); err != nil {
			r.log.Error("journal", slog.Any("err", err))
		}
	}
	r.mu.Lock()
	r.final = sum
	r.mu.Unlock()
	r.sinkEnded(sum)
	r.log.Info("run ended", slog.String("status", st), slog.String("verdict", sum.GetVerdict()),
		slog.Int64("requests", sum.GetAll().GetRequests()))
}

func (r *run) storeRecord(st, verdict string, sum *surgev1.RunSummary, series map[string][]*surgev1.Series) *store.Run {
	return &store.Run{
		Info: store.Info{
			ID:        r.id,
			PlanName:  r.planName,
			Status:    st,
			Verdict:   verdict,
			StartedAt: r.start,
			Tags:      r.plan.Tags,
		},
		PlanYAML: r.planYAML,
		Summary:  sum,
		Series:   series,
	}
}

// regionsOf lists the distinct regions of agents, sorted.
func regionsOf(agents []*agentConn) []string {
	set := map[string]bool{}
	for _, a := range agents {
		set[a.region] = true
	}
	return slices.Sorted(maps.Keys(set))
}
