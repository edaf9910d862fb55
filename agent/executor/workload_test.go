package executor

import (
	"context"
	"math"
	"runtime"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/surgeload/surge/plan"
)

var wt0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// driveWhen is drive that advances the fake clock only once ready()
// holds (polled), so VU goroutines reach their iteration before time
// moves on.
func driveWhen(t *testing.T, fc *fakeClock, s *Scenario, start time.Time, ready func() bool) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- s.Run(context.Background(), start) }()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("run: %v", err)
			}
			return
		default:
		}
		if ready() && fc.advance() {
			continue
		}
		runtime.Gosched()
		time.Sleep(20 * time.Microsecond) // poll interval
	}
	t.Fatal("scenario did not finish")
}

// allBusy is ready when every allocated VU of s is inside an iteration.
func allBusy(s *Scenario) func() bool {
	return func() bool {
		s.Rec.r.mu.Lock()
		fn := s.Rec.gauges
		s.Rec.r.mu.Unlock()
		if fn == nil {
			return true
		}
		g := fn(time.Time{})
		return g.ActiveVUs >= g.AllocatedVUs
	}
}

func sec(x float64) plan.Duration { return plan.Duration(x * float64(time.Second)) }

// per-vu-iterations: every VU runs exactly its iterations, all VUs at once.
func TestPerVUIterationsSchedule(t *testing.T) {
	fc := newFakeClock(wt0)
	rec := NewRecorder()
	var mu sync.Mutex
	perVU := map[int64]int{}
	s := &Scenario{
		Name: "s",
		Plan: &plan.Scenario{Executor: plan.PerVUIterations, VUs: 3, Iterations: 4, MaxDuration: sec(60),
			GracefulStop: sec(1), StartTime: sec(2)},
		Share: plan.ScenarioShare{Scenario: "s", VUs: 3, Arrivals: 12, TotalArrivals: 12},
		Iterate: func(_ context.Context, vu int64, _ time.Time) bool {
			mu.Lock()
			perVU[vu]++
			mu.Unlock()
			if got := fc.Now().Sub(wt0); got != 2*time.Second {
				t.Errorf("iteration at %s, want at start_time 2s", got)
			}
			return true
		},
		Rec:   rec.Scenario("s"),
		Clock: fc,
	}
	driveWhen(t, fc, s, wt0, func() bool {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, c := range perVU {
			n += c
		}
		return fc.Now().Before(wt0.Add(2*time.Second)) || n == 12
	})
	if len(perVU) != 3 {
		t.Fatalf("%d VUs ran, want 3: %v", len(perVU), perVU)
	}
	for vu, n := range perVU {
		if n != 4 {
			t.Errorf("VU %d ran %d iterations, want 4", vu, n)
		}
	}
	_, stats := rec.Swap(fc.Now())
	if st := stats[0]; st.Started != 12 || st.Completed != 12 || st.Dropped != 0 {
		t.Errorf("stats = %v", st)
	}
}

// shared-iterations: the share's iterations are run exactly once in all,
// by at most vus VUs.
func TestSharedIterationsSchedule(t *testing.T) {
	fc := newFakeClock(wt0)
	rec := NewRecorder()
	var mu sync.Mutex
	perVU := map[int64]int{}
	s := &Scenario{
		Name:  "s",
		Plan:  &plan.Scenario{Executor: plan.SharedIterations, VUs: 4, Iterations: 37, MaxDuration: sec(60), GracefulStop: sec(1)},
		Share: plan.ScenarioShare{Scenario: "s", VUs: 4, Arrivals: 37, TotalArrivals: 100},
		Iterate: func(_ context.Context, vu int64, _ time.Time) bool {
			mu.Lock()
			perVU[vu]++
			mu.Unlock()
			return true
		},
		Rec:   rec.Scenario("s"),
		Clock: fc,
	}
	driveWhen(t, fc, s, wt0, func() bool {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, c := range perVU {
			n += c
		}
		return n == 37
	})
	total := 0
	for _, n := range perVU {
		total += n
	}
	if total != 37 || len(perVU) > 4 {
		t.Errorf("%d iterations by %d VUs, want 37 by <= 4", total, len(perVU))
	}
	_, stats := rec.Swap(fc.Now())
	if st := stats[0]; st.Completed != 37 || st.Dropped != 0 {
		t.Errorf("stats = %v", st)
	}
}

