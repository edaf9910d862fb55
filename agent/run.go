package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/surgeload/surge/agent/executor"
	"github.com/surgeload/surge/agent/httpclient"
	surgev1 "github.com/surgeload/surge/gen/surge/v1"
	"github.com/surgeload/surge/hist"
	"github.com/surgeload/surge/plan"
)

// checkTimeout bounds resolving a plan's target hosts for the allow-list.
const checkTimeout = 5 * time.Second

// runState is one assigned run. epoch and latest are guarded by the
// agent's runsMu.
type runState struct {
	id      string
	epoch   uint64
	latest  *surgev1.Assign
	gate    *gate
	cancel  context.CancelFunc
	reshare chan *surgev1.Assign // higher-epoch assigns for the run goroutine
	// stopReason is why the controller stopped the run ("" otherwise).
	stopReason atomic.Pointer[string]
}

// assign starts an assigned run in its own goroutine. For a run already
// running here, an Assign with a higher epoch is a reshare (its new
// takeover parts start beside the running ones) and any Assign with the
// held or a higher epoch confirms the run, opening its gate after a pause.
func (a *Agent) assign(as *surgev1.Assign) {
	id := as.GetRunId()
	a.runsMu.Lock()
	defer a.runsMu.Unlock()
	if a.closing || a.runCtx == nil {
		return
	}
	if r, ok := a.runs[id]; ok {
		if as.GetEpoch() < r.epoch {
			a.log.Info("ignoring an assign with an older epoch", "run", id, "epoch", as.GetEpoch(), "held", r.epoch)
			return
		}
		if as.GetEpoch() > r.epoch {
			r.epoch, r.latest = as.GetEpoch(), as
			select {
			case r.reshare <- as:
			default:
				a.log.Warn("reshare queue full; dropping an assign", "run", id, "epoch", as.GetEpoch())
			}
		}
		if r.gate.resume() {
			a.log.Info("controller confirmed the run; resuming", "run", id, "epoch", r.epoch)
		}
		return
	}
	if epoch, ok := a.finished[id]; ok && as.GetEpoch() <= epoch {
		a.log.Info("ignoring assign of a finished run", "run", id, "epoch", as.GetEpoch())
		return
	}
	ctx, cancel := context.WithCancel(a.runCtx)
	r := &runState{id: id, epoch: as.GetEpoch(), latest: as, gate: newGate(a.watch), cancel: cancel,
		reshare: make(chan *surgev1.Assign, 16)}
	a.runs[id] = r
	a.runWG.Add(1)
	go func() {
		defer a.runWG.Done()
		defer cancel()
		a.runAssigned(ctx, r, as)
		a.runsMu.Lock()
		delete(a.runs, id)
		a.finished[id] = max(r.epoch, as.GetEpoch())
		a.runsMu.Unlock()
	}()
}

// stop cancels a run.
func (a *Agent) stop(st *surgev1.Stop) {
	a.runsMu.Lock()
	r, ok := a.runs[st.GetRunId()]
	a.runsMu.Unlock()
	if !ok {
		a.log.Info("stop for a run not running here", "run", st.GetRunId())
		return
	}
	a.log.Info("stopping run", "run", r.id, "reason", st.GetReason())
	reason := st.GetReason()
	r.stopReason.Store(&reason)
	r.cancel()
}

// runEpochs lists the runs running here with their epochs, for Hello.
func (a *Agent) runEpochs() []*surgev1.RunEpoch {
	a.runsMu.Lock()
	defer a.runsMu.Unlock()
	out := make([]*surgev1.RunEpoch, 0, len(a.runs))
	for _, r := range a.runs {
		out = append(out, &surgev1.RunEpoch{RunId: r.id, Epoch: r.epoch})
	}
	return out
}

// suspendAll closes every run's gate: after a pause, nothing is sent until
// the controller confirms or fences each run.
func (a *Agent) suspendAll() int {
	a.runsMu.Lock()
	defer a.runsMu.Unlock()
	for _, r := range a.runs {
		r.gate.suspend()
	}
	return len(a.runs)
}

func (a *Agent) event(as *surgev1.Assign, kind surgev1.RunEvent_Kind, at time.Time, msg string) {
	a.out.addEvent(&surgev1.RunEvent{RunId: as.GetRunId(), Epoch: as.GetEpoch(), Kind: kind, Message: msg, AtUnixNs: at.UnixNano()})
}

