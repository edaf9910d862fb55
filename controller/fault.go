package controller

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/protobuf/proto"

	"github.com/surgeload/surge/controller/aggregate"
	"github.com/surgeload/surge/controller/journal"
	surgev1 "github.com/surgeload/surge/gen/surge/v1"
	"github.com/surgeload/surge/plan"
)

// aggEpoch is the epoch the aggregation is configured with: the run goroutine
// checks each agent's epoch itself (epochs move per agent at a reshare) and
// hands the aggregation snapshots stamped with this one.
const aggEpoch = 1

// assignMsg is a's current Assign: its own share, the parts it took over,
// at its epoch, with the start in its own clock.
func (r *run) assignMsg(a *runAgent) *surgev1.ControllerMessage {
	share := &surgev1.Share{Scenarios: a.share.GetScenarios(), Takeovers: a.takeovers}
	return &surgev1.ControllerMessage{Msg: &surgev1.ControllerMessage_Assign{Assign: &surgev1.Assign{
		RunId:                 r.id,
		Epoch:                 a.epoch,
		PlanJson:              r.planJSON,
		Share:                 share,
		StartUnixNs:           r.start.UnixNano() - a.offsetNs,
		ControllerStartUnixNs: r.start.UnixNano(),
		IntervalMs:            r.interval.Milliseconds(),
	}}}
}

// attach handles an agent that (re)connected: the same process with the
// run's current epoch is re-attached and confirmed (its Assign again, which
// also brings it any reshare it missed); a fenced one is told to stop; a
// new process under a member's id lost the old one's share with it, so the
// old one is declared lost at once (it is never counted twice).
func (r *run) attach(in runInput, now time.Time) bool {
	from := in.from
	a := r.members[from.id]
	if a == nil {
		if in.claimed {
			from.send(&surgev1.ControllerMessage{Msg: &surgev1.ControllerMessage_Stop{Stop: &surgev1.Stop{
				RunId: r.id, Epoch: in.claimEpoch, Reason: "this agent is not part of the run"}}})
		}
		return false
	}
	if a.lost {
		if in.claimed {
			from.send(&surgev1.ControllerMessage{Msg: &surgev1.ControllerMessage_Stop{Stop: &surgev1.Stop{
				RunId: r.id, Epoch: in.claimEpoch,
				Reason: fmt.Sprintf("fenced: epoch %d is stale; this agent was declared lost and its share given to others", in.claimEpoch)}}})
			r.log.Warn("fenced a returning agent", slog.String("agent", a.id), slog.Uint64("epoch", in.claimEpoch))
		}
		return false
	}
	if from.incarnation != a.incarnation {
		r.log.Warn("agent restarted during the run; its old process's share is lost", slog.String("agent", a.id))
		return r.lose(a, now, "it restarted (new incarnation)")
	}
	a.conn = from
	if !a.suspectUntil.IsZero() {
		r.log.Info("agent re-attached", slog.String("agent", a.id), slog.Duration("after", now.Sub(a.suspectUntil.Add(-r.c.cfg.AgentLossConfirm))))
	}
	a.suspectUntil = time.Time{}
	if in.claimed && !r.agg.Done(a.id) {
		from.send(r.assignMsg(a))
	}
	return false
}

