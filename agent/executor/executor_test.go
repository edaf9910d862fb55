package executor

import (
	"context"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/surgeload/surge/hist"
	"github.com/surgeload/surge/plan"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeClock moves only when the test advances it.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
	added  chan struct{}
}

type fakeTimer struct {
	fc *fakeClock
	at time.Time
	c  chan time.Time
}

func newFakeClock(t0 time.Time) *fakeClock {
	return &fakeClock{now: t0, added: make(chan struct{}, 1)}
}

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeClock) NewTimer(d time.Duration) Timer {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := &fakeTimer{fc: f, at: f.now.Add(d), c: make(chan time.Time, 1)}
	if d <= 0 {
		t.c <- f.now
		return t
	}
	f.timers = append(f.timers, t)
	select {
	case f.added <- struct{}{}:
	default:
	}
	return t
}

func (t *fakeTimer) C() <-chan time.Time { return t.c }

func (t *fakeTimer) Stop() bool {
	t.fc.mu.Lock()
	defer t.fc.mu.Unlock()
	i := slices.Index(t.fc.timers, t)
	if i < 0 {
		return false
	}
	t.fc.timers = slices.Delete(t.fc.timers, i, i+1)
	return true
}

// advance moves the clock to the earliest pending timer and fires it; it
// reports whether there was one.
func (f *fakeClock) advance() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.timers) == 0 {
		return false
	}
	slices.SortFunc(f.timers, func(a, b *fakeTimer) int { return a.at.Compare(b.at) })
	t := f.timers[0]
	f.timers = f.timers[1:]
	if t.at.After(f.now) {
		f.now = t.at
	}
	t.c <- f.now
	return true
}

// drive runs s on fc until it returns, advancing the clock whenever a timer
// is pending.
func drive(t *testing.T, fc *fakeClock, s *Scenario, start time.Time) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- s.Run(context.Background(), start) }()
	deadline := time.NewTimer(5 * time.Second)
	defer deadline.Stop()
	for {
		if fc.advance() {
			continue
		}
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("run: %v", err)
			}
			return
		case <-fc.added:
		case <-deadline.C:
			t.Fatal("scenario did not finish")
		}
	}
}

func TestArrivalSchedule(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		name     string
		sc       *plan.Scenario
		arrivals int64
		// want is the expected due time of arrival j, in seconds.
		want func(j int64, total, arrivals float64) float64
	}{
		{
			name: "constant 10/s for 2s, 7 of 20",
			sc: &plan.Scenario{Executor: plan.ConstantArrivalRate, Rate: 10, TimeUnit: plan.Duration(time.Second),
				Duration: plan.Duration(2 * time.Second), GracefulStop: plan.Duration(time.Second)},
			arrivals: 7,
			want: func(j int64, total, arrivals float64) float64 {
				return (float64(j) + 0.5) * total / arrivals / 10
			},
		},
		{
			name: "ramping 0 to 10/s over 2s, 4 of 10",
			sc: &plan.Scenario{Executor: plan.RampingArrivalRate, StartRate: 0, TimeUnit: plan.Duration(time.Second),
				Stages: []plan.Stage{{Duration: plan.Duration(2 * time.Second), Target: 10}}, GracefulStop: plan.Duration(time.Second)},
			arrivals: 4,
			want: func(j int64, total, arrivals float64) float64 {
				// Cumulative(t) = 2.5 t².
				return math.Sqrt((float64(j) + 0.5) * total / arrivals / 2.5)
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			total := tc.sc.TotalArrivals()
			if total == 0 {
				t.Fatalf("TotalArrivals of %s is 0: nothing to schedule", tc.name)
			}
			fc := newFakeClock(t0)
			rec := NewRecorder()
			var (
				mu       sync.Mutex
				intended []time.Time
			)
			s := &Scenario{
				Name:  "s",
				Plan:  tc.sc,
				Share: plan.ScenarioShare{Scenario: "s", Arrivals: tc.arrivals, TotalArrivals: total, PreAllocVUs: 2, MaxVUs: 100},
				Iterate: func(_ context.Context, _ int64, at time.Time) bool {
					mu.Lock()
					intended = append(intended, at)
					mu.Unlock()
					return true
				},
				Rec:   rec.Scenario("s"),
				Clock: fc,
			}
			drive(t, fc, s, t0)

			slices.SortFunc(intended, time.Time.Compare)
			if int64(len(intended)) != tc.arrivals {
				t.Fatalf("%d arrivals, want %d", len(intended), tc.arrivals)
			}
			for j, at := range intended {
				want := tc.want(int64(j), float64(total), float64(tc.arrivals))
				got := at.Sub(t0).Seconds()
				if math.Abs(got-want) > 1e-6 {
					t.Errorf("arrival %d due at %.6fs, want %.6fs", j, got, want)
				}
			}
			_, stats := rec.Swap(fc.Now())
			st := stats[0]
			if st.Scheduled != tc.arrivals || st.Started != tc.arrivals || st.Completed != tc.arrivals || st.Dropped != 0 || st.Deficit != 0 {
				t.Errorf("stats = %v", st)
			}
			// Every arrival was sent exactly on time on the fake clock.
			h, err := hist.FromProto(st.Lateness)
			if err != nil {
				t.Fatal(err)
			}
			if h.TotalCount() != tc.arrivals || h.Max() > 1 {
				t.Errorf("lateness: %d samples, max %dµs", h.TotalCount(), h.Max())
			}
		})
	}
}

