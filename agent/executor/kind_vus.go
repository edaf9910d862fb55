package executor

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/surgeload/surge/plan"
)

// vus runs constant-vus and ramping-vus (the closed model): VUs that
// loop iterations, as many as the share's curve says at each instant;
// VUs the curve removes finish their iteration or are interrupted when
// graceful_ramp_down expires.
type vus struct{}

var _ kind = vus{}

func (vus) run(ctx context.Context, s *Scenario, start time.Time) error {
	return s.runVUs(ctx, start)
}

// ramps tells ramping-vus (a curve through stage targets) from
// constant-vus (vus throughout).
func ramps(sc *plan.Scenario) bool { return sc.Executor == plan.RampingVUs }

func (vus) checkShare(name string, sc *plan.Scenario, ss plan.ScenarioShare) []error {
	var errs []error
	if !ramps(sc) {
		if ss.VUs < 0 {
			errs = append(errs, fmt.Errorf("share: scenario %q: %d VUs", name, ss.VUs))
		}
		return errs
	}
	if len(ss.StageTargets) != len(sc.Stages)+1 {
		errs = append(errs, fmt.Errorf("share: scenario %q: %d stage targets for %d stages, want start plus one per stage",
			name, len(ss.StageTargets), len(sc.Stages)))
	}
	for _, t := range ss.StageTargets {
		if t < 0 {
			errs = append(errs, fmt.Errorf("share: scenario %q: negative stage target %d", name, t))
			break
		}
	}
	return errs
}

func (vus) peakVUs(sc *plan.Scenario, ss plan.ScenarioShare) int64 {
	if !ramps(sc) {
		return ss.VUs
	}
	var peak int64
	for _, t := range ss.StageTargets {
		peak = max(peak, t)
	}
	return peak
}

// vusCurve returns the VU count of this agent's share at elapsed.
func (s *Scenario) vusCurve(elapsed time.Duration) int64 {
	if elapsed < 0 || elapsed >= s.Plan.Length() {
		return 0
	}
	if !ramps(s.Plan) {
		return s.Share.VUs
	}
	targets := s.Share.StageTargets
	var from time.Duration
	for i, st := range s.Plan.Stages {
		d := st.Duration.D()
		if elapsed < from+d && i+1 < len(targets) {
			a, b := float64(targets[i]), float64(targets[i+1])
			return int64(a + (b-a)*float64(elapsed-from)/float64(d))
		}
		from += d
	}
	return 0
}

// rampTick is how often a ramping-vus executor re-reads its curve.
const rampTick = 10 * time.Millisecond

// vuRun is one run of a VU-curve share: its running VUs, oldest first,
// and the VUs ramped down that have not yet finished.
type vuRun struct {
	s          *Scenario
	hard, soft context.Context // hard interrupts iterations; soft ends the loops
	wg         sync.WaitGroup
	mu         sync.Mutex
	running    []curveVU
	ramping    []leavingVU
	active     int64
	nextID     int64
}

// curveVU is a running VU: stop ends it after its iteration, cancel
// interrupts it.
type curveVU struct {
	stop   chan struct{}
	cancel context.CancelFunc
}

// leavingVU is a VU ramped down, interrupted at deadline if still running.
type leavingVU struct {
	cancel   context.CancelFunc
	deadline time.Time
}

func (s *Scenario) runVUs(ctx context.Context, start time.Time) error {
	hard, cancelHard := context.WithCancel(ctx)
	defer cancelHard()
	soft, cancelSoft := context.WithCancel(hard)
	defer cancelSoft()
	end := start.Add(s.Plan.Length())
	r := &vuRun{s: s, hard: hard, soft: soft}
	s.Rec.SetGauges(r.gauges)
	defer s.Rec.SetGauges(nil)

	if s.sleepUntil(ctx, start) {
		r.follow(ctx, start, end)
	}
	cancelSoft()
	done := make(chan struct{})
	go func() { r.wg.Wait(); close(done) }()
	s.finish(ctx, done, end.Add(s.Plan.GracefulStop.D()), cancelHard)
	r.mu.Lock()
	r.running, r.ramping = nil, nil
	r.mu.Unlock()
	return nil
}

func (r *vuRun) gauges(time.Time) Gauges {
	r.mu.Lock()
	defer r.mu.Unlock()
	return Gauges{ActiveVUs: r.active, AllocatedVUs: int64(len(r.running))}
}

// follow keeps the running VUs at the curve's count until end or until ctx
// ends: constant-vus sets it once, ramping-vus re-reads it every rampTick.
func (r *vuRun) follow(ctx context.Context, start, end time.Time) {
	s := r.s
	for {
		now := s.Clock.Now()
		if !now.Before(end) {
			return
		}
		want := s.vusCurve(now.Sub(start))
		r.mu.Lock()
		have := int64(len(r.running))
		r.mu.Unlock()
		for ; have < want; have++ {
			r.startVU()
		}
		for ; have > want; have-- {
			r.stopVU(now)
		}
		r.expire(now)
		next := end
		if ramps(s.Plan) {
			next = minTime(end, now.Add(rampTick))
		}
		if !s.sleepUntil(ctx, next) {
			return
		}
	}
}

// startVU starts a VU that loops iterations until it is stopped, the run's
// soft context ends, or an iteration is interrupted.
func (r *vuRun) startVU() {
	stop := make(chan struct{})
	vctx, cancel := context.WithCancel(r.hard)
	r.mu.Lock()
	r.running = append(r.running, curveVU{stop, cancel})
	r.nextID++
	id := r.nextID
	r.mu.Unlock()
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer cancel()
		defer r.s.retire(vctx, id)
		for {
			select {
			case <-stop:
				return
			case <-r.soft.Done():
				return
			default:
			}
			r.mu.Lock()
			r.active++
			r.mu.Unlock()
			r.s.Rec.Started()
			ok := r.s.Iterate(vctx, id, time.Time{})
			r.mu.Lock()
			r.active--
			r.mu.Unlock()
			if !ok {
				return
			}
			r.s.Rec.Completed()
		}
	}()
}

// stopVU stops the newest VU: it ends after its iteration, or is
// interrupted when graceful_ramp_down expires (k6 semantics).
func (r *vuRun) stopVU(now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := len(r.running)
	v := r.running[n-1]
	close(v.stop)
	r.running = r.running[:n-1]
	r.ramping = append(r.ramping, leavingVU{v.cancel, now.Add(r.s.Plan.GracefulRampDown.D())})
}

// expire interrupts ramped-down VUs past their graceful_ramp_down.
func (r *vuRun) expire(now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	kept := r.ramping[:0]
	for _, l := range r.ramping {
		if now.Before(l.deadline) {
			kept = append(kept, l)
			continue
		}
		l.cancel()
	}
	r.ramping = kept
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
