package executor

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/surgeload/surge/agent/httpclient"
	"github.com/surgeload/surge/plan"
)

// DefaultLateBound is how late an arrival may be sent before it counts as
// deficit.
const DefaultLateBound = 10 * time.Millisecond

// IterFunc runs one iteration. intended is the arrival's intended start
// (open model) or the zero time (closed model). It reports whether the
// iteration ran to its end (false when ctx interrupted it).
type IterFunc func(ctx context.Context, vu int64, intended time.Time) bool

// Scenario is one scenario's executor: the plan's options (data) and the
// agent's share, run by Run.
type Scenario struct {
	Name  string
	Plan  *plan.Scenario
	Share plan.ScenarioShare
	// Pacer paces arrival-rate executors; nil uses NewPacer with Seed.
	Pacer   Pacer
	Seed    uint64
	Iterate IterFunc
	Rec     *ScenarioRecorder
	Clock   Clock
	// LateBound: see DefaultLateBound; zero uses it.
	LateBound time.Duration
	// PacingSpin: arrival-rate executors on the real clock wake this long
	// before each arrival and busy-wait the rest (0 to MaxPacingSpin; 0:
	// they sleep until the arrival). See newSpinWaiter.
	PacingSpin time.Duration
	Logger     *slog.Logger
	// Hold, if set, is asked before each open-model arrival takes a VU:
	// true means the arrival is held (not sent, not dropped, not late) and
	// Hold has accounted for it. The agent holds arrivals while its run is
	// suspended after a pause.
	Hold func() bool
	// Warm, if set, opens a VU's connections: arrival-rate executors warm
	// their pre-allocated VUs at the start, so that the first second does
	// not dial a connection per arrival while the pool grows. A VU takes
	// arrivals once warm; the first arrival waits for the warm-up at most
	// warmWait.
	Warm WarmFunc
	// Retire, if set, ends a VU: the executors call it when a VU leaves
	// (ramped down, its iterations done, the scenario over), with the
	// context its iterations ran in, to run its on_stop and drop its
	// connections and cookies.
	Retire RetireFunc

	// client is the scenario's HTTP client, closed when Run returns.
	client *httpclient.Client
}

// Run runs the scenario from runStart (plus the scenario's start_time)
// until its schedule ends and in-flight iterations finished or its graceful
// stop expired, or until ctx ends. It returns only when every goroutine it
// started has returned.
func (s *Scenario) Run(ctx context.Context, runStart time.Time) error {
	if s.client != nil {
		defer s.client.Close()
	}
	if s.Clock == nil {
		s.Clock = RealClock{}
	}
	if s.LateBound == 0 {
		s.LateBound = DefaultLateBound
	}
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	start := runStart.Add(s.Plan.StartTime.D())
	k, ok := kindOf(s.Plan)
	if !ok {
		return fmt.Errorf("scenario %s: unknown executor %q", s.Name, s.Plan.Executor)
	}
	return k.run(ctx, s, start)
}

// retire ends the VU (see Retire).
func (s *Scenario) retire(ctx context.Context, vu int64) {
	if s.Retire != nil {
		s.Retire(ctx, vu)
	}
}

// sleepUntil waits for t on the scenario's clock; false if ctx ended first.
func (s *Scenario) sleepUntil(ctx context.Context, t time.Time) bool {
	d := t.Sub(s.Clock.Now())
	if d <= 0 {
		return ctx.Err() == nil
	}
	tm := s.Clock.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-tm.C():
		return true
	}
}

// finish waits for done until deadline (the end of the graceful stop), then
// cancels hard and waits for done.
func (s *Scenario) finish(ctx context.Context, done <-chan struct{}, deadline time.Time, cancelHard context.CancelFunc) {
	s.waitDone(ctx, done, deadline)
	cancelHard()
	<-done
}

// waitDone waits for done, the end of ctx or deadline, whichever is first.
func (s *Scenario) waitDone(ctx context.Context, done <-chan struct{}, deadline time.Time) {
	d := deadline.Sub(s.Clock.Now())
	if d <= 0 {
		return
	}
	tm := s.Clock.NewTimer(d)
	defer tm.Stop()
	select {
	case <-done:
	case <-ctx.Done():
	case <-tm.C():
	}
}
