package controller

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/surgeload/surge/controller/aggregate"
	surgev1 "github.com/surgeload/surge/gen/surge/v1"
)

// runInput is one message to a run goroutine: one of the types below,
// each applied by its own method on the run goroutine. The unexported
// method seals it.
type runInput interface {
	// apply handles the input; true means the run ended.
	apply(r *run, now time.Time) bool
}

var (
	_ runInput = snapshotIn{}
	_ runInput = eventIn{}
	_ runInput = streamLost{}
	_ runInput = attached{}
	_ runInput = processGone{}
	_ runInput = stopRequest{}
	_ runInput = summaryRequest{}
)

// snapshotIn is a snapshot an agent's stream received.
type snapshotIn struct {
	snap *surgev1.Snapshot
	from *agentConn
}

func (in snapshotIn) apply(r *run, now time.Time) bool {
	r.handleSnapshot(in.snap, in.from, now)
	return r.checkEnd(now)
}

// eventIn is a run event (accepted, rejected, started, ...) from an agent.
type eventIn struct {
	ev   *surgev1.RunEvent
	from *agentConn
}

func (in eventIn) apply(r *run, now time.Time) bool { return r.handleEvent(in.ev, in.from, now) }

// streamLost: the agent's stream from ended.
type streamLost struct{ from *agentConn }

func (in streamLost) apply(r *run, now time.Time) bool {
	a := r.members[in.from.id]
	if a == nil || a.conn != in.from || a.lost {
		return false
	}
	if r.phase == phasePending {
		a.lost = true
		r.agg.MarkGone(a.id)
		r.failPending(fmt.Sprintf("agent %s (%s) disconnected before accepting the run", a.id, a.region))
		return true
	}
	if r.agg.Done(a.id) {
		return false
	}
	// The stream is the first signal; gossip or the confirm window
	// decide (see tick and processGone).
	if a.suspectUntil.IsZero() {
		a.suspectUntil = now.Add(r.c.cfg.AgentLossConfirm)
		r.log.Warn("agent stream lost; suspect", slog.String("agent", a.id), slog.Duration("confirm", r.c.cfg.AgentLossConfirm))
	}
	return false
}

// attached: from (re)connected; claimed says its Hello listed the run, at
// claimEpoch.
type attached struct {
	from       *agentConn
	claimed    bool
	claimEpoch uint64
}

func (in attached) apply(r *run, now time.Time) bool { return r.attach(in, now) }

// processGone: gossip says the agent's process (id, incarnation) left or
// died.
type processGone struct{ id, incarnation string }

func (in processGone) apply(r *run, now time.Time) bool {
	a := r.members[in.id]
	if a == nil || a.lost || a.incarnation != in.incarnation || r.phase == phasePending {
		return false
	}
	if a.suspectUntil.IsZero() {
		return false // the stream is alive: it outranks gossip
	}
	return r.lose(a, now, "its stream ended and gossip confirmed it gone")
}

// stopRequest: a client asked to stop the run.
type stopRequest struct{}

func (stopRequest) apply(r *run, now time.Time) bool {
	if r.phase == phasePending {
		r.failPending("run stopped before it started")
		return true
	}
	r.beginStop(StatusStopped, "stopped on request", now)
	return r.checkEnd(now)
}

// summaryRequest asks for the live summary, sent on reply.
type summaryRequest struct{ reply chan *surgev1.RunSummary }

func (in summaryRequest) apply(r *run, now time.Time) bool {
	in.reply <- r.summary(r.liveStatus(), now)
	return false
}

func (r *run) handleEvent(ev *surgev1.RunEvent, from *agentConn, now time.Time) bool {
	a := r.members[from.id]
	if a == nil {
		r.log.Warn("run event from an agent not in the run", slog.String("agent", from.id))
		return false
	}
	if ev.GetEpoch() != r.epoch {
		r.log.Warn("run event with a stale epoch", slog.String("agent", a.id), slog.Uint64("epoch", ev.GetEpoch()))
		return false
	}
	switch ev.GetKind() {
	case surgev1.RunEvent_KIND_ACCEPTED:
		a.accepted = true
		if r.phase == phasePending && r.allAccepted() {
			r.phase = phaseRunning
			if err := r.c.store.Put(r.storeRecord(StatusRunning, "", nil, nil)); err != nil {
				r.log.Error("store run", slog.Any("err", err))
			}
			r.persist()
			r.accepted <- nil
			r.c.sinks.RunStarted(r.sinkInfo())
		}
	case surgev1.RunEvent_KIND_REJECTED:
		if ev.GetPartId() != "" && r.phase != phasePending {
			r.refusePart(a, ev.GetPartId(), ev.GetMessage())
			return false
		}
		msg := fmt.Sprintf("agent %s (%s) rejected the run: %s", a.id, a.region, ev.GetMessage())
		if r.phase == phasePending {
			r.failPending(msg)
			return true
		}
		a.failed = msg
		r.agg.MarkGone(a.id)
		r.note("%s", msg)
	case surgev1.RunEvent_KIND_STARTED:
		at := ev.GetAtUnixNs()
		if at == 0 {
			at = now.UnixNano() - from.offset()
		}
		a.startedNs = at + from.offset()
	case surgev1.RunEvent_KIND_FINISHED:
		if a.finishedAt.IsZero() {
			a.finishedAt = now
		}
	case surgev1.RunEvent_KIND_FAILED:
		a.failed = fmt.Sprintf("agent %s (%s) failed: %s", a.id, a.region, ev.GetMessage())
		r.agg.MarkGone(a.id)
		r.note("%s", a.failed)
	}
	return r.checkEnd(now)
}

