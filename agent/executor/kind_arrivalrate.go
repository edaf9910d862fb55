package executor

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/surgeload/surge/plan"
)

// arrivalRate runs constant-arrival-rate and ramping-arrival-rate (the
// open model): an arrival loop paced by the share's Pacer hands each
// arrival to an idle VU of a pool that grows up to max_vus, or drops it.
type arrivalRate struct{}

var _ kind = arrivalRate{}

func (arrivalRate) run(ctx context.Context, s *Scenario, start time.Time) error {
	return s.runArrivals(ctx, start)
}

func (arrivalRate) checkShare(name string, _ *plan.Scenario, ss plan.ScenarioShare) []error {
	var errs []error
	if ss.Arrivals < 0 || ss.Arrivals > ss.TotalArrivals {
		errs = append(errs, fmt.Errorf("share: scenario %q: %d arrivals of %d", name, ss.Arrivals, ss.TotalArrivals))
	}
	if ss.PreAllocVUs < 0 || ss.MaxVUs < 0 {
		errs = append(errs, fmt.Errorf("share: scenario %q: negative VUs", name))
	}
	return errs
}

func (arrivalRate) peakVUs(_ *plan.Scenario, ss plan.ScenarioShare) int64 {
	return max(ss.MaxVUs, ss.PreAllocVUs)
}

// arrivalRun is one run of an arrival-rate share: its pacer, the log of
// the arrivals handed over, and the VU pool with its goroutines.
type arrivalRun struct {
	s       *Scenario
	start   time.Time
	pacer   Pacer
	counter DueCounter // nil when the pacer cannot count what is due
	starts  *startLog
	pool    *vuPool
	hard    context.Context // interrupts iterations at the end of graceful stop
	wg      sync.WaitGroup  // every goroutine of the run
	warming sync.WaitGroup  // the pre-allocated VUs' warm-ups
}

func (s *Scenario) runArrivals(ctx context.Context, start time.Time) error {
	r := s.newArrivalRun(start)
	defer s.Rec.SetStarted(nil)
	end := start.Add(s.Plan.Length())

	hard, cancelHard := context.WithCancel(ctx)
	defer cancelHard()
	r.hard = hard
	s.Rec.SetGauges(r.gauges)
	defer s.Rec.SetGauges(nil)
	r.preAllocate()

	warmed := make(chan struct{})
	r.wg.Go(func() { r.warming.Wait(); close(warmed) })
	wait := newSpinWaiter(ctx, s.Clock, s.PacingSpin)
	if s.warmed(ctx, warmed, start) && wait.until(start) {
		r.loop(ctx, wait)
	}
	r.starts.pending.Store(math.MaxInt64)
	wait.close()

	r.pool.closeJobs()
	done := make(chan struct{})
	go func() { r.wg.Wait(); close(done) }()
	s.finish(ctx, done, end.Add(s.Plan.GracefulStop.D()), cancelHard)
	return nil
}

// newArrivalRun sets up the run's pacer and pool and hands the recorder
// what it reads of them: the arrivals scheduled and started by an instant.
func (s *Scenario) newArrivalRun(start time.Time) *arrivalRun {
	r := &arrivalRun{s: s, start: start, pacer: s.Pacer}
	if r.pacer == nil {
		r.pacer = NewPacer(s.Plan, s.Share.Arrivals, s.Share.TotalArrivals, s.Seed)
	}
	r.counter, _ = r.pacer.(DueCounter)
	if r.counter != nil {
		s.Rec.SetScheduled(func(at time.Time) int64 {
			if at.Before(start) {
				return 0
			}
			return r.counter.DueBy(at.Sub(start))
		})
	}
	r.starts = &startLog{}
	r.starts.pending.Store(start.UnixNano())
	s.Rec.SetStarted(r.starts.startedBy)
	r.pool = &vuPool{max: max(s.Share.MaxVUs, s.Share.PreAllocVUs), freed: make(chan struct{}, 1)}
	return r
}

func (r *arrivalRun) gauges(at time.Time) Gauges {
	active, allocated := r.pool.gauges()
	return Gauges{ActiveVUs: active, AllocatedVUs: allocated, TargetRate: r.pacer.Rate(at.Sub(r.start))}
}

// preAllocate starts the share's pre-allocated VUs, the first warmCount of
// them warming their connections before they take arrivals.
func (r *arrivalRun) preAllocate() {
	r.pool.mu.Lock()
	warm := r.s.warmCount(r.start)
	for i := range r.s.Share.PreAllocVUs {
		r.runVU(r.pool.grow(false, i >= warm), i < warm)
	}
	r.pool.mu.Unlock()
}

// runVU starts v's goroutine: it warms v first when warm is set, then runs
// the iterations handed to it until its jobs are closed.
func (r *arrivalRun) runVU(v *vuSlot, warm bool) {
	if warm {
		r.warming.Add(1)
	}
	r.wg.Go(func() {
		if warm {
			r.s.Warm(r.hard, v.id)
			r.pool.ready(v)
			r.warming.Done()
		}
		for intended := range v.jobs {
			if r.s.Iterate(r.hard, v.id, intended) {
				r.s.Rec.Completed()
			}
			r.pool.put(v)
		}
		r.s.retire(r.hard, v.id)
	})
}