// check decodes the plan and decides whether this agent takes the share.
// Its error is the message of the REJECTED event.
func (a *Agent) check(ctx context.Context, as *surgev1.Assign) (*plan.Plan, plan.Share, error) {
	p, err := plan.FromJSON(as.GetPlanJson())
	if err != nil {
		return nil, plan.Share{}, fmt.Errorf("agent %s: invalid plan: %w", a.cfg.ID, err)
	}
	share, err := shareFromProto(as.GetShare().GetScenarios())
	if err == nil {
		err = executor.ValidateShare(p, share)
	}
	if err != nil {
		return nil, plan.Share{}, fmt.Errorf("agent %s: invalid share: %w", a.cfg.ID, err)
	}
	if err := a.checkCaps(p, share.Scenarios, nil); err != nil {
		return nil, plan.Share{}, err
	}
	if err := a.checkHosts(ctx, p, share.Scenarios); err != nil {
		return nil, plan.Share{}, err
	}
	return p, share, nil
}

// checkCaps refuses parts that would take the agent over its own rate and
// VU caps, on top of the parts it already runs.
func (a *Agent) checkCaps(p *plan.Plan, add, running []plan.ScenarioShare) error {
	var rate float64
	for _, ss := range append(slices.Clone(running), add...) {
		rate += partPeakRate(p, ss)
	}
	if a.cfg.MaxRate > 0 && rate > a.cfg.MaxRate*(1+1e-9) {
		return fmt.Errorf("agent %s: the share peaks at %.6g arrivals/s, over this agent's max rate of %.6g/s", a.cfg.ID, rate, a.cfg.MaxRate)
	}
	n := executor.PeakVUs(p, plan.Share{Scenarios: running}) + executor.PeakVUs(p, plan.Share{Scenarios: add})
	if a.cfg.MaxVUs > 0 && n > a.cfg.MaxVUs {
		return fmt.Errorf("agent %s: the share needs up to %d VUs, over this agent's max of %d", a.cfg.ID, n, a.cfg.MaxVUs)
	}
	return nil
}

// checkHosts resolves the hosts of the parts' requests against the
// allow-list.
func (a *Agent) checkHosts(ctx context.Context, p *plan.Plan, parts []plan.ScenarioShare) error {
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	seen := make(map[string]bool)
	for _, ss := range parts {
		sc := p.Scenarios[ss.Scenario]
		if sc == nil {
			return fmt.Errorf("agent %s: scenario %q is not in the plan", a.cfg.ID, ss.Scenario)
		}
		// The scenario's client settings must hold on this agent (TLS
		// files, hosts, source addresses) before it takes the share.
		c, err := httpclient.New(httpclient.Options{Allow: a.allow, Resolver: a.resolver, Conn: sc.Connection, Retry: sc.Retry})
		if err != nil {
			return fmt.Errorf("agent %s: scenario %s: %w", a.cfg.ID, ss.Scenario, err)
		}
		c.Close()
		for _, t := range sc.Targets() {
			u, err := url.Parse(t.URL)
			if err != nil && strings.Contains(t.URL, "{{") {
				continue // a templated host: the allow-list is enforced at dial time
			}
			if err != nil {
				return fmt.Errorf("agent %s: request %q: %w", a.cfg.ID, t.Name, err)
			}
			host := u.Hostname()
			if sc.Connection != nil {
				if addr, ok := sc.Connection.Hosts[host]; ok {
					host = addr // hosts: the address is what is dialled
					if h, _, err := net.SplitHostPort(addr); err == nil {
						host = h
					}
				}
			}
			if seen[host] {
				continue
			}
			seen[host] = true
			if _, err := a.allow.Resolve(ctx, a.resolver, host); err != nil {
				return fmt.Errorf("agent %s: %w", a.cfg.ID, err)
			}
		}
	}
	return nil
}