// lose declares a lost for good (it is fenced: never re-admitted) and
// applies the plan's on_agent_loss; true means the run ended.
func (r *run) lose(a *runAgent, now time.Time, why string) bool {
	if a.lost {
		return false
	}
	detectedAt := a.suspectUntil
	a.lost = true
	a.lostAt = int64(now.Sub(r.start) / r.interval)
	a.suspectUntil = time.Time{}
	wasDone := r.agg.Done(a.id)
	r.agg.MarkGone(a.id)
	if wasDone {
		r.persist()
		return r.checkEnd(now)
	}
	r.log.Warn("agent lost during run", slog.String("agent", a.id), slog.String("why", why))
	elapsed := now.Sub(r.start)
	// Its arrivals due by now were its own: what it did not report sent or
	// dropped is deficit (addLossDeficit). With nobody taking its share,
	// the rest of it is deficit too, up to the run's end.
	a.loss.left, a.loss.until = true, elapsed
	switch r.onLoss {
	case OnLossAbort:
		r.note("agent %s (%s) was lost %s into the run (%s); on_agent_loss: abort", a.id, a.region, elapsed.Round(time.Millisecond), why)
		r.errMsg = fmt.Sprintf("agent %s lost (on_agent_loss: abort)", a.id)
		r.beginStop(StatusAborted, r.errMsg, now)
		r.persist()
		return r.checkEnd(now)
	case OnLossContinue:
		a.loss.open = true
		r.note("agent %s (%s) was lost %s into the run (%s); on_agent_loss: continue, its remaining load is deficit",
			a.id, a.region, elapsed.Round(time.Millisecond), why)
		r.persist()
		return r.checkEnd(now)
	}
	survivors := r.survivors(a.region)
	scope := "region " + a.region
	if len(survivors) == 0 {
		survivors, scope = r.survivors(""), "all regions"
	}
	if len(survivors) == 0 {
		a.loss.open = true
		r.note("agent %s (%s) was lost %s into the run (%s); no agent was left to take its share, its remaining load is deficit", a.id, a.region, elapsed.Round(time.Millisecond), why)
		r.persist()
		return r.checkEnd(now)
	}
	parts := append(slices.Clone(a.share.GetScenarios()), a.takeovers...)
	r.epoch++
	split := reshareParts(r.plan, parts, a.id, r.epoch, elapsed, len(survivors))
	var ids []string
	for i, s := range survivors {
		if len(split[i]) == 0 {
			continue
		}
		s.takeovers = append(s.takeovers, split[i]...)
		s.epoch = r.epoch
		s.conn.send(r.assignMsg(s))
		ids = append(ids, s.id)
	}
	// The deficit window: from the stream's loss (the first sign) to now.
	window := "from its loss to the reshare"
	if !detectedAt.IsZero() {
		a.loss.window = now.Sub(detectedAt) + r.c.cfg.AgentLossConfirm
		window = fmt.Sprintf("%s (stream lost at %s, reshared at %s)", a.loss.window.Round(time.Millisecond),
			(elapsed - a.loss.window).Round(time.Millisecond), elapsed.Round(time.Millisecond))
	}
	r.note("agent %s (%s) was lost %s into the run (%s); its remaining share was reshared at epoch %d to %v (%s); deficit window %s: arrivals due by the reshare that it had not reported sent are counted as deficit",
		a.id, a.region, elapsed.Round(time.Millisecond), why, r.epoch, ids, scope, window)
	r.log.Info("reshared", slog.String("lost", a.id), slog.Uint64("epoch", r.epoch), slog.Any("to", ids),
		slog.Duration("deficit_window", a.loss.window))
	r.persist()
	return r.checkEnd(now)
}

// survivors are the members of region ("" any) that can take work: attached,
// not suspect, not failed and not finished.
func (r *run) survivors(region string) []*runAgent {
	var out []*runAgent
	for _, id := range r.order {
		s := r.members[id]
		if s.lost || s.conn == nil || !s.suspectUntil.IsZero() || s.failed != "" || r.agg.Done(id) {
			continue
		}
		if region != "" && s.region != region {
			continue
		}
		out = append(out, s)
	}
	return out
}

// persist journals the run's assignment.
func (r *run) persist() {
	if r.c.journal == nil {
		return
	}
	jr := &journal.Run{
		ID: r.id, PlanName: r.planName, PlanYAML: r.planYAML, PlanJSON: r.planJSON,
		Start: r.start, Interval: r.interval, Total: r.total, Deadline: r.deadline, MaxIdx: r.maxIdx,
		Epoch: r.epoch, OnLoss: r.onLoss, Order: r.order, Notes: r.notes,
	}
	for _, id := range r.order {
		a := r.members[id]
		b, err := proto.Marshal(&surgev1.Share{Scenarios: a.share.GetScenarios(), Takeovers: a.takeovers})
		if err != nil {
			r.log.Error("journal run", slog.Any("err", err))
			return
		}
		jr.Members = append(jr.Members, journal.Member{ID: a.id, Region: a.region, Incarnation: a.incarnation,
			Share: b, Epoch: a.epoch, OffsetNs: a.offsetNs, StartedNs: a.startedNs, Lost: a.lost, Failed: a.failed,
			LostAt: a.lostAt, LossLeft: a.loss.left, LossUntil: a.loss.until, LossOpen: a.loss.open, LossWindow: a.loss.window})
	}
	if err := r.c.journal.PutRun(jr); err != nil {
		r.log.Error("journal run", slog.Any("err", err))
	}
}