// loop hands each arrival to a VU at its intended time until the pacer
// stops or ctx ends; arrivals due but never sent when ctx ended are
// deficit.
func (r *arrivalRun) loop(ctx context.Context, wait waiter) {
	s := r.s
	var issued int64
	for n := int64(0); ; n++ {
		due, stop := r.pacer.Next(n)
		if stop {
			break
		}
		intended := r.start.Add(due)
		r.starts.pending.Store(intended.UnixNano())
		if !wait.until(intended) {
			break
		}
		issued++
		if s.Hold != nil && s.Hold() {
			continue
		}
		v, fresh := s.takeVU(ctx, r.pool, intended)
		if v == nil {
			s.Rec.Dropped()
			continue
		}
		if fresh {
			r.runVU(v, false)
		}
		late := s.Clock.Now().Sub(intended)
		s.Rec.Arrival(late, late > s.LateBound)
		r.starts.add(intended)
		v.jobs <- intended
	}
	if ctx.Err() != nil && r.counter != nil {
		// Stopped: arrivals already due but never sent are deficit.
		if due := r.counter.DueBy(s.Clock.Now().Sub(r.start)); due > issued {
			s.Rec.Deficit(due - issued)
		}
	}
}

// growLate is how late an arrival may be and still grow the VU pool at
// once when no VU is idle (see takeVU).
const growLate = time.Millisecond

// takeVU returns a VU for the arrival intended at intended: an idle one,
// else a new one (up to max VUs, k6's semantics), else nil (a dropped
// iteration). An arrival on time (less than growLate late) grows the pool
// at once when no VU is idle. A later one first waits for a VU to come
// back, until it would be the late bound late. Past the late bound the
// pool grows by at most one VU per catchUpWait; otherwise the arrival
// waits that long for a VU, unless the loop has been past the late bound
// for more than catchUpLimit (since it was last on time): then it is
// dropped. Growing the pool dials a connection, which costs more CPU
// than waiting for a VU whose request is about to end, and growing by a VU
// per arrival after a stall fed on itself; past catchUpLimit the agent
// cannot keep up and waiting would only grow the lateness every latency
// includes. Both waiting and dropping count as deficit.
func (s *Scenario) takeVU(ctx context.Context, pool *vuPool, intended time.Time) (*vuSlot, bool) {
	now := s.Clock.Now()
	late := now.Sub(intended)
	switch {
	case late < growLate:
		pool.behind = time.Time{} // caught up
	case late >= s.LateBound && pool.behind.IsZero():
		pool.behind = now
	}
	if v, fresh := pool.get(late < growLate); v != nil || late < growLate {
		return v, fresh
	}
	wait := s.LateBound - late
	behind := wait <= 0
	if behind {
		if now.Sub(pool.lateGrow) >= catchUpWait {
			if v, fresh := pool.get(true); v != nil {
				pool.lateGrow = now
				return v, fresh
			}
		}
		if now.Sub(pool.behind) > catchUpLimit {
			return nil, false
		}
		wait = catchUpWait
	}
	tm := s.Clock.NewTimer(wait)
	v := pool.await(ctx, tm)
	tm.Stop()
	if v != nil {
		return v, false
	}
	v, fresh := pool.get(true)
	if fresh && behind {
		pool.lateGrow = s.Clock.Now()
	}
	return v, fresh
}

// catchUpWait is how often an arrival past the late bound may grow the
// pool, and how long it waits for a VU to come back when it may not (see
// takeVU).
const catchUpWait = time.Millisecond

// catchUpLimit is how long the arrival loop may stay past the late bound
// waiting for VUs (catching up after a stall) before it drops the
// arrivals that find none (it cannot keep up).
const catchUpLimit = 100 * time.Millisecond

// An arrival-rate executor run warmAllLead or more before its start warms
// all its pre-allocated VUs (an agent launches its parts when they are
// assigned, a second or more ahead); one run later (a takeover part at a
// reshare) warms warmAhead of its peak rate's arrivals' worth, because
// each warm-up is a dial that competes with the first arrivals for the CPU
// (the other pre-allocated VUs open their connection on their first
// arrival).
const (
	warmAllLead = 100 * time.Millisecond
	warmAhead   = 10 * time.Millisecond
)

// warmCount is how many pre-allocated VUs the scenario warms.
func (s *Scenario) warmCount(start time.Time) int64 {
	pre := s.Share.PreAllocVUs
	switch {
	case s.Warm == nil || s.Share.TotalArrivals <= 0:
		return 0
	case start.Sub(s.Clock.Now()) >= warmAllLead:
		return pre
	}
	rate := s.Plan.PeakRate() * float64(s.Share.Arrivals) / float64(s.Share.TotalArrivals)
	return min(pre, max(1, int64(math.Ceil(rate*warmAhead.Seconds()))))
}

// warmWait bounds the wait of the first arrival for the pre-allocated
// VUs' warm-up: well under DefaultLateBound, so that the arrivals it
// delays are late, not deficit. VUs still warming then join the idle VUs
// when they are done.
const warmWait = 5 * time.Millisecond

// warmed waits until done is closed (the warm-up of the pre-allocated VUs
// ended), at most until warmWait past start; false if ctx ended first.
func (s *Scenario) warmed(ctx context.Context, done <-chan struct{}, start time.Time) bool {
	if s.Warm == nil {
		return ctx.Err() == nil
	}
	tm := s.Clock.NewTimer(max(start.Sub(s.Clock.Now()), 0) + warmWait)
	defer tm.Stop()
	select {
	case <-done:
	case <-tm.C():
	case <-ctx.Done():
	}
	return ctx.Err() == nil
}
