package controller

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/surgeload/surge/controller/aggregate"
	"github.com/surgeload/surge/controller/sink"
	surgev1 "github.com/surgeload/surge/gen/surge/v1"
)

// openSinks starts the run store sink (always) and the InfluxDB and
// Prometheus remote-write sinks (when configured).
func (c *Controller) openSinks() (sink.Fanout, error) {
	sinks := sink.Fanout{sink.NewRunStore(c.store, 0, c.log)}
	if c.cfg.Influx != nil {
		icfg := *c.cfg.Influx
		icfg.Spill = c.store
		icfg.Logger = c.log
		in, err := sink.NewInflux(icfg)
		if err != nil {
			_ = sinks.Close(context.Background())
			return nil, fmt.Errorf("controller: %w", err)
		}
		c.log.Info("writing results to influxdb", slog.Any("influx", icfg))
		sinks = append(sinks, in)
	}
	if c.cfg.PromRW != nil {
		pcfg := *c.cfg.PromRW
		pcfg.Spill, pcfg.Logger, pcfg.Hold = c.store, c.log, aggregate.DefaultRetain
		pr, err := sink.NewPromRW(pcfg)
		if err != nil {
			_ = sinks.Close(context.Background())
			return nil, fmt.Errorf("controller: %w", err)
		}
		c.log.Info("writing results to prometheus", slog.Any("prometheus", pcfg))
		sinks = append(sinks, pr)
	}
	return sinks, nil
}

// closeSinks closes the sinks once, waiting at most SinkCloseTimeout.
func (c *Controller) closeSinks() error {
	if c.sinks == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.SinkCloseTimeout)
	defer cancel()
	err := c.sinks.Close(ctx)
	c.sinks = nil
	return err
}

// sinkInfo identifies r to the sinks.
func (r *run) sinkInfo() sink.RunInfo {
	return sink.RunInfo{ID: r.id, PlanName: r.planName, Start: r.start, Interval: r.interval, Tags: r.plan.Tags}
}

// sinkInterval hands emitted (or, with rewrite, re-merged) interval i to the
// sinks as encoded series the sinks own; p is nil on rewrites.
func (r *run) sinkInterval(i int64, p *surgev1.Progress, rewrite bool, now time.Time) {
	regions, ok := r.agg.IntervalSeries(i)
	if !ok {
		if rewrite {
			r.lateUnsunk++
		}
		return
	}
	d := sink.IntervalData{
		Run: r.sinkInfo(), Index: i, Start: r.start.Add(time.Duration(i) * r.interval),
		EmittedAt: now, Rewrite: rewrite, Regions: regions,
	}
	d.Scenarios, d.WebSockets, _ = r.agg.IntervalStats(i)
	if p != nil {
		d.Progress = proto.CloneOf(p)
	}
	r.c.sinks.Interval(d)
}

// sinkLate re-sends the interval a late snapshot was merged into, so its
// points are rewritten (same series and timestamp).
func (r *run) sinkLate(s *surgev1.Snapshot, now time.Time) {
	if r.agg.Emitted(s.GetInterval()) {
		r.sinkInterval(s.GetInterval(), nil, true, now)
	}
}

// sinkAgent hands an agent's own stats of one snapshot to the sinks.
func (r *run) sinkAgent(s *surgev1.Snapshot) {
	a := r.members[s.GetAgentId()]
	if a == nil {
		return
	}
	r.c.sinks.Agent(sink.AgentData{
		Run: r.sinkInfo(), Agent: a.id, Region: a.region, Index: s.GetInterval(),
		Start: r.start.Add(time.Duration(s.GetInterval()) * r.interval),
		Stats: proto.CloneOf(s.GetAgent()), Scenarios: cloneAll(s.GetScenarios()),
	})
}

// sinkNotes are the sinks' notes for r's summary.
func (r *run) sinkNotes() []string {
	notes := r.c.sinks.Notes(r.id)
	if r.lateUnsunk > 0 {
		notes = append(notes, fmt.Sprintf("%d late snapshots arrived after their interval was released: they count in the whole run but not in their interval's stored and InfluxDB points", r.lateUnsunk))
	}
	return notes
}

func cloneAll[T proto.Message](in []T) []T {
	out := make([]T, len(in))
	for i, m := range in {
		out[i] = proto.CloneOf(m)
	}
	return out
}

// sinkEnded hands the final summary to the sinks.
func (r *run) sinkEnded(sum *surgev1.RunSummary) {
	r.c.sinks.RunEnded(r.sinkInfo(), proto.CloneOf(sum))
}
