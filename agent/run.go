package agent

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/surgeload/surge/agent/executor"
	"github.com/surgeload/surge/agent/httpclient"
	surgev1 "github.com/surgeload/surge/gen/surge/v1"
	"github.com/surgeload/surge/plan"
)

// checkTimeout bounds resolving a plan's target hosts for the allow-list.
const checkTimeout = 5 * time.Second

// runState is one assigned run.
type runState struct {
	id     string
	epoch  uint64
	cancel context.CancelFunc
}

// assign starts an assigned run in its own goroutine, unless it is a
// duplicate.
func (a *Agent) assign(as *surgev1.Assign) {
	id := as.GetRunId()
	a.runsMu.Lock()
	defer a.runsMu.Unlock()
	if a.closing || a.runCtx == nil {
		return
	}
	if r, ok := a.runs[id]; ok {
		if as.GetEpoch() > r.epoch {
			a.log.Warn("reshare of a running run is not supported yet; keeping the current share",
				"run", id, "epoch", r.epoch, "new_epoch", as.GetEpoch())
		} else {
			a.log.Info("ignoring duplicate assign", "run", id, "epoch", as.GetEpoch())
		}
		return
	}
	if epoch, ok := a.finished[id]; ok && as.GetEpoch() <= epoch {
		a.log.Info("ignoring assign of a finished run", "run", id, "epoch", as.GetEpoch())
		return
	}
	ctx, cancel := context.WithCancel(a.runCtx)
	r := &runState{id: id, epoch: as.GetEpoch(), cancel: cancel}
	a.runs[id] = r
	a.runWG.Add(1)
	go func() {
		defer a.runWG.Done()
		defer cancel()
		a.runAssigned(ctx, as)
		a.runsMu.Lock()
		delete(a.runs, id)
		a.finished[id] = as.GetEpoch()
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
	r.cancel()
}

func (a *Agent) event(as *surgev1.Assign, kind surgev1.RunEvent_Kind, at time.Time, msg string) {
	a.out.addEvent(&surgev1.RunEvent{RunId: as.GetRunId(), Epoch: as.GetEpoch(), Kind: kind, Message: msg, AtUnixNs: at.UnixNano()})
}

// check decodes the plan and decides whether this agent takes the share.
// Its error is the message of the REJECTED event.
func (a *Agent) check(ctx context.Context, as *surgev1.Assign) (*plan.Plan, error) {
	p, err := plan.FromJSON(as.GetPlanJson())
	if err != nil {
		return nil, fmt.Errorf("agent %s: invalid plan: %w", a.cfg.ID, err)
	}
	if err := executor.ValidateShare(p, as.GetShare()); err != nil {
		return nil, fmt.Errorf("agent %s: invalid share: %w", a.cfg.ID, err)
	}
	if r := executor.PeakRate(p, as.GetShare()); a.cfg.MaxRate > 0 && r > a.cfg.MaxRate {
		return nil, fmt.Errorf("agent %s: the share peaks at %.6g arrivals/s, over this agent's max rate of %.6g/s", a.cfg.ID, r, a.cfg.MaxRate)
	}
	if n := executor.PeakVUs(p, as.GetShare()); a.cfg.MaxVUs > 0 && n > a.cfg.MaxVUs {
		return nil, fmt.Errorf("agent %s: the share needs up to %d VUs, over this agent's max of %d", a.cfg.ID, n, a.cfg.MaxVUs)
	}
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	seen := make(map[string]bool)
	for _, ss := range as.GetShare().GetScenarios() {
		for _, r := range p.Scenarios[ss.GetScenario()].Requests {
			u, err := url.Parse(r.URL)
			if err != nil {
				return nil, fmt.Errorf("agent %s: request %q: %w", a.cfg.ID, r.Name, err)
			}
			host := u.Hostname()
			if seen[host] {
				continue
			}
			seen[host] = true
			if _, err := a.allow.Resolve(ctx, a.resolver, host); err != nil {
				return nil, fmt.Errorf("agent %s: %w", a.cfg.ID, err)
			}
		}
	}
	return p, nil
}

// runAssigned takes a run from its Assign to its final snapshot and event.
func (a *Agent) runAssigned(ctx context.Context, as *surgev1.Assign) {
	log := a.log.With("run", as.GetRunId(), "epoch", as.GetEpoch())
	p, err := a.check(ctx, as)
	if err != nil {
		log.Warn("rejected run", "err", err)
		a.event(as, surgev1.RunEvent_KIND_REJECTED, time.Now(), err.Error())
		return
	}
	a.event(as, surgev1.RunEvent_KIND_ACCEPTED, time.Now(), "")
	log.Info("accepted run", "start_in", time.Until(time.Unix(0, as.GetStartUnixNs())))

	interval := time.Duration(as.GetIntervalMs()) * time.Millisecond
	if interval <= 0 {
		interval = p.Interval.D()
	}
	if interval <= 0 {
		interval = time.Second
	}
	rec := executor.NewRecorder()
	rec.SetObserver(a.cfg.OnSample)
	for _, ss := range as.GetShare().GetScenarios() {
		rec.Scenario(ss.GetScenario())
	}
	stats := newStatsSampler(&a.conns)
	var seq uint64
	emit := func(idx int64, final bool, at time.Time) {
		set, scen := rec.Swap(at)
		seq++
		a.out.addSnapshot(&surgev1.Snapshot{
			RunId: as.GetRunId(), AgentId: a.cfg.ID, Seq: seq, Epoch: as.GetEpoch(), Interval: idx,
			Series: set.ToProto(), Scenarios: scen, Agent: stats.sample(), Final: final,
		})
	}

	// Wait for the start, in this agent's clock.
	if d := time.Until(time.Unix(0, as.GetStartUnixNs())); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			emit(0, true, time.Now())
			a.event(as, surgev1.RunEvent_KIND_FINISHED, time.Now(), "stopped before the start")
			return
		case <-t.C:
		}
	}
	start := time.Now()
	a.event(as, surgev1.RunEvent_KIND_STARTED, start, "")
	log.Info("started run")

	client := httpclient.New(httpclient.Options{
		Allow:               a.allow,
		Resolver:            a.resolver,
		MaxIdleConnsPerHost: int(min(executor.PeakVUs(p, as.GetShare()), 1<<20)),
		Conns:               &a.conns,
	})
	defer client.Close()
	done := make(chan error, 1)
	go func() {
		done <- executor.RunShare(ctx, start, executor.ShareOptions{
			Plan: p, Share: as.GetShare(), Client: client, Recorder: rec, Logger: log,
		})
	}()

	var idx int64
	boundary := func() time.Time { return start.Add(time.Duration(idx+1) * interval) }
	t := time.NewTimer(time.Until(boundary()))
	defer t.Stop()
	for {
		select {
		case err = <-done:
			emit(idx, true, time.Now())
			switch {
			case err != nil:
				log.Warn("run failed", "err", err)
				a.event(as, surgev1.RunEvent_KIND_FAILED, time.Now(), fmt.Sprintf("agent %s: %v", a.cfg.ID, err))
			case errors.Is(ctx.Err(), context.Canceled):
				log.Info("run stopped")
				a.event(as, surgev1.RunEvent_KIND_FINISHED, time.Now(), "stopped")
			default:
				log.Info("run finished")
				a.event(as, surgev1.RunEvent_KIND_FINISHED, time.Now(), "")
			}
			return
		case <-t.C:
			emit(idx, false, boundary())
			idx++
			t.Reset(time.Until(boundary()))
		}
	}
}