// max_duration ends an iteration executor: in-flight iterations get
// graceful_stop, then are interrupted; iterations never started are dropped.
func TestIterationsMaxDuration(t *testing.T) {
	fc := newFakeClock(wt0)
	rec := NewRecorder()
	var mu sync.Mutex
	var ends []time.Duration
	s := &Scenario{
		Name:  "s",
		Plan:  &plan.Scenario{Executor: plan.SharedIterations, VUs: 2, Iterations: 10, MaxDuration: sec(1), GracefulStop: sec(0.5)},
		Share: plan.ScenarioShare{Scenario: "s", VUs: 2, Arrivals: 10, TotalArrivals: 10},
		Iterate: func(ctx context.Context, _ int64, _ time.Time) bool {
			<-ctx.Done()
			mu.Lock()
			ends = append(ends, fc.Now().Sub(wt0))
			mu.Unlock()
			return false
		},
		Rec:   rec.Scenario("s"),
		Clock: fc,
	}
	driveWhen(t, fc, s, wt0, allBusy(s))
	if len(ends) != 2 || ends[0] != 1500*time.Millisecond || ends[1] != 1500*time.Millisecond {
		t.Errorf("iterations interrupted at %v, want both at 1.5s (max_duration + graceful_stop)", ends)
	}
	_, stats := rec.Swap(fc.Now())
	if st := stats[0]; st.Started != 2 || st.Completed != 0 || st.Dropped != 8 {
		t.Errorf("stats = %v, want 2 started, 8 dropped", st)
	}
}

// graceful_ramp_down: a VU the curve removes finishes its iteration, and is
// interrupted when graceful_ramp_down expires; VUs still running at the end
// get graceful_stop.
func TestGracefulRampDown(t *testing.T) {
	fc := newFakeClock(wt0)
	rec := NewRecorder()
	var mu sync.Mutex
	ends := map[int64]time.Duration{}
	s := &Scenario{
		Name: "s",
		Plan: &plan.Scenario{Executor: plan.RampingVUs, StartVUs: 2,
			Stages:       []plan.Stage{{Duration: sec(1), Target: 2}, {Duration: sec(1), Target: 0}},
			GracefulStop: sec(3), GracefulRampDown: sec(0.5)},
		Share: plan.ScenarioShare{Scenario: "s", StageTargets: []int64{2, 2, 0}},
		Iterate: func(ctx context.Context, vu int64, _ time.Time) bool {
			<-ctx.Done()
			mu.Lock()
			ends[vu] = fc.Now().Sub(wt0)
			mu.Unlock()
			return false
		},
		Rec:   rec.Scenario("s"),
		Clock: fc,
	}
	driveWhen(t, fc, s, wt0, allBusy(s))
	// VU 2 (the newest) leaves at the first tick past 1s, when the curve
	// drops below 2, and is interrupted 0.5s later; VU 1 runs to the end
	// (2s) plus graceful_stop (3s).
	if d := ends[2]; d < 1500*time.Millisecond || d > 1500*time.Millisecond+2*rampTick {
		t.Errorf("ramped-down VU interrupted at %s, want 1.5s (+1 tick)", d)
	}
	if d := ends[1]; d != 5*time.Second {
		t.Errorf("last VU interrupted at %s, want 5s", d)
	}
}

// ramping-vus holds the planned VU count: the number of running VUs,
// sampled every tick, follows the share's stage targets.
func TestRampingVUCountsOverTime(t *testing.T) {
	fc := newFakeClock(wt0)
	rec := NewRecorder()
	sc := &plan.Scenario{Executor: plan.RampingVUs,
		Stages:       []plan.Stage{{Duration: sec(0.01), Target: 4}, {Duration: sec(1), Target: 4}, {Duration: sec(0.01), Target: 2}, {Duration: sec(1), Target: 2}},
		GracefulStop: 0, GracefulRampDown: 0}
	var mu sync.Mutex
	live := map[int64]bool{}
	var samples []struct {
		at time.Duration
		n  int
	}
	s := &Scenario{
		Name: "s", Plan: sc,
		Share: plan.ScenarioShare{Scenario: "s", StageTargets: []int64{0, 4, 4, 2, 2}},
		Iterate: func(ctx context.Context, vu int64, _ time.Time) bool {
			mu.Lock()
			live[vu] = true
			samples = append(samples, struct {
				at time.Duration
				n  int
			}{fc.Now().Sub(wt0), len(live)})
			mu.Unlock()
			<-ctx.Done()
			mu.Lock()
			delete(live, vu)
			mu.Unlock()
			return false
		},
		Rec: rec.Scenario("s"), Clock: fc,
	}
	driveWhen(t, fc, s, wt0, allBusy(s))
	maxIn := func(from, to time.Duration) int {
		m := 0
		for _, x := range samples {
			if x.at >= from && x.at < to {
				m = max(m, x.n)
			}
		}
		return m
	}
	if got := maxIn(0, time.Second); got != 4 {
		t.Errorf("stage 2: %d VUs, want 4", got)
	}
	if n := len(samples); n != 4 {
		t.Errorf("%d VU starts, want 4 (the ramp to 2 only stops VUs)", n)
	}
}

