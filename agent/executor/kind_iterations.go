package executor

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/surgeload/surge/plan"
)

// iterations runs per-vu-iterations and shared-iterations: a fixed
// number of iterations on the share's VUs, bounded by max_duration.
type iterations struct{}

var _ kind = iterations{}

func (iterations) run(ctx context.Context, s *Scenario, start time.Time) error {
	return s.runIterations(ctx, start)
}

func (iterations) checkShare(name string, _ *plan.Scenario, ss plan.ScenarioShare) []error {
	var errs []error
	if ss.VUs < 0 || ss.Arrivals < 0 || ss.Arrivals > ss.TotalArrivals {
		errs = append(errs, fmt.Errorf("share: scenario %q: %d VUs, %d iterations of %d", name, ss.VUs, ss.Arrivals, ss.TotalArrivals))
	}
	if ss.Arrivals > 0 && ss.VUs == 0 {
		errs = append(errs, fmt.Errorf("share: scenario %q: %d iterations without a VU", name, ss.Arrivals))
	}
	return errs
}

func (iterations) peakVUs(_ *plan.Scenario, ss plan.ScenarioShare) int64 { return ss.VUs }

// runIterations runs per-vu-iterations and shared-iterations (k6
// semantics): the share's VUs start together; each runs its own
// `iterations` (per-vu) or takes the next of the share's iterations until
// none is left (shared). The scenario ends when every iteration is done,
// or at max_duration, when VUs get graceful_stop to finish and iterations
// never started count as dropped.
func (s *Scenario) runIterations(ctx context.Context, start time.Time) error {
	hard, cancelHard := context.WithCancel(ctx)
	defer cancelHard()
	soft, cancelSoft := context.WithCancel(hard)
	defer cancelSoft()
	vus := s.Share.VUs
	total := s.Share.Arrivals
	var (
		wg        sync.WaitGroup
		remaining atomic.Int64 // shared: iterations not yet taken
		notRun    atomic.Int64 // per-vu: iterations never started
		active    atomic.Int64
	)
	remaining.Store(total)
	s.Rec.SetGauges(func(time.Time) Gauges {
		return Gauges{ActiveVUs: active.Load(), AllocatedVUs: vus}
	})
	defer s.Rec.SetGauges(nil)
	perVU := int64(0)
	if vus > 0 && s.Plan.Executor == plan.PerVUIterations {
		perVU = total / vus
	}
	take := func(done int64) bool {
		if s.Plan.Executor == plan.PerVUIterations {
			return done < perVU
		}
		return remaining.Add(-1) >= 0
	}
	done := make(chan struct{})
	if s.sleepUntil(ctx, start) {
		for id := int64(1); id <= vus; id++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer s.retire(hard, id)
				var n int64
				defer func() {
					if perVU > n {
						notRun.Add(perVU - n)
					}
				}()
				for ; soft.Err() == nil && take(n); n++ {
					active.Add(1)
					s.Rec.Started()
					ok := s.Iterate(hard, id, time.Time{})
					active.Add(-1)
					if !ok {
						n++
						return
					}
					s.Rec.Completed()
				}
			}()
		}
	}
	go func() { wg.Wait(); close(done) }()
	// Wait for every iteration or for max_duration, then graceful stop.
	end := start.Add(s.Plan.Length())
	s.waitDone(ctx, done, end)
	cancelSoft()
	s.finish(ctx, done, end.Add(s.Plan.GracefulStop.D()), cancelHard)
	dropped := notRun.Load()
	if s.Plan.Executor == plan.SharedIterations {
		dropped += max(remaining.Load(), 0)
	}
	if ctx.Err() == nil && dropped > 0 {
		s.Rec.DroppedN(dropped)
	}
	return nil
}