// takeovers returns the takeover parts of as that are not running yet,
// grouped by part id, checked against the plan, the caps and the
// allow-list; refused parts are logged and left out.
func (a *Agent) takeovers(ctx context.Context, p *plan.Plan, as *surgev1.Assign, have map[string][]plan.ScenarioShare, log *slog.Logger) map[string][]plan.ScenarioShare {
	var running []plan.ScenarioShare
	for _, ss := range have {
		running = append(running, ss...)
	}
	out := map[string][]plan.ScenarioShare{}
	for _, ss := range as.GetShare().GetTakeovers() {
		id := ss.GetPartId()
		if id == "" {
			id = "takeover:" + ss.GetFromAgent()
		}
		if _, ok := have[id]; ok {
			continue
		}
		one, err := shareFromProto([]*surgev1.ScenarioShare{ss})
		if err == nil {
			err = executor.ValidateShare(p, one)
		}
		if err == nil && (ss.GetArrivalFirst() < 0 || ss.GetArrivalStride() < 0) {
			err = errors.New("negative arrival progression")
		}
		if err == nil {
			err = a.checkCaps(p, one.Scenarios, running)
		}
		if err == nil {
			err = a.checkHosts(ctx, p, one.Scenarios)
		}
		if err != nil {
			log.Warn("refused a takeover part", "part", id, "from", ss.GetFromAgent(), "err", err)
			a.out.addEvent(&surgev1.RunEvent{RunId: as.GetRunId(), Epoch: as.GetEpoch(), Kind: surgev1.RunEvent_KIND_REJECTED,
				Message: err.Error(), PartId: ss.GetPartId(), AtUnixNs: time.Now().UnixNano()})
			continue
		}
		out[id] = append(out[id], one.Scenarios...)
		running = append(running, one.Scenarios...)
	}
	return out
}

// runAssigned takes a run from its Assign to its final snapshot and event.
func (a *Agent) runAssigned(ctx context.Context, r *runState, as *surgev1.Assign) {
	log := a.log.With("run", as.GetRunId())
	p, own, err := a.check(ctx, as)
	if err != nil {
		log.Warn("rejected run", "err", err)
		a.event(as, surgev1.RunEvent_KIND_REJECTED, time.Now(), err.Error())
		return
	}
	a.event(as, surgev1.RunEvent_KIND_ACCEPTED, time.Now(), "")
	log.Info("accepted run", "epoch", as.GetEpoch(), "start_in", time.Until(time.Unix(0, as.GetStartUnixNs())))

	ar := a.newAssignedRun(r, as, p, log)
	// Stop every part before returning, whatever path returns.
	partsCtx, cancelParts := context.WithCancel(ctx)
	ar.partsCtx = partsCtx
	defer func() {
		cancelParts()
		ar.partsWG.Wait()
	}()

	// Launch the parts now, before the start: each scenario waits for the
	// start itself, so arrival-rate scenarios create their pre-allocated
	// VUs and open their connections beforehand instead of in the first
	// second, where each dial competes with the first arrivals.
	ar.launch("", own.Scenarios, false)
	for id, ss := range a.takeovers(ctx, p, as, ar.running, log) {
		ar.launch(id, ss, true)
	}

	// Wait for the start, in this agent's clock.
	if d := time.Until(ar.start); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			cancelParts()
			ar.partsWG.Wait()
			ar.emit(0, true, time.Now())
			ar.finished(surgev1.RunEvent_KIND_FINISHED, "stopped before the start")
			return
		case <-t.C:
		}
	}
	a.event(as, surgev1.RunEvent_KIND_STARTED, time.Now(), "")
	log.Info("started run")
	idx, err := ar.collect(ctx)
	ar.emit(idx, true, time.Now())
	ar.end(ctx, err)
}

// assignedRun is a run on this agent from its start to its end: its parts
// (the assigned share and the takeovers), and the snapshots it sends.
type assignedRun struct {
	a        *Agent
	r        *runState
	as       *surgev1.Assign
	p        *plan.Plan
	log      *slog.Logger
	interval time.Duration
	start    time.Time // the run's start in this agent's clock
	opts     partOptions

	partsCtx context.Context // the parts' context, cancelled before runAssigned returns
	partsWG  sync.WaitGroup
	parts    []*part
	running  map[string][]plan.ScenarioShare // each part's shares by part id
	pending  int                             // parts not yet ended
	results  chan error                      // each part's end

	stats *statsSampler
	seq   uint64
	enc   hist.Encoder
}

func (a *Agent) newAssignedRun(r *runState, as *surgev1.Assign, p *plan.Plan, log *slog.Logger) *assignedRun {
	interval := time.Duration(as.GetIntervalMs()) * time.Millisecond
	if interval <= 0 {
		interval = p.Interval.D()
	}
	if interval <= 0 {
		interval = time.Second
	}
	// Takeover parts share the start. A start that passed long ago is a
	// clock problem: start now.
	start := time.Unix(0, as.GetStartUnixNs())
	if time.Since(start) > interval {
		start = time.Now()
	}
	client := httpclient.Options{Allow: a.allow, Resolver: a.resolver, Conns: &a.conns,
		Limit: httpclient.NewRateLimit(float64(as.GetShare().GetRps()))}
	return &assignedRun{
		a: a, r: r, as: as, p: p, log: log, interval: interval, start: start,
		opts: partOptions{plan: p, client: client, gate: r.gate, log: log, onSample: a.cfg.OnSample,
			runID: as.GetRunId(), region: a.cfg.Region, pacingSpin: a.cfg.PacingSpin},
		running: map[string][]plan.ScenarioShare{},
		results: make(chan error, 64),
		stats:   newStatsSampler(&a.conns),
	}
}

