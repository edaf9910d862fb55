package controller

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
)

// aggEpoch is the epoch the aggregation is configured with: the run goroutine
// checks each agent's epoch itself (epochs move per agent at a reshare) and
// hands the aggregation snapshots stamped with this one.
const aggEpoch = 1

// assignMsg is a's current Assign: its own share, the parts it took over,
// at its epoch, with the start in its own clock.
func (r *run) assignMsg(a *runAgent) *surgev1.ControllerMessage {
	share := &surgev1.Share{Scenarios: a.share.GetScenarios(), Takeovers: a.takeovers, Rps: a.share.GetRps()}
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
func (r *run) attach(in attached, now time.Time) bool {
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
		r.deliver(c.handlersCtx, processGone{id: id, incarnation: incarnation})
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
		r.deliver(ctx, attached{from: a, claimed: claim, claimEpoch: e})
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
