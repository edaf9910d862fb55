package executor

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/surgeload/surge/hist"
	"github.com/surgeload/surge/internal/cputime"
	"github.com/surgeload/surge/plan"
)

// With a spin, the precise waiter's timer is armed spin before the
// instant (without, at it), and the wait still never ends before it.
func TestSpinWaiterArmsEarly(t *testing.T) {
	for _, spin := range []time.Duration{0, 50 * time.Microsecond, 200 * time.Microsecond, MaxPacingSpin} {
		t.Run(spin.String(), func(t *testing.T) {
			w := newSpinWaiter(context.Background(), RealClock{}, spin)
			defer w.close()
			pw, ok := w.(*preciseWaiter)
			if !ok {
				t.Skip("no precise waiter on this platform")
			}
			for range 5 {
				// Far enough ahead that the sleep is neither skipped (the
				// instant is more than spin away) nor held back by the
				// quantum (the last wake-up is in the past).
				at := time.Now().Add(spin + wakeQuantum + 2*time.Millisecond)
				if !w.until(at) {
					t.Fatal("until = false")
				}
				if now := time.Now(); now.Before(at) {
					t.Fatalf("until returned %v early", at.Sub(now))
				}
				if want := at.Add(-spin); !pw.wake.Equal(want) {
					t.Fatalf("timer armed for the instant %+v, want %+v", pw.wake.Sub(at), -spin)
				}
			}
		})
	}
}

// A spinning waiter never returns before the instant, whether the wait
// sleeps first or only spins, and waits close together (batched by the
// quantum without a spin) are not early either.
func TestSpinWaiterNeverEarly(t *testing.T) {
	spin := 200 * time.Microsecond
	for _, kind := range []string{"precise", "timer"} {
		t.Run(kind, func(t *testing.T) {
			ctx := context.Background()
			var w waiter = &timerWaiter{ctx: ctx, c: RealClock{}, spin: spin}
			if kind == "precise" {
				w = newSpinWaiter(ctx, RealClock{}, spin)
			}
			defer w.close()
			waits := 0
			for _, d := range []time.Duration{-time.Millisecond, 0, time.Microsecond, 50 * time.Microsecond,
				spin, spin + time.Microsecond, 300 * time.Microsecond, time.Millisecond, 3 * time.Millisecond} {
				for range 20 {
					at := time.Now().Add(d)
					if !w.until(at) {
						t.Fatalf("until(now%+v) = false", d)
					}
					if now := time.Now(); now.Before(at) {
						t.Fatalf("until(now%+v) returned %v early", d, at.Sub(now))
					}
					waits++
				}
			}
			if waits != 9*20 {
				t.Fatalf("%d waits, want %d", waits, 9*20)
			}
		})
	}
}

// A spin ends with its context: a wait within the spin of an ended
// context returns false, as a sleeping one does.
func TestSpinWaiterContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, kind := range []string{"precise", "timer"} {
		var w waiter = &timerWaiter{ctx: ctx, c: RealClock{}, spin: MaxPacingSpin}
		if kind == "precise" {
			w = newSpinWaiter(ctx, RealClock{}, MaxPacingSpin)
		}
		for _, d := range []time.Duration{100 * time.Microsecond, time.Hour} {
			if w.until(time.Now().Add(d)) {
				t.Errorf("%s: until(now+%v) = true after the context ended", kind, d)
			}
		}
		w.close()
	}
}

// The spin is bounded to [0, MaxPacingSpin] and off the real clock never
// spins (a fake clock's time does not move while the loop looks at it).
func TestSpinWaiterBounds(t *testing.T) {
	for spin, want := range map[time.Duration]time.Duration{-time.Second: 0, 0: 0, 100 * time.Microsecond: 100 * time.Microsecond, time.Second: MaxPacingSpin} {
		w := newSpinWaiter(context.Background(), RealClock{}, spin)
		var got time.Duration
		switch w := w.(type) {
		case *preciseWaiter:
			got = w.spin
		case *timerWaiter:
			got = w.spin
		}
		w.close()
		if got != want {
			t.Errorf("spin %v: waiter spins %v, want %v", spin, got, want)
		}
	}
	fc := newFakeClock(time.Unix(1000, 0))
	w := newSpinWaiter(context.Background(), fc, time.Millisecond)
	defer w.close()
	if tw, ok := w.(*timerWaiter); !ok || tw.spin != 0 {
		t.Fatalf("fake clock: waiter %#v, want a timer waiter without spin", w)
	}
}

