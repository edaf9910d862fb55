package executor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/surgeload/surge/agent/httpclient"
	surgev1 "github.com/surgeload/surge/gen/surge/v1"
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
	Share *surgev1.ScenarioShare
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
	// not open a connection per arrival, each growing the VU pool while the
	// others dial (at 10k/s that grew 256 VUs to 2048 and dropped arrivals).
	// A VU takes arrivals once warm; the first arrival waits for the
	// warm-up at most warmWait.
	Warm WarmFunc

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
	switch s.Plan.Executor {
	case plan.ConstantArrivalRate, plan.RampingArrivalRate:
		return s.runArrivals(ctx, start)
	case plan.ConstantVUs, plan.RampingVUs:
		return s.runVUs(ctx, start)
	case plan.PerVUIterations, plan.SharedIterations:
		return s.runIterations(ctx, start)
	}
	return fmt.Errorf("scenario %s: unknown executor %q", s.Name, s.Plan.Executor)
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
	d := deadline.Sub(s.Clock.Now())
	if d > 0 {
		tm := s.Clock.NewTimer(d)
		select {
		case <-done:
		case <-ctx.Done():
		case <-tm.C():
		}
		tm.Stop()
	}
	cancelHard()
	<-done
}

// vuSlot is one VU of an arrival-rate executor: a goroutine that runs the
// iterations handed to it.
type vuSlot struct {
	id   int64
	jobs chan time.Time // intended times; capacity 1
}

// vuPool holds an arrival-rate executor's VUs. Idle VUs are a stack: the
// VU that finished last (its connection warm, its stack hot) takes the
// next arrival, and VUs beyond the working set stay idle (their
// connections never opened).
type vuPool struct {
	// freed is signalled when a VU becomes idle (see await).
	freed     chan struct{}
	mu        sync.Mutex
	idle      []*vuSlot
	all       []*vuSlot
	allocated int64
	active    int64
	max       int64
	// The arrival loop's alone (see takeVU): when an arrival past the
	// late bound last grew the pool, and when the loop went past the late
	// bound since it was last on time (zero: it has not).
	lateGrow, behind time.Time
}

// get returns an idle VU marked active, or a new one when the pool may
// grow (fresh: its goroutine is to be started), or nil.
func (p *vuPool) get(grow bool) (v *vuSlot, fresh bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := len(p.idle); n > 0 {
		v = p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.active++
		return v, false
	}
	if !grow || p.allocated >= p.max {
		return nil, false
	}
	return p.grow(true, false), true
}

// grow adds a VU: active, or idle when idle is set (else the VU is
// neither until ready adds it); p.mu is held.
func (p *vuPool) grow(active, idle bool) *vuSlot {
	p.allocated++
	v := &vuSlot{id: p.allocated, jobs: make(chan time.Time, 1)}
	p.all = append(p.all, v)
	switch {
	case active:
		p.active++
	case idle:
		p.idle = append(p.idle, v)
	}
	return v
}

// ready adds a VU that was grown neither active nor idle to the idle VUs.
func (p *vuPool) ready(v *vuSlot) {
	p.mu.Lock()
	p.idle = append(p.idle, v)
	p.mu.Unlock()
	p.signal()
}

func (p *vuPool) signal() {
	select {
	case p.freed <- struct{}{}:
	default:
	}
}

// await waits for an idle VU until tm fires or ctx ends; nil if none.
func (p *vuPool) await(ctx context.Context, tm Timer) *vuSlot {
	for {
		if v, _ := p.get(false); v != nil {
			return v
		}
		select {
		case <-p.freed:
		case <-tm.C():
			v, _ := p.get(false)
			return v
		case <-ctx.Done():
			return nil
		}
	}
}

// put returns a VU after its iteration.
func (p *vuPool) put(v *vuSlot) {
	p.mu.Lock()
	p.active--
	p.idle = append(p.idle, v)
	p.mu.Unlock()
	p.signal()
}

func (p *vuPool) gauges() (active, allocated int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.active, p.allocated
}

// startLog records the intended times of the arrivals handed to VUs, in
// order, so that the started count of an interval is counted by intended
// time (an arrival due just before a boundary and handed over just after
// it belongs to the interval before, and the other way round). It keeps
// the last startLogSize times: enough for an interval boundary that is
// read late by up to startLogSize arrivals.
type startLog struct {
	ring  [startLogSize]atomic.Int64 // unix ns of the intended times
	total atomic.Int64               // arrivals handed over
	// pending is the intended time (unix ns) of the arrival the loop
	// waits for or hands over next; math.MaxInt64 once the loop ended.
	pending atomic.Int64
}