// restoreRun rebuilds a run a previous controller process left running:
// its assignment and aggregation (the journaled snapshots replayed). Its
// agents are suspect until they re-attach within the restore grace.
func (c *Controller) restoreRun(rr journal.Restored, now time.Time) (*run, error) {
	jr := rr.Run
	p, err := plan.FromJSON(jr.PlanJSON)
	if err != nil {
		return nil, fmt.Errorf("restore run %s: %w", jr.ID, err)
	}
	specs, err := p.ThresholdSpecs()
	if err != nil {
		return nil, fmt.Errorf("restore run %s: %w", jr.ID, err)
	}
	r := &run{
		c: c, log: c.log.With(slog.String("run", jr.ID)), id: jr.ID, planName: jr.PlanName,
		planYAML: jr.PlanYAML, planJSON: jr.PlanJSON, start: jr.Start, interval: jr.Interval,
		total: jr.Total, deadline: jr.Deadline, epoch: jr.Epoch, members: map[string]*runAgent{},
		order: jr.Order, specs: specs, plan: p, onLoss: jr.OnLoss, maxIdx: jr.MaxIdx, restored: true,
		in: make(chan runInput, 256), done: make(chan struct{}), accepted: make(chan error, 1),
		watchers: map[chan *surgev1.Progress]struct{}{}, phase: phaseRunning,
		notes: jr.Notes, fencedLate: map[string]int64{},
	}
	r.accepted <- nil
	regions := map[string]string{}
	for _, m := range jr.Members {
		sh := &surgev1.Share{}
		if err := proto.Unmarshal(m.Share, sh); err != nil {
			return nil, fmt.Errorf("restore run %s: member %s: %w", jr.ID, m.ID, err)
		}
		a := &runAgent{id: m.ID, region: m.Region, incarnation: m.Incarnation, epoch: m.Epoch,
			share: &surgev1.Share{Scenarios: sh.GetScenarios()}, takeovers: sh.GetTakeovers(),
			offsetNs: m.OffsetNs, startedNs: m.StartedNs, lost: m.Lost, failed: m.Failed, accepted: true,
			lostAt: m.LostAt, loss: lossAccount{left: m.LossLeft,
				until: m.LossUntil, open: m.LossOpen, window: m.LossWindow}}
		if !a.lost && a.failed == "" {
			a.suspectUntil = now.Add(c.cfg.RestoreGrace)
		}
		r.members[m.ID] = a
		regions[m.ID] = m.Region
	}
	r.agg = aggregate.New(aggregate.Config{
		RunID: jr.ID, Start: jr.Start, Interval: jr.Interval, MaxInterval: jr.MaxIdx,
		Epoch: aggEpoch, Agents: regions, Thresholds: specs, Saturation: p.Saturation,
	})
	for _, s := range rr.Snaps {
		out, err := r.agg.Add(s)
		if err != nil {
			r.log.Warn("restore: journaled snapshot rejected", slog.Any("err", err))
			continue
		}
		if out != aggregate.Duplicate {
			r.account(r.members[s.GetAgentId()], s)
		}
	}
	for _, m := range jr.Members {
		if m.Lost || m.Failed != "" {
			r.agg.MarkGone(m.ID)
		}
	}
	r.note("the controller restarted during the run; the run was restored from its journal (%d snapshots)", len(rr.Snaps))
	return r, nil
}

// Defaults of the fault-handling settings.
const (
	DefaultAgentKeepalive        = 10 * time.Second
	DefaultAgentKeepaliveTimeout = 5 * time.Second
	DefaultAgentLossConfirm      = time.Second
	DefaultRestoreGrace          = 15 * time.Second
	// MaxSendMsgSize bounds one message to an agent or the CLI: an Assign
	// carries the plan (at most maxPlanBytes of YAML, a little more as
	// JSON); agents accept the same.
	MaxSendMsgSize = 16 << 20
)

func applyFaultDefaults(cfg *Config) {
	if cfg.AgentKeepalive <= 0 {
		cfg.AgentKeepalive = DefaultAgentKeepalive
	}
	if cfg.AgentKeepaliveTimeout <= 0 {
		cfg.AgentKeepaliveTimeout = DefaultAgentKeepaliveTimeout
	}
	if cfg.AgentLossConfirm <= 0 {
		cfg.AgentLossConfirm = DefaultAgentLossConfirm
	}
	if cfg.RestoreGrace <= 0 {
		cfg.RestoreGrace = DefaultRestoreGrace
	}
}