func (r *run) allAccepted() bool {
	for _, a := range r.members {
		if !a.accepted {
			return false
		}
	}
	return true
}

func (r *run) handleSnapshot(s *surgev1.Snapshot, from *agentConn, now time.Time) {
	a := r.members[s.GetAgentId()]
	if a != nil {
		if s.GetEpoch() == 0 || s.GetEpoch() > a.epoch {
			r.c.stats.snapshotsRejected.Add(1)
			r.log.Warn("snapshot rejected: epoch not assigned to the agent", slog.String("agent", a.id),
				slog.Uint64("epoch", s.GetEpoch()), slog.Uint64("assigned", a.epoch))
			return
		}
		// Epochs are checked here per agent; the aggregation sees one. s is
		// the run goroutine's to change: the gateway's recvLoop hands each
		// received snapshot over and never touches it again.
		s.Epoch = aggEpoch
		if a.lost {
			// Measured by a fenced agent (before it was fenced: a fenced
			// agent's gate holds every arrival). The requests happened, so
			// they are merged, and flagged. Its arrivals from the interval
			// it was declared lost on belong to the agents that took its
			// share over (the gap is already deficit): what it counted as
			// dropped or deficit there is not counted again.
			r.fencedLate[a.id]++
			if s.GetInterval() >= a.lostAt {
				for _, sc := range s.GetScenarios() {
					sc.Dropped, sc.Deficit = 0, 0
				}
			}
		}
	}
	out, err := r.agg.Add(s)
	if err != nil {
		r.c.stats.snapshotsRejected.Add(1)
		r.log.Warn("snapshot rejected", slog.String("agent", s.GetAgentId()), slog.Uint64("seq", s.GetSeq()), slog.Any("err", err))
		return
	}
	if out != aggregate.Duplicate {
		r.account(a, s)
		noteEnd(a, s, from)
	}
	switch out {
	case aggregate.Duplicate:
		r.c.stats.snapshotsDup.Add(1)
	case aggregate.MergedLate:
		r.c.stats.snapshotsLate.Add(1)
		if i := s.GetInterval(); r.agg.Emitted(i) && r.agg.Retained(i) {
			// Rewritten at most once per interval period (flushLate),
			// however many late snapshots it takes: encoding the interval
			// per late snapshot had a controller that fell behind fall
			// further.
			if r.lateDirty == nil {
				r.lateDirty = map[int64]struct{}{}
			}
			r.lateDirty[i] = struct{}{}
		} else {
			r.sinkLate(s, now) // released: counted as not sunk
		}
	}
	if out != aggregate.Duplicate {
		r.sinkAgent(s)
	}
	r.ack(s, from, out == aggregate.Duplicate)
	if out != aggregate.Duplicate {
		r.emitReady(now)
	}
}

// ack acknowledges a merged (or duplicate) snapshot once it is durable: the
// journal's writer sends the ack after the group commit that holds the
// snapshot (for a duplicate, every write queued before it: the original's
// included), so an acked snapshot survives a crash. A failed
// journal write is logged and counted, and the snapshot acked all the same:
// it is merged, and only a restart would miss it.
func (r *run) ack(s *surgev1.Snapshot, from *agentConn, dup bool) {
	m := &surgev1.ControllerMessage{Msg: &surgev1.ControllerMessage_SnapshotAck{SnapshotAck: &surgev1.SnapshotAck{RunId: r.id, Seq: s.GetSeq()}}}
	switch {
	case r.c.journal == nil:
		from.send(m)
	case dup:
		r.c.journal.After(func() { from.send(m) })
	default:
		log := r.log
		r.c.journal.PutSnapshot(r.id, s, func(err error) {
			if err != nil {
				log.Error("journal snapshot", slog.Any("err", err))
			}
			from.send(m)
		})
	}
}