const startLogSize = 4096

// add records an arrival handed over; one writer (the arrival loop).
func (l *startLog) add(intended time.Time) {
	n := l.total.Load()
	l.ring[n%startLogSize].Store(intended.UnixNano())
	l.total.Store(n + 1)
}

// settleWait bounds how long startedBy waits for the arrival loop to hand
// over the arrivals due by the instant asked.
const settleWait = 2 * time.Millisecond

// startedBy returns how many arrivals due at or before at were handed over.
// When the loop has not yet reached at, it waits for it briefly (it is
// due now: the interval boundaries are read as they pass). The wait
// sleeps rather than yields, so the runtime polls the network and timers
// meanwhile, which wakes the loop.
func (l *startLog) startedBy(at time.Time) int64 {
	ns := at.UnixNano()
	if p := l.pending.Load(); p <= ns && p != math.MaxInt64 {
		deadline := time.Now().Add(settleWait)
		for l.pending.Load() <= ns && time.Now().Before(deadline) {
			time.Sleep(20 * time.Microsecond)
		}
	}
	n := l.total.Load()
	after := int64(0)
	for k := n - 1; k >= 0 && k >= n-startLogSize; k-- {
		if l.ring[k%startLogSize].Load() <= ns {
			break
		}
		after++
	}
	return n - after
}

