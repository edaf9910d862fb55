// Package sink defines where the controller sends a run's results as they are
// merged, after k6's output plug-ins: a small Sink interface with optional
// capabilities, the run store sink (always on) and the InfluxDB sink.
//
// The controller's per-run merge loop calls the sinks; every method must
// return at once (enqueue, never block on I/O) and must not keep or change
// what it is given beyond reading it: the data handed over is immutable.
package sink

import (
	"context"
	"errors"
	"time"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
)

// RunInfo identifies a run to the sinks.
type RunInfo struct {
	ID       string
	PlanName string
	// Start is the run's start (controller clock); interval i covers
	// [Start + i*Interval, Start + (i+1)*Interval).
	Start    time.Time
	Interval time.Duration
	// Tags are the run's tags, put on every point beside run and plan.
	Tags map[string]string
}

// IntervalData is one emitted interval: the exact merge of every agent's
// snapshot per region. It is emitted again (Rewrite set, same Index and
// Start) when a late snapshot was merged into it.
type IntervalData struct {
	Run   RunInfo
	Index int64
	// Start is the interval's start: the timestamp of its points.
	Start time.Time
	// EmittedAt is when the merge loop emitted it.
	EmittedAt time.Time
	Rewrite   bool
	// Regions maps a region to its merged series, sorted by key. There is
	// no "all" entry: sinks merge the regions themselves when they need it.
	Regions map[string][]*surgev1.Series
	// Scenarios and WebSockets are the interval's merged scenario stats
	// (connections, iterations, VUs) and WebSocket stats per region, as
	// Regions: no "all" entry. Counters are summed over agents; gauges
	// (conns_open, VUs, sessions_active) sum each agent's latest report.
	Scenarios  map[string][]*surgev1.ScenarioStats
	WebSockets map[string][]*surgev1.WebSocketStats
	// Progress is the interval's live progress (rates per region and all,
	// threshold results); nil on rewrites.
	Progress *surgev1.Progress
}

// AgentData is one agent's own stats for one interval, from its snapshot.
type AgentData struct {
	Run           RunInfo
	Agent, Region string
	Index         int64
	Start         time.Time
	Stats         *surgev1.AgentStats
	Scenarios     []*surgev1.ScenarioStats
}

// Sink receives a run's results. Methods other than Close must not block.
type Sink interface {
	// RunStarted is called once every agent accepted the run.
	RunStarted(RunInfo)
	// Interval is called for every emitted (or rewritten) interval.
	Interval(IntervalData)
	// RunEnded is called with the final summary.
	RunEnded(RunInfo, *surgev1.RunSummary)
	// Close writes what is queued until ctx is done, then releases the
	// sink. No method may be called after Close.
	Close(ctx context.Context) error
}

// AgentSink is an optional capability: per-agent stats per interval.
type AgentSink interface {
	Agent(AgentData)
}

// Reporter is an optional capability: notes for a run's summary (data the
// sink dropped or still holds back).
type Reporter interface {
	Notes(runID string) []string
}

// Fanout sends to every sink in order.
type Fanout []Sink

var (
	_ Sink      = Fanout(nil)
	_ AgentSink = Fanout(nil)
	_ Reporter  = Fanout(nil)
)

// RunStarted implements Sink.
func (f Fanout) RunStarted(r RunInfo) {
	for _, s := range f {
		s.RunStarted(r)
	}
}

// Interval implements Sink.
func (f Fanout) Interval(d IntervalData) {
	for _, s := range f {
		s.Interval(d)
	}
}

// RunEnded implements Sink.
func (f Fanout) RunEnded(r RunInfo, sum *surgev1.RunSummary) {
	for _, s := range f {
		s.RunEnded(r, sum)
	}
}

// Agent implements AgentSink for the sinks that have it.
func (f Fanout) Agent(d AgentData) {
	for _, s := range f {
		if a, ok := s.(AgentSink); ok {
			a.Agent(d)
		}
	}
}

// Notes implements Reporter for the sinks that have it.
func (f Fanout) Notes(runID string) []string {
	var out []string
	for _, s := range f {
		if r, ok := s.(Reporter); ok {
			out = append(out, r.Notes(runID)...)
		}
	}
	return out
}

// Close closes every sink (in reverse order), joining their errors.
func (f Fanout) Close(ctx context.Context) error {
	var errs []error
	for i := len(f) - 1; i >= 0; i-- {
		errs = append(errs, f[i].Close(ctx))
	}
	return errors.Join(errs...)
}