func TestArrivalDropsWithoutFreeVU(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	sc := &plan.Scenario{Executor: plan.ConstantArrivalRate, Rate: 10, TimeUnit: plan.Duration(time.Second),
		Duration: plan.Duration(time.Second), GracefulStop: 0}
	fc := newFakeClock(t0)
	rec := NewRecorder()
	release := make(chan struct{})
	s := &Scenario{
		Name:  "s",
		Plan:  sc,
		Share: plan.ScenarioShare{Scenario: "s", Arrivals: 10, TotalArrivals: 10, PreAllocVUs: 1, MaxVUs: 2},
		Iterate: func(ctx context.Context, _ int64, _ time.Time) bool {
			select { // every iteration blocks until the hard stop
			case <-ctx.Done():
				return false
			case <-release:
				return true
			}
		},
		Rec:   rec.Scenario("s"),
		Clock: fc,
	}
	drive(t, fc, s, t0)
	close(release)
	_, stats := rec.Swap(fc.Now())
	st := stats[0]
	if st.Started != 2 || st.Dropped != 8 || st.Deficit != 8 || st.Scheduled != 10 || st.Completed != 0 {
		t.Errorf("stats = %v", st)
	}
}

func TestVUsCurve(t *testing.T) {
	sc := &plan.Scenario{Executor: plan.RampingVUs, Stages: []plan.Stage{
		{Duration: plan.Duration(10 * time.Second), Target: 10},
		{Duration: plan.Duration(10 * time.Second), Target: 0},
	}}
	s := &Scenario{Plan: sc, Share: plan.ScenarioShare{StageTargets: []int64{0, 5, 0}}}
	for _, c := range []struct {
		at   time.Duration
		want int64
	}{{0, 0}, {time.Second, 0}, {2 * time.Second, 1}, {9999 * time.Millisecond, 4}, {10 * time.Second, 5}, {15 * time.Second, 2}, {20 * time.Second, 0}} {
		if got := s.vusCurve(c.at); got != c.want {
			t.Errorf("vus at %s = %d, want %d", c.at, got, c.want)
		}
	}
}

func TestRampingVUs(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	sc := &plan.Scenario{Executor: plan.RampingVUs, GracefulStop: plan.Duration(time.Second), Stages: []plan.Stage{
		{Duration: plan.Duration(time.Second), Target: 4},
		{Duration: plan.Duration(time.Second), Target: 0},
	}}
	fc := newFakeClock(t0)
	rec := NewRecorder()
	var (
		mu    sync.Mutex
		peak  int
		live  = map[int64]bool{}
		iters int
	)
	s := &Scenario{
		Name:  "s",
		Plan:  sc,
		Share: plan.ScenarioShare{Scenario: "s", StageTargets: []int64{0, 4, 0}},
		Iterate: func(ctx context.Context, vu int64, _ time.Time) bool {
			mu.Lock()
			defer mu.Unlock()
			live[vu] = true
			peak = max(peak, len(live))
			iters++
			return true
		},
		Rec:   rec.Scenario("s"),
		Clock: fc,
	}
	// Advance only once every running VU has iterated since the last step.
	var lastIters int
	driveWhen(t, fc, s, t0, func() bool {
		mu.Lock()
		defer mu.Unlock()
		s.Rec.r.mu.Lock()
		fn := s.Rec.gauges
		s.Rec.r.mu.Unlock()
		if fn != nil && iters-lastIters < int(fn(time.Time{}).AllocatedVUs) {
			return false
		}
		lastIters = iters
		return true
	})
	if peak > 4 || peak < 3 {
		t.Errorf("peak distinct VUs %d, want 3..4", peak)
	}
	_, stats := rec.Swap(fc.Now())
	if stats[0].Started == 0 || stats[0].Started != stats[0].Completed {
		t.Errorf("stats = %v", stats[0])
	}
}