// serverOptions: keepalive (the server pings idle agents, and permits the
// agents' own pings every 5s: at most their client keepalive time of 10s,
// so they are never answered with GOAWAY too_many_pings), message size
// limits, TLS, the auth interceptors and the codec that decodes snapshots
// in place (agentCodec).
func (c *Controller) serverOptions() []grpc.ServerOption {
	opts := []grpc.ServerOption{
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: c.cfg.AgentKeepalive, Timeout: c.cfg.AgentKeepaliveTimeout}),
		grpc.MaxRecvMsgSize(MaxRecvMsgSize),
		grpc.MaxSendMsgSize(MaxSendMsgSize),
		grpc.ChainUnaryInterceptor(c.unaryAuth),
		grpc.ChainStreamInterceptor(c.streamAuth),
		grpc.ForceServerCodecV2(newAgentCodec()),
	}
	if c.cfg.TLS != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(c.cfg.TLS)))
	}
	return opts
}

// initJournal opens DATA_DIR/journal.db and loads the runs a previous
// process left running; Run restores them (startRestored).
func (c *Controller) initJournal() error {
	j, err := journal.Open(filepath.Join(c.cfg.DataDir, "journal.db"))
	if err != nil {
		return err
	}
	c.journal = j
	runs, errs := j.Load()
	for _, err := range errs {
		c.log.Error("journal", slog.Any("err", err))
	}
	c.restoring = runs
	return nil
}

// startRestored restores the journaled runs and starts their goroutines.
// A run that cannot be restored stays interrupted in the run store.
func (c *Controller) startRestored(ctx context.Context) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	for _, rr := range c.restoring {
		r, err := c.restoreRun(rr, now)
		if err != nil {
			c.log.Error("could not restore a run; it stays interrupted", slog.Any("err", err))
			_ = c.journal.DeleteRun(rr.Run.ID)
			continue
		}
		if err := c.store.Put(r.storeRecord(StatusRunning, "", nil, nil)); err != nil {
			r.log.Error("store run", slog.Any("err", err))
		}
		c.runs[r.id] = r
		c.log.Warn("restored a run left running by a previous controller", slog.String("run", r.id),
			slog.Int("snapshots", len(rr.Snaps)), slog.Duration("restore_grace", c.cfg.RestoreGrace))
		c.runWG.Go(func() {
			defer c.removeRun(r)
			r.loop(ctx)
		})
	}
	c.restoring = nil
}

// memberGone tells the runs that gossip saw agent id's process leave.
func (c *Controller) memberGone(id, incarnation string) {
	c.mu.Lock()
	var runs []*run
	for _, r := range c.runs {
		if _, ok := r.members[id]; ok {
			runs = append(runs, r)
		}
	}
	c.mu.Unlock()
	for _, r := range runs {
		r.deliver(c.handlersCtx, runInput{gone: true, goneID: id, goneIncar: incarnation})
	}
}

// attachAgent tells the active runs that a (re)connected: the runs it is a
// member of, and the runs its Hello claims.
func (c *Controller) attachAgent(ctx context.Context, a *agentConn, claims []*surgev1.RunEpoch) {
	claimed := map[string]uint64{}
	for _, re := range claims {
		claimed[re.GetRunId()] = re.GetEpoch()
	}
	c.mu.Lock()
	var runs []*run
	for _, r := range c.runs {
		_, member := r.members[a.id]
		_, claim := claimed[r.id]
		if member || claim {
			runs = append(runs, r)
		}
	}
	c.mu.Unlock()
	for _, r := range runs {
		e, claim := claimed[r.id]
		r.deliver(ctx, runInput{attach: true, from: a, claimed: claim, claimEpoch: e})
	}
	// Claimed runs the controller does not know (ended, or lost with a
	// journal that could not restore them): stop them.
	for id, e := range claimed {
		if c.lookupRun(id) == nil {
			a.send(&surgev1.ControllerMessage{Msg: &surgev1.ControllerMessage_Stop{Stop: &surgev1.Stop{
				RunId: id, Epoch: e, Reason: "the controller does not know this run (ended or not restorable)"}}})
		}
	}
}

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