// Poisson inter-arrival times pass a Kolmogorov–Smirnov test against the
// exponential law of the planned rate.
func TestPoissonKS(t *testing.T) {
	sc := &plan.Scenario{Executor: plan.ConstantArrivalRate, Rate: 200, TimeUnit: sec(1), Duration: sec(30),
		Arrivals: &plan.Arrivals{Process: plan.ArrivalsPoisson}}
	total := sc.TotalArrivals()
	p := NewPacer(sc, total, total, Seed("run-1", "s", "0/1"))
	var gaps []float64
	var prev, first time.Duration
	var n int64
	for ; ; n++ {
		due, stop := p.Next(n)
		if stop {
			break
		}
		if n == 0 {
			first = due
		}
		gaps = append(gaps, (due - prev).Seconds())
		prev = due
	}
	sort.Float64s(gaps)
	var d float64
	for i, x := range gaps {
		cdf := 1 - math.Exp(-200*x)
		d = max(d, math.Abs(float64(i+1)/float64(len(gaps))-cdf), math.Abs(cdf-float64(i)/float64(len(gaps))))
	}
	crit := 1.36 / math.Sqrt(float64(len(gaps))) // α = 0.05
	t.Logf("measured: %d arrivals (planned %d), KS D = %.5f, critical %.5f", n, total, d, crit)
	if d > crit {
		t.Errorf("KS statistic %.5f over the critical value %.5f", d, crit)
	}
	// The count is Poisson(total): within 4 standard deviations.
	if math.Abs(float64(n-total)) > 4*math.Sqrt(float64(total)) {
		t.Errorf("%d arrivals, planned %d", n, total)
	}
	// Same seed, same arrivals; another agent's segment, other arrivals.
	q := NewPacer(sc, total, total, Seed("run-1", "s", "0/1"))
	r := NewPacer(sc, total, total, Seed("run-1", "s", "1/3"))
	d1, _ := q.Next(0)
	d2, _ := r.Next(0)
	if d1 != first || d1 == d2 {
		t.Errorf("seeding: first arrivals %s (want %s) and %s", d1, first, d2)
	}
}

// on-off reaches its burst factor (within 5%) and keeps the exact total.
func TestOnOffBurstFactor(t *testing.T) {
	sc := &plan.Scenario{Executor: plan.ConstantArrivalRate, Rate: 100, TimeUnit: sec(1), Duration: sec(20),
		Arrivals: &plan.Arrivals{Process: plan.ArrivalsOnOff, OnOff: &plan.OnOff{On: sec(1), Off: sec(4), Factor: 3}}}
	total := sc.TotalArrivals()
	for _, share := range []int64{total, 667} {
		p := NewPacer(sc, share, total, 0)
		var on, off, n int64
		var last time.Duration
		for ; ; n++ {
			due, stop := p.Next(n)
			if stop {
				break
			}
			if due < last {
				t.Fatalf("arrival %d at %s before the previous one at %s", n, due, last)
			}
			last = due
			if math.Mod(due.Seconds(), 5) < 1 {
				on++
			} else {
				off++
			}
		}
		mean := float64(share) / 20
		onRate := float64(on) / 4 // 4 on-seconds in 20s
		factor := onRate / mean
		t.Logf("measured: share %d: %d arrivals, on-rate %.2f/s over mean %.2f/s: factor %.3f (planned 3), off-rate %.2f/s",
			share, n, onRate, mean, factor, float64(off)/16)
		if n != share {
			t.Errorf("%d arrivals, want exactly %d", n, share)
		}
		if math.Abs(factor-3) > 0.05*3 {
			t.Errorf("burst factor %.3f, want 3 ± 5%%", factor)
		}
		if dc, ok := p.(DueCounter); !ok || dc.DueBy(20*time.Second) != share {
			t.Errorf("DueBy(end) wrong or missing")
		}
		if r := p.Rate(500 * time.Millisecond); math.Abs(r-3*mean) > 1e-6*mean {
			t.Errorf("Rate(0.5s) = %v, want %v", r, 3*mean)
		}
	}
}

// mmpp: rates switch between states; the long-run mean is the plan's rate.
func TestMMPPMeanRate(t *testing.T) {
	sc := &plan.Scenario{Executor: plan.ConstantArrivalRate, Rate: 100, TimeUnit: sec(1), Duration: sec(600),
		Arrivals: &plan.Arrivals{Process: plan.ArrivalsMMPP, MMPP: &plan.MMPP{States: []plan.MMPPState{
			{RateFactor: 1, MeanDwell: sec(4)}, {RateFactor: 5, MeanDwell: sec(1)}}}}}
	total := sc.TotalArrivals()
	p := NewPacer(sc, total, total, 42)
	var n int64
	perSec := make([]int, 600)
	for ; ; n++ {
		due, stop := p.Next(n)
		if stop {
			break
		}
		if s := int(due.Seconds()); s < len(perSec) {
			perSec[s]++
		}
	}
	slices.Sort(perSec)
	t.Logf("measured: %d arrivals over 600s (planned %d); per-second median %d, p95 %d", n, total, perSec[300], perSec[570])
	// Modulated: the count is overdispersed, so allow 10%.
	if math.Abs(float64(n-total)) > 0.1*float64(total) {
		t.Errorf("%d arrivals, planned %d", n, total)
	}
	if perSec[570] < 2*perSec[300] {
		t.Errorf("no bursts: p95 %d vs median %d per second", perSec[570], perSec[300])
	}
}