func (ar *assignedRun) epoch() uint64 {
	ar.a.runsMu.Lock()
	defer ar.a.runsMu.Unlock()
	return ar.r.epoch
}

// current is the run's latest Assign (a reshare replaces it).
func (ar *assignedRun) current() *surgev1.Assign {
	ar.a.runsMu.Lock()
	defer ar.a.runsMu.Unlock()
	return ar.r.latest
}

// launch starts a part running shares; a part that cannot start is logged
// and left out.
func (ar *assignedRun) launch(id string, shares []plan.ScenarioShare, takeover bool) {
	o := ar.opts
	o.shares, o.takeover = shares, takeover
	pt, err := startPart(ar.partsCtx, &ar.partsWG, id, ar.start, o)
	if err != nil {
		ar.log.Warn("could not start a part", "part", id, "err", err)
		return
	}
	ar.parts = append(ar.parts, pt)
	ar.running[id] = shares
	ar.pending++
	ar.partsWG.Go(func() { ar.results <- <-pt.done })
}

// emit sends the snapshot of interval idx, which ends at at.
func (ar *assignedRun) emit(idx int64, final bool, at time.Time) {
	series, scen, ws, err := swapParts(ar.parts, at, &ar.enc)
	if err != nil {
		// Only histograms surge encoded itself are merged here; a
		// failure is a bug, and the parts' WebSocket stats it could
		// not merge are lost for this interval.
		ar.log.Error("websocket stats of this interval could not be merged", "interval", idx, "err", err)
	}
	ar.seq++
	snap := &surgev1.Snapshot{
		RunId: ar.as.GetRunId(), AgentId: ar.a.cfg.ID, Seq: ar.seq, Epoch: ar.epoch(), Interval: idx,
		Series: series, Scenarios: scen, Websockets: ws, Agent: ar.stats.sample(), Final: final,
	}
	if final {
		snap.EndUnixNs = at.UnixNano() // the run's exact end, for its duration
	}
	ar.a.out.addSnapshot(snap)
}

func (ar *assignedRun) finished(kind surgev1.RunEvent_Kind, msg string) {
	ar.a.event(ar.current(), kind, time.Now(), msg)
}

// collect sends a snapshot at each interval boundary and launches the
// takeovers of each reshare until every part has ended; it returns the
// interval it was in and the parts' errors joined.
func (ar *assignedRun) collect(ctx context.Context) (int64, error) {
	var (
		idx     int64
		runErrs []error
	)
	boundary := func() time.Time { return ar.start.Add(time.Duration(idx+1) * ar.interval) }
	t := time.NewTimer(time.Until(boundary()))
	defer t.Stop()
	for ar.pending > 0 {
		select {
		case err := <-ar.results:
			ar.pending--
			if err != nil {
				runErrs = append(runErrs, err)
			}
		case next := <-ar.r.reshare:
			added := ar.a.takeovers(ctx, ar.p, next, ar.running, ar.log)
			for id, ss := range added {
				ar.launch(id, ss, true)
			}
			ar.log.Info("reshare", "epoch", next.GetEpoch(), "new_parts", len(added))
		case <-t.C:
			ar.emit(idx, false, boundary())
			idx++
			t.Reset(time.Until(boundary()))
		}
	}
	return idx, errors.Join(runErrs...)
}

// end sends the run's final event: failed with err, stopped, or finished.
func (ar *assignedRun) end(ctx context.Context, err error) {
	switch {
	case err != nil:
		ar.log.Warn("run failed", "err", err)
		ar.finished(surgev1.RunEvent_KIND_FAILED, fmt.Sprintf("agent %s: %v", ar.a.cfg.ID, err))
	case ctx.Err() != nil:
		reason := "stopped"
		if rs := ar.r.stopReason.Load(); rs != nil && *rs != "" {
			reason = "stopped: " + *rs
		}
		ar.log.Info("run stopped", "reason", reason)
		ar.finished(surgev1.RunEvent_KIND_FINISHED, reason)
	default:
		ar.log.Info("run finished")
		ar.finished(surgev1.RunEvent_KIND_FINISHED, "")
	}
}