// BuildScenarios hands the share's pacing spin to every scenario.
func TestBuildScenariosPacingSpin(t *testing.T) {
	p, err := plan.Parse("spin.yaml", []byte(`
scenarios:
  s:
    executor: constant-arrival-rate
    rate: 10
    duration: 1s
    pre_allocated_vus: 1
    requests: [{url: "http://127.0.0.1:9/"}]
`))
	if err != nil {
		t.Fatal(err)
	}
	scens, err := BuildScenarios(ShareOptions{Plan: p, Recorder: NewRecorder(), RunID: "spin", PacingSpin: 70 * time.Microsecond,
		Share: plan.Share{Scenarios: []plan.ScenarioShare{{Scenario: "s", Arrivals: 10, TotalArrivals: 10, PreAllocVUs: 1, MaxVUs: 1}}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range scens {
		s.client.Close()
		if s.PacingSpin != 70*time.Microsecond {
			t.Fatalf("scenario %s: pacing spin %v, want 70µs", s.Name, s.PacingSpin)
		}
	}
}

// benchSpins are the spins the spin benchmarks compare: SURGE_BENCH_SPINS
// (durations, comma-separated), default 0,50µs,100µs,200µs.
func benchSpins(b *testing.B) []time.Duration {
	v := os.Getenv("SURGE_BENCH_SPINS")
	if v == "" {
		v = "0,50us,100us,200us"
	}
	var spins []time.Duration
	for _, f := range strings.Split(v, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(f))
		if err != nil {
			b.Fatalf("SURGE_BENCH_SPINS: %v", err)
		}
		spins = append(spins, d)
	}
	return spins
}

// BenchmarkSpinWaiter measures how late the precise waiter wakes for
// waits 1 ms apart (1000/s) with each spin of SURGE_BENCH_SPINS, and its
// CPU per wait:
//
//	go test -run '^$' -bench SpinWaiter -benchtime 5000x ./agent/executor/
func BenchmarkSpinWaiter(b *testing.B) {
	for _, spin := range benchSpins(b) {
		b.Run(fmt.Sprintf("spin=%v", spin), func(b *testing.B) {
			w := newSpinWaiter(context.Background(), RealClock{}, spin)
			defer w.close()
			benchWaits(b, w, time.Millisecond)
		})
	}
}

// BenchmarkSpinOpenModel runs a constant-arrival-rate scenario of b.N
// arrivals at SURGE_BENCH_RATE (default 1000/s) with each spin of
// SURGE_BENCH_SPINS, against SURGE_BENCH_URL or an in-process server, and
// reports the send lateness the recorder measured, the process's CPU per
// arrival and how long its threads waited for a CPU (the machine's
// noise):
//
//	SURGE_BENCH_URL=http://127.0.0.1:8080/ go test -run '^$' \
//	  -bench SpinOpenModel -benchtime 10000x ./agent/executor/
func BenchmarkSpinOpenModel(b *testing.B) {
	url, external := os.LookupEnv("SURGE_BENCH_URL")
	if !external {
		url = loopbackServer(b)
	}
	rate := 1000
	if v := os.Getenv("SURGE_BENCH_RATE"); v != "" {
		r, err := strconv.Atoi(v)
		if err != nil || r <= 0 {
			b.Fatalf("SURGE_BENCH_RATE: %q is not a rate", v)
		}
		rate = r
	}
	for _, spin := range benchSpins(b) {
		b.Run(fmt.Sprintf("rate=%d/spin=%v", rate, spin), func(b *testing.B) {
			rec := NewRecorder()
			scens, total := openModelScenarios(b, rate, url, spin, rec)
			start := time.Now().Add(benchLead)
			b.ResetTimer()
			// The CPU includes the warm-up of the pre-allocated VUs'
			// connections before the start.
			cpu, rq := int64(cputime.Process()), runqWait()
			if err := RunScenarios(context.Background(), start, scens); err != nil {
				b.Fatal(err)
			}
			cpu, rq = int64(cputime.Process())-cpu, runqWait()-rq
			b.StopTimer()
			_, st := rec.Swap(time.Now())
			late := hist.New()
			if _, err := hist.MergeProto(late, st[0].GetLateness()); err != nil {
				b.Fatal(err)
			}
			started := st[0].GetStarted()
			if started+st[0].GetDropped() != total {
				b.Errorf("%d started + %d dropped, want %d arrivals", started, st[0].GetDropped(), total)
			}
			b.ReportMetric(float64(late.ValueAtQuantile(50)), "late-p50-µs")
			b.ReportMetric(float64(late.ValueAtQuantile(99)), "late-p99-µs")
			b.ReportMetric(float64(late.Max()), "late-max-µs")
			b.ReportMetric(float64(cpu)/float64(max(started, 1)), "cpu-ns/arrival")
			b.ReportMetric(float64(rq)/1e6, "runq-wait-ms")
		})
	}
}