func (s *Scenario) runArrivals(ctx context.Context, start time.Time) error {
	pacer := s.Pacer
	if pacer == nil {
		pacer = NewPacer(s.Plan, s.Share.GetArrivals(), s.Share.GetTotalArrivals(), s.Seed)
	}
	counter, _ := pacer.(DueCounter)
	if counter != nil {
		s.Rec.SetScheduled(func(at time.Time) int64 {
			if at.Before(start) {
				return 0
			}
			return counter.DueBy(at.Sub(start))
		})
	}
	starts := &startLog{}
	starts.pending.Store(start.UnixNano())
	s.Rec.SetStarted(starts.startedBy)
	defer s.Rec.SetStarted(nil)
	end := start.Add(s.Plan.Length())

	hard, cancelHard := context.WithCancel(ctx)
	defer cancelHard()
	var wg sync.WaitGroup
	pool := &vuPool{max: max(s.Share.GetMaxVus(), s.Share.GetPreAllocatedVus()), freed: make(chan struct{}, 1)}
	s.Rec.SetGauges(func(at time.Time) Gauges {
		active, allocated := pool.gauges()
		return Gauges{ActiveVUs: active, AllocatedVUs: allocated, TargetRate: pacer.Rate(at.Sub(start))}
	})
	defer s.Rec.SetGauges(nil)

	var warming sync.WaitGroup
	run := func(v *vuSlot, warm bool) {
		if warm {
			warming.Add(1)
		}
		wg.Go(func() {
			if warm {
				s.Warm(hard, v.id)
				pool.ready(v)
				warming.Done()
			}
			for intended := range v.jobs {
				if s.Iterate(hard, v.id, intended) {
					s.Rec.Completed()
				}
				pool.put(v)
			}
		})
	}
	pool.mu.Lock()
	warm := s.warmCount(start)
	for i := range s.Share.GetPreAllocatedVus() {
		run(pool.grow(false, i >= warm), i < warm)
	}
	pool.mu.Unlock()

	warmed := make(chan struct{})
	wg.Go(func() { warming.Wait(); close(warmed) })
	wait := newSpinWaiter(ctx, s.Clock, s.PacingSpin)
	if s.warmed(ctx, warmed, start) && wait.until(start) {
		var issued int64
		for n := int64(0); ; n++ {
			due, stop := pacer.Next(n)
			if stop {
				break
			}
			intended := start.Add(due)
			starts.pending.Store(intended.UnixNano())
			if !wait.until(intended) {
				break
			}
			issued++
			if s.Hold != nil && s.Hold() {
				continue
			}
			v, fresh := s.takeVU(ctx, pool, intended)
			if v == nil {
				s.Rec.Dropped()
				continue
			}
			if fresh {
				run(v, false)
			}
			late := s.Clock.Now().Sub(intended)
			s.Rec.Arrival(late, late > s.LateBound)
			starts.add(intended)
			v.jobs <- intended
		}
		if ctx.Err() != nil && counter != nil {
			// Stopped: arrivals already due but never sent are deficit.
			if due := counter.DueBy(s.Clock.Now().Sub(start)); due > issued {
				s.Rec.Deficit(due - issued)
			}
		}
	}
	starts.pending.Store(math.MaxInt64)
	wait.close()

	pool.mu.Lock()
	for _, v := range pool.all {
		close(v.jobs)
	}
	pool.mu.Unlock()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	s.finish(ctx, done, end.Add(s.Plan.GracefulStop.D()), cancelHard)
	return nil
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
// dropped. A new VU opens a new
// connection, whose dial costs more CPU than waiting for a VU whose
// request is about to end: after a stall the VUs' answers have arrived but
// the VUs have not run (the loop hands over the arrivals due meanwhile
// without yielding), and growing by a VU per arrival fed on itself (at
// 10k/s a 20-ms stall grew 256 VUs to 2048, each new one dialing while
// the others waited, which made the next stall longer). Waiting sends a
// stall's backlog late rather than not at all; when the agent cannot keep
// up, waiting would let the lateness (which every latency it records
// includes) grow without end, so past catchUpLimit the excess is dropped
// until the loop is back on time. Both count as deficit.
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
	pre := s.Share.GetPreAllocatedVus()
	switch {
	case s.Warm == nil || s.Share.GetTotalArrivals() <= 0:
		return 0
	case start.Sub(s.Clock.Now()) >= warmAllLead:
		return pre
	}
	rate := s.Plan.PeakRate() * float64(s.Share.GetArrivals()) / float64(s.Share.GetTotalArrivals())
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

// vusCurve returns the VU count of this agent's share at elapsed.
func (s *Scenario) vusCurve(elapsed time.Duration) int64 {
	if elapsed < 0 || elapsed >= s.Plan.Length() {
		return 0
	}
	if s.Plan.Executor == plan.ConstantVUs {
		return s.Share.GetVus()
	}
	targets := s.Share.GetStageTargets()
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

func (s *Scenario) runVUs(ctx context.Context, start time.Time) error {
	hard, cancelHard := context.WithCancel(ctx)
	defer cancelHard()
	soft, cancelSoft := context.WithCancel(hard)
	defer cancelSoft()
	end := start.Add(s.Plan.Length())

	type vu struct {
		stop   chan struct{}
		cancel context.CancelFunc
	}
	type leaving struct {
		cancel   context.CancelFunc
		deadline time.Time
	}
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		running []vu // running VUs, oldest first
		ramping []leaving
		active  int64
		nextID  int64
	)
	s.Rec.SetGauges(func(time.Time) Gauges {
		mu.Lock()
		defer mu.Unlock()
		return Gauges{ActiveVUs: active, AllocatedVUs: int64(len(running))}
	})
	defer s.Rec.SetGauges(nil)

	startVU := func() {
		stop := make(chan struct{})
		vctx, cancel := context.WithCancel(hard)
		mu.Lock()
		running = append(running, vu{stop, cancel})
		nextID++
		id := nextID
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer cancel()
			for {
				select {
				case <-stop:
					return
				case <-soft.Done():
					return
				default:
				}
				mu.Lock()
				active++
				mu.Unlock()
				s.Rec.Started()
				ok := s.Iterate(vctx, id, time.Time{})
				mu.Lock()
				active--
				mu.Unlock()
				if !ok {
					return
				}
				s.Rec.Completed()
			}
		}()
	}
	// stopVU stops the newest VU: it ends after its iteration, or is
	// interrupted when graceful_ramp_down expires (k6 semantics).
	stopVU := func(now time.Time) {
		mu.Lock()
		defer mu.Unlock()
		n := len(running)
		v := running[n-1]
		close(v.stop)
		running = running[:n-1]
		ramping = append(ramping, leaving{v.cancel, now.Add(s.Plan.GracefulRampDown.D())})
	}
	// expire interrupts ramped-down VUs past their graceful_ramp_down.
	expire := func(now time.Time) {
		mu.Lock()
		defer mu.Unlock()
		kept := ramping[:0]
		for _, l := range ramping {
			if now.Before(l.deadline) {
				kept = append(kept, l)
				continue
			}
			l.cancel()
		}
		ramping = kept
	}
	if s.sleepUntil(ctx, start) {
		for {
			now := s.Clock.Now()
			if !now.Before(end) {
				break
			}
			want := s.vusCurve(now.Sub(start))
			mu.Lock()
			have := int64(len(running))
			mu.Unlock()
			for ; have < want; have++ {
				startVU()
			}
			for ; have > want; have-- {
				stopVU(now)
			}
			expire(now)
			next := end
			if s.Plan.Executor == plan.RampingVUs {
				next = minTime(end, now.Add(rampTick))
			}
			if !s.sleepUntil(ctx, next) {
				break
			}
		}
	}
	cancelSoft()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	s.finish(ctx, done, end.Add(s.Plan.GracefulStop.D()), cancelHard)
	mu.Lock()
	running, ramping = nil, nil
	mu.Unlock()
	return nil
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// ShareOptions configure RunShare.
type ShareOptions struct {
	Plan  *plan.Plan
	Share *surgev1.Share
	// Client is the base of each scenario's HTTP client (allow-list,
	// resolver, the agent's connection gauge); BuildScenarios adds the
	// scenario's connection, retry, peak VUs, seed and counters.
	Client   httpclient.Options
	Recorder *Recorder
	// Clock: nil uses RealClock.
	Clock  Clock
	Logger *slog.Logger
	// PacingSpin is every scenario's PacingSpin.
	PacingSpin time.Duration
	// RunID seeds the random processes (see Seed); Region expands
	// {{region}}; Env looks up {{env "NAME"}}.
	RunID  string
	Region string
	Env    func(string) (string, bool)
	// Adjust, if set, sees each scenario after it is built and before it
	// runs: the agent wraps iterations in its pause gate and sets pacers for
	// takeover parts there.
	Adjust func(*Scenario)
}

// ValidateShare checks a share against its plan: every scenario exists,
// counts are sane, and ramping-vus shares have one target per stage plus
// the start.
func ValidateShare(p *plan.Plan, share *surgev1.Share) error {
	var errs []error
	seen := make(map[string]bool)
	for _, ss := range share.GetScenarios() {
		name := ss.GetScenario()
		sc := p.Scenarios[name]
		switch {
		case sc == nil:
			errs = append(errs, fmt.Errorf("share: scenario %q is not in the plan", name))
			continue
		case seen[name]:
			errs = append(errs, fmt.Errorf("share: scenario %q appears twice", name))
			continue
		}
		seen[name] = true
		switch sc.Executor {
		case plan.ConstantArrivalRate, plan.RampingArrivalRate:
			if ss.GetArrivals() < 0 || ss.GetArrivals() > ss.GetTotalArrivals() {
				errs = append(errs, fmt.Errorf("share: scenario %q: %d arrivals of %d", name, ss.GetArrivals(), ss.GetTotalArrivals()))
			}
			if ss.GetPreAllocatedVus() < 0 || ss.GetMaxVus() < 0 {
				errs = append(errs, fmt.Errorf("share: scenario %q: negative VUs", name))
			}
		case plan.PerVUIterations, plan.SharedIterations:
			if ss.GetVus() < 0 || ss.GetArrivals() < 0 || ss.GetArrivals() > ss.GetTotalArrivals() {
				errs = append(errs, fmt.Errorf("share: scenario %q: %d VUs, %d iterations of %d", name, ss.GetVus(), ss.GetArrivals(), ss.GetTotalArrivals()))
			}
			if ss.GetArrivals() > 0 && ss.GetVus() == 0 {
				errs = append(errs, fmt.Errorf("share: scenario %q: %d iterations without a VU", name, ss.GetArrivals()))
			}
		case plan.ConstantVUs:
			if ss.GetVus() < 0 {
				errs = append(errs, fmt.Errorf("share: scenario %q: %d VUs", name, ss.GetVus()))
			}
		case plan.RampingVUs:
			if len(ss.GetStageTargets()) != len(sc.Stages)+1 {
				errs = append(errs, fmt.Errorf("share: scenario %q: %d stage targets for %d stages, want start plus one per stage",
					name, len(ss.GetStageTargets()), len(sc.Stages)))
			}
			for _, t := range ss.GetStageTargets() {
				if t < 0 {
					errs = append(errs, fmt.Errorf("share: scenario %q: negative stage target %d", name, t))
					break
				}
			}
		}
	}
	return errors.Join(errs...)
}

// PeakRate is the most arrivals per second the share plans (the sum of
// every scenario's peak: a conservative bound for staggered scenarios).
func PeakRate(p *plan.Plan, share *surgev1.Share) float64 {
	var r float64
	for _, ss := range share.GetScenarios() {
		sc := p.Scenarios[ss.GetScenario()]
		if sc == nil || !sc.IsArrivalRate() || ss.GetTotalArrivals() <= 0 {
			continue
		}
		r += sc.PeakRate() * float64(ss.GetArrivals()) / float64(ss.GetTotalArrivals())
	}
	return r
}

// PeakVUs is the most VUs the share may run (sum over scenarios).
func PeakVUs(p *plan.Plan, share *surgev1.Share) int64 {
	var n int64
	for _, ss := range share.GetScenarios() {
		sc := p.Scenarios[ss.GetScenario()]
		if sc == nil {
			continue
		}
		switch sc.Executor {
		case plan.ConstantArrivalRate, plan.RampingArrivalRate:
			n += max(ss.GetMaxVus(), ss.GetPreAllocatedVus())
		case plan.ConstantVUs, plan.PerVUIterations, plan.SharedIterations:
			n += ss.GetVus()
		case plan.RampingVUs:
			var peak int64
			for _, t := range ss.GetStageTargets() {
				peak = max(peak, t)
			}
			n += peak
		}
	}
	return n
}

// RunShare runs every scenario of the share in parallel from start and
// returns when all have ended (or ctx ended and they stopped).
func RunShare(ctx context.Context, start time.Time, o ShareOptions) error {
	scens, err := BuildScenarios(o)
	if err != nil {
		return err
	}
	return RunScenarios(ctx, start, scens)
}

// BuildScenarios builds the runnable scenarios of a share: one per
// scenario share, with its iteration function, seed and recorder.
func BuildScenarios(o ShareOptions) ([]*Scenario, error) {
	if o.Clock == nil {
		o.Clock = RealClock{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	var scens []*Scenario
	fail := func(err error) ([]*Scenario, error) {
		for _, s := range scens {
			s.client.Close()
		}
		return nil, err
	}
	for _, ss := range o.Share.GetScenarios() {
		sc := o.Plan.Scenarios[ss.GetScenario()]
		if sc == nil {
			return fail(fmt.Errorf("run share: scenario %q is not in the plan", ss.GetScenario()))
		}
		rec := o.Recorder.Scenario(ss.GetScenario())
		seed := Seed(o.RunID, ss.GetScenario(), ss.GetSegmentFrom())
		co := o.Client
		co.Conn, co.Retry, co.Seed = sc.Connection, sc.Retry, seed
		co.PeakVUs = int(min(PeakVUs(o.Plan, &surgev1.Share{Scenarios: []*surgev1.ScenarioShare{ss}}), 1<<20))
		co.Stats = &httpclient.ConnStats{}
		client, err := httpclient.New(co)
		if err != nil {
			return fail(fmt.Errorf("run share: scenario %s: %w", ss.GetScenario(), err))
		}
		rec.SetConnStats(co.Stats)
		iter, warm, err := planIteration(sc, IterationOptions{
			Client: client, Retries: sc.Retry != nil && sc.Retry.Attempts > 1,
			Rec: rec, Clock: o.Clock, Region: o.Region, Env: o.Env, Seed: seed,
			Data: o.Plan.Data, Segment: ss.GetSegmentFrom(),
			WSDial: client.DialContext, WSTLS: client.TLSConfig(),
		})
		if err != nil {
			client.Close()
			return fail(fmt.Errorf("run share: scenario %s: %w", ss.GetScenario(), err))
		}
		s := &Scenario{
			Name:       ss.GetScenario(),
			Plan:       sc,
			Share:      ss,
			Seed:       seed,
			Iterate:    iter,
			Warm:       warm,
			Rec:        rec,
			Clock:      o.Clock,
			PacingSpin: o.PacingSpin,
			Logger:     o.Logger.With("scenario", ss.GetScenario()),
			client:     client,
		}
		if o.Adjust != nil {
			o.Adjust(s)
		}
		scens = append(scens, s)
	}
	return scens, nil
}

// RunScenarios runs scenarios in parallel from start and returns when all
// have ended (or ctx ended and they stopped), with their errors joined.
func RunScenarios(ctx context.Context, start time.Time, scens []*Scenario) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, s := range scens {
		wg.Go(func() {
			if err := s.Run(ctx, start); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}
