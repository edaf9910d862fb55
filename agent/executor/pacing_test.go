package executor

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
	"github.com/surgeload/surge/hist"
)

// Arrivals count in the interval they were due in: the start log answers
// by intended time, whenever the arrivals were handed over.
func TestStartLogCountsByIntendedTime(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var l startLog
	l.pending.Store(t0.UnixNano())
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	for i := 1; i <= 10; i++ {
		l.add(ms(100 * i)) // 100ms, 200ms, ..., 1000ms
	}
	l.pending.Store(ms(1100).UnixNano())
	for _, c := range []struct {
		at   time.Time
		want int64
	}{{t0, 0}, {ms(99), 0}, {ms(100), 1}, {ms(550), 5}, {ms(1000), 10}, {ms(5000), 10}} {
		if got := l.startedBy(c.at); got != c.want {
			t.Errorf("startedBy(%v) = %d, want %d", c.at.Sub(t0), got, c.want)
		}
	}
	// The loop has not reached the instant asked: the answer waits for it
	// at most settleWait, then counts what was handed over.
	begin := time.Now()
	if got := l.startedBy(ms(2000)); got != 10 {
		t.Errorf("startedBy(2s) = %d, want 10", got)
	}
	if waited := time.Since(begin); waited < settleWait {
		t.Errorf("startedBy waited %v for a loop behind, want at least %v", waited, settleWait)
	}
}

// With a started function installed, Arrival records lateness but does
// not count starts: Swap reports the function's increase per interval,
// and uninstalling it hands the unreported starts back to the recorder.
func TestRecorderStartedByFunction(t *testing.T) {
	rec := NewRecorder()
	sr := rec.Scenario("s")
	var cum atomic.Int64
	sr.SetStarted(func(time.Time) int64 { return cum.Load() })
	for range 5 {
		sr.Arrival(time.Millisecond, false)
	}
	cum.Store(3)
	_, st := rec.Swap(time.Now())
	if st[0].Started != 3 || st[0].GetLateness() == nil {
		t.Fatalf("first interval: started %d, want 3 (from the function)", st[0].Started)
	}
	cum.Store(5)
	sr.SetStarted(nil)
	sr.Arrival(0, false) // counted by the recorder again
	if _, st = rec.Swap(time.Now()); st[0].Started != 3 {
		t.Fatalf("second interval: started %d, want 2 unreported + 1", st[0].Started)
	}
}

// The precise waiter never returns before the instant, and returns false
// at once when its context ends.
func TestPreciseWaiter(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	w := newWaiter(ctx, RealClock{})
	defer w.close()
	for _, d := range []time.Duration{-time.Millisecond, 0, 50 * time.Microsecond, 2 * time.Millisecond} {
		at := time.Now().Add(d)
		if !w.until(at) {
			t.Fatalf("until(now%+v) = false", d)
		}
		if now := time.Now(); now.Before(at) {
			t.Fatalf("until(now%+v) returned %v early", d, at.Sub(now))
		}
	}
	go func() { time.Sleep(10 * time.Millisecond); cancel() }()
	begin := time.Now()
	if w.until(time.Now().Add(time.Hour)) {
		t.Fatal("until returned true after its context ended")
	}
	if d := time.Since(begin); d > time.Minute {
		t.Fatalf("until took %v to see its context end", d)
	}
}

// An arrival-rate scenario run well before its start warms all its
// pre-allocated VUs before its first arrival; warm connections belong to
// no request (a connection a request opens records its connect phase).
// Run at its start (as an agent does), it warms 10 ms of its peak rate's
// arrivals' worth.
func TestArrivalsWarmPreallocatedVUs(t *testing.T) {
	var accepted atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) }))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			accepted.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	p := parseScenario(t, `
scenarios:
  s:
    executor: constant-arrival-rate
    rate: 40
    duration: 1s
    pre_allocated_vus: 8
    max_vus: 40
    graceful_stop: 5s
    requests: [{url: "`+srv.URL+`/"}]
`)
	rec := NewRecorder()
	share := &surgev1.Share{Scenarios: []*surgev1.ScenarioShare{{Scenario: "s", Arrivals: 40, TotalArrivals: 40, PreAllocatedVus: 8, MaxVus: 40}}}
	scens, err := BuildScenarios(ShareOptions{Plan: p, Recorder: rec, RunID: "t", Share: share})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := RunScenarios(ctx, time.Now().Add(300*time.Millisecond), scens); err != nil {
		t.Fatal(err)
	}
	set, st := rec.Swap(time.Now())
	if st[0].Started+st[0].Dropped != 40 {
		t.Fatalf("started %d + dropped %d, want 40", st[0].Started, st[0].Dropped)
	}
	var connects int64
	if h := set.Total(nil).Phases[hist.PhaseConnect]; h != nil {
		connects = h.TotalCount()
	}
	if warmed := st[0].ConnsOpened - connects; warmed != 8 || accepted.Load() != st[0].ConnsOpened {
		t.Fatalf("%d connections opened (%d accepted), %d by requests: %d warmed, want 8",
			st[0].ConnsOpened, accepted.Load(), connects, warmed)
	}

	sc := &Scenario{Plan: p.Scenarios["s"], Clock: RealClock{}, Warm: func(context.Context, int64) {},
		Share: &surgev1.ScenarioShare{Arrivals: 4000, TotalArrivals: 4000, PreAllocatedVus: 8}}
	sc.Plan.Rate = 400
	if n := sc.warmCount(time.Now()); n != 4 {
		t.Errorf("at its start, a 400/s scenario warms %d VUs, want 4", n)
	}
	if n := sc.warmCount(time.Now().Add(time.Second)); n != 8 {
		t.Errorf("a second before its start, it warms %d VUs, want all 8", n)
	}
}
