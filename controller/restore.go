package controller

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/surgeload/surge/controller/aggregate"
	"github.com/surgeload/surge/controller/journal"
	surgev1 "github.com/surgeload/surge/gen/surge/v1"
	"github.com/surgeload/surge/plan"
)

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
		b, err := proto.Marshal(&surgev1.Share{Scenarios: a.share.GetScenarios(), Takeovers: a.takeovers, Rps: a.share.GetRps()})
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
			share: &surgev1.Share{Scenarios: sh.GetScenarios(), Rps: sh.GetRps()}, takeovers: sh.GetTakeovers(),
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
