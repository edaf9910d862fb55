package executor

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/surgeload/surge/hist"
	"github.com/surgeload/surge/internal/ciskip"
	"github.com/surgeload/surge/plan"
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

// Wake-ups of the precise waiter are at least wakeQuantum apart:
// instants due closer together are waited for together (late), never
// early.
func TestPreciseWaiterQuantum(t *testing.T) {
	w := newWaiter(context.Background(), RealClock{})
	defer w.close()
	pw, ok := w.(*preciseWaiter)
	if !ok {
		t.Skip("no precise waiter on this platform")
	}
	checked := 0
	for range 100 {
		w.until(time.Now().Add(time.Millisecond))
		woke := pw.woke
		at := woke.Add(wakeQuantum / 4)
		if !time.Now().Before(at) {
			continue // this goroutine was descheduled past at: an arrival already due is not delayed
		}
		w.until(at)
		if now := time.Now(); now.Sub(woke) < wakeQuantum {
			t.Fatalf("a wait for %v after a wake-up returned %v after it, want at least %v",
				at.Sub(woke), now.Sub(woke), wakeQuantum)
		}
		if checked++; checked == 3 {
			return
		}
	}
	ciskip.Skipf(t, "only %d waits checked: the machine is too busy", checked)
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
	share := plan.Share{Scenarios: []plan.ScenarioShare{{Scenario: "s", Arrivals: 40, TotalArrivals: 40, PreAllocVUs: 8, MaxVUs: 40}}}
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
		Share: plan.ScenarioShare{Arrivals: 4000, TotalArrivals: 4000, PreAllocVUs: 8}}
	sc.Plan.Rate = 400
	if n := sc.warmCount(time.Now()); n != 4 {
		t.Errorf("at its start, a 400/s scenario warms %d VUs, want 4", n)
	}
	if n := sc.warmCount(time.Now().Add(time.Second)); n != 8 {
		t.Errorf("a second before its start, it warms %d VUs, want all 8", n)
	}
}

// An arrival past the late bound that finds no idle VU grows the pool by
// one VU per catchUpWait at most. Otherwise it waits for a VU to come back
// (after a stall the VUs' answers have arrived, they only need to run),
// and grows the pool once the wait ends without one; once the loop has
// been past the late bound for more than catchUpLimit (it cannot keep up)
// it is dropped at once.
func TestCatchUpGrowsSlowly(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	fc := newFakeClock(t0.Add(50 * time.Millisecond)) // 50 ms behind
	s := &Scenario{Clock: fc, LateBound: DefaultLateBound}
	pool := &vuPool{max: 8, freed: make(chan struct{}, 1)}
	pool.mu.Lock()
	busy := pool.grow(true, false)
	pool.mu.Unlock()
	allocated := func(want int64) {
		t.Helper()
		if _, n := pool.gauges(); n != want {
			t.Fatalf("%d VUs allocated, want %d", n, want)
		}
	}

	if v, fresh := s.takeVU(context.Background(), pool, t0); v == nil || !fresh {
		t.Fatalf("first late arrival took VU %v (fresh %v), want a new one", v, fresh)
	}
	allocated(2)

	type took struct {
		v     *vuSlot
		fresh bool
	}
	got := make(chan took, 1)
	take := func() {
		go func() {
			v, fresh := s.takeVU(context.Background(), pool, t0)
			got <- took{v, fresh}
		}()
		select {
		case <-fc.added: // it waits, on a timer
		case r := <-got:
			t.Fatalf("took VU %v (fresh %v) without waiting", r.v, r.fresh)
		}
	}
	take()
	pool.put(busy) // an iteration ends
	if r := <-got; r.v != busy || r.fresh {
		t.Fatalf("took VU %v (fresh %v), want the busy VU back", r.v, r.fresh)
	}
	allocated(2)

	take()
	if !fc.advance() { // no VU came back within the wait
		t.Fatal("no timer to fire")
	}
	if r := <-got; r.v == nil || !r.fresh {
		t.Fatalf("took VU %v (fresh %v), want a new one", r.v, r.fresh)
	}
	allocated(3)

	// Past the late bound for longer than catchUpLimit: one arrival grows
	// the pool, the next one (within catchUpWait) is dropped at once.
	fc.mu.Lock()
	fc.now = fc.now.Add(catchUpLimit)
	fc.mu.Unlock()
	if v, fresh := s.takeVU(context.Background(), pool, t0.Add(catchUpLimit)); v == nil || !fresh {
		t.Fatalf("took VU %v (fresh %v), want a new one", v, fresh)
	}
	allocated(4)
	if v, fresh := s.takeVU(context.Background(), pool, t0.Add(catchUpLimit)); v != nil || fresh {
		t.Fatalf("took VU %v (fresh %v) for an arrival the loop could not keep up with, want none", v, fresh)
	}
	allocated(4)
}

// A recycled set is recorded into again, cleared: the same histograms,
// no counts carried over. A set with a series that recorded nothing is
// not recycled, so a key no longer recorded does not stay.
func TestRecorderRecycle(t *testing.T) {
	rec := NewRecorder()
	sr := rec.Scenario("s")
	keyA := hist.Key{Scenario: "s", Request: "a", Status: "2xx"}
	keyB := hist.Key{Scenario: "s", Request: "b", Status: "2xx"}
	interval := func(reqs ...string) *hist.Set {
		for _, r := range reqs {
			sr.Request(r, "2xx", time.Millisecond, time.Millisecond, hist.Counters{Requests: 1})
		}
		set, _ := rec.Swap(time.Now())
		return set
	}
	set1 := interval("a")
	lat := set1.Lookup(keyA).Latency
	rec.Recycle(set1)
	rec.Recycle(interval("a")) // the set of interval 2 was new; set1 records interval 3
	set3 := interval("b")
	if set3 != set1 {
		t.Fatal("the recycled set did not record a later interval")
	}
	a, b := set3.Lookup(keyA), set3.Lookup(keyB)
	if a.Latency != lat || a.Counters.Requests != 0 || a.Latency.TotalCount() != 0 {
		t.Fatalf("recycled series a: requests %d, %d values, same histogram %v; want 0, 0, true",
			a.Counters.Requests, a.Latency.TotalCount(), a.Latency == lat)
	}
	if b.Counters.Requests != 1 || b.Latency.TotalCount() != 1 {
		t.Fatalf("series b: requests %d, %d values; want 1, 1", b.Counters.Requests, b.Latency.TotalCount())
	}
	// From here on only b is recorded: the sets holding an empty a are
	// dropped, within two intervals.
	rec.Recycle(set3)
	for i := range 3 {
		set := interval("b")
		rec.Recycle(set)
		if i == 2 && (set.Len() != 1 || set.Lookup(keyA) != nil) {
			t.Fatalf("interval %d: %d series (a present: %v), want b alone", 6+i, set.Len(), set.Lookup(keyA) != nil)
		}
	}
}
