package executor

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/surgeload/surge/agent/httpclient"
	surgev1 "github.com/surgeload/surge/gen/surge/v1"
	"github.com/surgeload/surge/hist"
	"github.com/surgeload/surge/internal/cputime"
	"github.com/surgeload/surge/internal/tcptest"
	"github.com/surgeload/surge/plan"
)

// BenchmarkIteration measures one whole open-model iteration as an agent
// runs it: the VU's state, the HTTP/1.1 request on the VU's keep-alive
// connection, the checks and the recorder (latency, service time, ttfb,
// counters), against the bare client's Session.Do on the same server:
//
//	go test -run '^$' -bench Iteration -benchmem ./agent/executor/
//
// The server is SURGE_BENCH_URL when set (nginx in scripts/bench), which
// makes cpu-ns/op the client's CPU alone; otherwise an in-process loopback
// server, whose CPU counts too (allocations are the client's either way).
// seq is one VU; par is 16 VUs (8 per GOMAXPROCS), each on its own
// connection.
func BenchmarkIteration(b *testing.B) {
	url, external := os.LookupEnv("SURGE_BENCH_URL")
	if !external {
		url = loopbackServer(b)
	}
	p, err := plan.Parse("bench.yaml", []byte(`
scenarios:
  s:
    executor: constant-arrival-rate
    rate: 1000
    duration: 1m
    pre_allocated_vus: 1
    requests: [{name: get, url: "`+url+`"}]
`))
	if err != nil {
		b.Fatal(err)
	}
	sc := p.Scenarios["s"]
	type impl struct {
		name string
		// mk returns one VU's iteration.
		mk func(b *testing.B) func(vu int64) func() bool
	}
	impls := []impl{
		{"client", func(b *testing.B) func(int64) func() bool {
			c := newBenchClient(b)
			req, err := httpclient.Prepare(sc.Requests[0])
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			return func(int64) func() bool {
				s := c.Session()
				b.Cleanup(s.Close)
				return func() bool { return !s.Do(ctx, req, nil, time.Now).Failed() }
			}
		}},
		{"iteration", func(b *testing.B) func(int64) func() bool {
			c := newBenchClient(b)
			rec := NewRecorder().Scenario("s")
			it, err := PlanIteration(sc, IterationOptions{Client: c, Rec: rec})
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			return func(vu int64) func() bool {
				return func() bool { return it(ctx, vu, time.Now()) }
			}
		}},
	}
	for _, im := range impls {
		b.Run(im.name+"/seq", func(b *testing.B) {
			do := im.mk(b)(1)
			b.ReportAllocs()
			cpu := int64(cputime.Process())
			for b.Loop() {
				if !do() {
					b.Fatal("iteration failed")
				}
			}
			if external {
				b.ReportMetric(float64(int64(cputime.Process())-cpu)/float64(b.N), "cpu-ns/op")
			}
		})
		b.Run(im.name+"/par", func(b *testing.B) {
			mk := im.mk(b)
			var mu sync.Mutex
			var vu int64
			b.ReportAllocs()
			b.SetParallelism(8)
			cpu := int64(cputime.Process())
			b.RunParallel(func(pb *testing.PB) {
				mu.Lock()
				vu++
				do := mk(vu)
				mu.Unlock()
				for pb.Next() {
					if !do() {
						b.Error("iteration failed")
						return
					}
				}
			})
			if external {
				b.ReportMetric(float64(int64(cputime.Process())-cpu)/float64(b.N), "cpu-ns/op")
			}
		})
	}
}

// BenchmarkOpenModel runs a constant-arrival-rate scenario as the agent
// does (BuildScenarios, RunScenarios, a Swap of the recorder at every
// 1-second boundary) for b.N arrivals at each rate of SURGE_BENCH_RATES
// (default 1000,10000), against SURGE_BENCH_URL or an in-process server,
// and reports the send lateness the recorder measured (p50, p99, max),
// the dropped iterations and the worst full window's error (started vs
// planned, %), and the process's CPU and context switches per arrival
// and how long its threads waited for a CPU (the machine's noise). The
// scenario runs SURGE_BENCH_LEAD (a duration, default 1s) before its
// start, as an agent launches its parts when they are assigned:
//
//	SURGE_BENCH_URL=http://127.0.0.1:8080/ go test -run '^$' \
//	  -bench OpenModel -benchtime 100000x ./agent/executor/
func BenchmarkOpenModel(b *testing.B) {
	url, external := os.LookupEnv("SURGE_BENCH_URL")
	if !external {
		url = loopbackServer(b)
	}
	rates := []int{1000, 10000}
	if v := os.Getenv("SURGE_BENCH_RATES"); v != "" {
		rates = nil
		for _, f := range strings.Split(v, ",") {
			r, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || r <= 0 {
				b.Fatalf("SURGE_BENCH_RATES: %q is not a rate", f)
			}
			rates = append(rates, r)
		}
	}
	for _, rate := range rates {
		b.Run(fmt.Sprintf("rate=%d", rate), func(b *testing.B) {
			rec := NewRecorder()
			scens, total := openModelScenarios(b, rate, url, 0, rec)
			start := time.Now().Add(benchLead)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			b.ReportAllocs()
			b.ResetTimer()
			cpu, csw, rq := int64(cputime.Process()), ctxSwitches(), runqWait()
			go func() { done <- RunScenarios(ctx, start, scens) }()
			// Swap at every boundary, as the agent does, until the run ends.
			var (
				windows []*surgev1.ScenarioStats
				enc     hist.Encoder
			)
			late, win := hist.New(), hist.New()
			swap := func(at time.Time) {
				set, st := rec.Swap(at)
				set.EncodeProto(&enc) // as the agent does, which then recycles the set
				rec.Recycle(set)
				win.Reset()
				if _, err := hist.MergeProto(win, st[0].GetLateness()); err != nil {
					b.Fatal(err)
				}
				late.Merge(win)
				if testing.Verbose() {
					b.Logf("window %d: started %d dropped %d lateness p50 %dµs p99 %dµs max %dµs; VUs %d, conns opened %d",
						len(windows), st[0].GetStarted(), st[0].GetDropped(), win.ValueAtQuantile(50), win.ValueAtQuantile(99), win.Max(),
						st[0].GetAllocatedVus(), st[0].GetConnsOpened())
				}
				windows = append(windows, st[0])
			}
			tm := time.NewTimer(time.Until(start.Add(time.Second)))
			defer tm.Stop()
		loop:
			for k := 1; ; k++ {
				select {
				case err := <-done:
					if err != nil {
						b.Fatal(err)
					}
					break loop
				case <-tm.C:
					swap(start.Add(time.Duration(k) * time.Second))
					tm.Reset(time.Until(start.Add(time.Duration(k+1) * time.Second)))
				}
			}
			b.StopTimer()
			cpu, csw, rq = int64(cputime.Process())-cpu, ctxSwitches()-csw, runqWait()-rq
			swap(time.Now())
			var dropped, started int64
			worst := 0.0
			for i, w := range windows {
				dropped += w.GetDropped()
				started += w.GetStarted()
				if i > 0 && i < len(windows)-1 && w.GetScheduled() == int64(rate) { // a full window
					worst = max(worst, math.Abs(float64(w.GetStarted()-int64(rate)))/float64(rate))
				}
			}
			if started+dropped != total {
				b.Errorf("%d started + %d dropped, want %d arrivals", started, dropped, total)
			}
			b.ReportMetric(float64(late.ValueAtQuantile(50)), "late-p50-µs")
			b.ReportMetric(float64(late.ValueAtQuantile(90)), "late-p90-µs")
			b.ReportMetric(float64(late.ValueAtQuantile(99)), "late-p99-µs")
			b.ReportMetric(float64(late.ValueAtQuantile(99.9)), "late-p999-µs")
			b.ReportMetric(float64(late.Max()), "late-max-µs")
			b.ReportMetric(float64(dropped), "dropped")
			b.ReportMetric(100*worst, "worst-window-%")
			b.ReportMetric(float64(cpu)/float64(max(started, 1)), "cpu-ns/arrival")
			b.ReportMetric(float64(csw)/float64(max(started, 1)), "csw/arrival")
			b.ReportMetric(float64(rq)/1e6, "runq-wait-ms")
		})
	}
}

// ctxSwitches returns this process's context switches (voluntary and
// not): each is a thread going to sleep or being preempted.
func ctxSwitches() int64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Nvcsw + ru.Nivcsw
}

// runqWait returns how long this process's threads waited for a CPU while
// runnable (nanoseconds; Linux schedstat, else 0): time the machine's
// other processes took from it, the noise under its lateness.
func runqWait() int64 {
	tasks, _ := os.ReadDir("/proc/self/task")
	var sum int64
	for _, t := range tasks {
		b, err := os.ReadFile("/proc/self/task/" + t.Name() + "/schedstat")
		if f := strings.Fields(string(b)); err == nil && len(f) >= 2 {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			sum += n
		}
	}
	return sum
}

// newBenchClient is a default client, closed when the benchmark ends.
func newBenchClient(b *testing.B) *httpclient.Client {
	c, err := httpclient.New(httpclient.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.Close)
	return c
}

// loopbackServer answers every request with a small keep-alive response
// until the benchmark ends, and returns its URL.
func loopbackServer(b *testing.B) string { return loopbackReply(b, "text/plain", "ok") }

// loopbackReply is loopbackServer answering body as ctype.
func loopbackReply(b *testing.B, ctype, body string) string {
	resp := fmt.Appendf(nil, "HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: %s\r\nContent-Length: %d\r\nConnection: keep-alive\r\n\r\n%s",
		ctype, len(body), body)
	return "http://" + tcptest.Serve(b, func(c net.Conn) {
		buf := make([]byte, 16<<10)
		var out []byte
		tail := 0 // bytes of a request head seen so far, at the buffer's end
		for {
			n, err := c.Read(buf[tail:])
			if err != nil {
				return
			}
			in := buf[:tail+n]
			out = out[:0]
			for {
				i := bytes.Index(in, []byte("\r\n\r\n"))
				if i < 0 {
					break
				}
				out = append(out, resp...)
				in = in[i+4:]
			}
			tail = copy(buf, in)
			if _, err := c.Write(out); err != nil {
				return
			}
		}
	}) + "/"
}

// BenchmarkIdleVUs holds b.N closed-model VUs, each with a request in
// flight on its own keep-alive connection to a server that never answers
// (the server keeps the accepted connections and reads nothing, so its
// side costs only the kernel's socket buffers), and reports what each VU
// and its connection cost this process: goroutine stack, heap after a GC,
// and resident memory (RSS growth):
//
//	go test -run '^$' -bench IdleVUs -benchtime 2000x ./agent/executor/
func BenchmarkIdleVUs(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	})
	defer func() {
		ln.Close()
		wg.Wait()
		for _, c := range conns {
			c.Close()
		}
	}()
	n := b.N
	p, err := plan.Parse("bench.yaml", []byte(fmt.Sprintf(`
scenarios:
  s:
    executor: constant-vus
    vus: %d
    duration: 1h
    graceful_stop: 0s
    requests: [{name: get, url: "http://%s/", timeout: 1h}]
`, n, ln.Addr())))
	if err != nil {
		b.Fatal(err)
	}
	before := memNow(b)
	rec := NewRecorder()
	scens, err := BuildScenarios(ShareOptions{Plan: p, Recorder: rec, RunID: "bench", Share: plan.Share{
		Scenarios: []plan.ScenarioShare{{Scenario: "s", VUs: int64(n)}}}})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- RunScenarios(ctx, time.Now(), scens) }()
	// Wait until every VU's request was written: each connection was
	// accepted, and the kernel holds the request.
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) {
		mu.Lock()
		k := len(conns)
		mu.Unlock()
		if k >= n {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d connections after a minute", k, n)
		}
	}
	time.Sleep(200 * time.Millisecond) // the last requests leave
	after := memNow(b)
	cancel()
	<-done
	b.ReportMetric(float64(after.stack-before.stack)/float64(n), "stack-B/vu")
	b.ReportMetric(float64(after.heap-before.heap)/float64(n), "heap-B/vu")
	b.ReportMetric(float64(after.rss-before.rss)/float64(n), "rss-B/vu")
}

type memSample struct{ stack, heap, rss int64 }

// memNow is this process's goroutine stacks and live heap (after a GC) and
// its resident memory.
func memNow(b *testing.B) memSample {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s := memSample{stack: int64(ms.StackInuse), heap: int64(ms.HeapAlloc)}
	st, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return s // not Linux: no RSS
	}
	for _, l := range strings.Split(string(st), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			s.rss = kb << 10
		}
	}
	return s
}

// BenchmarkWaiter measures how late the arrival loop's waiter wakes (no
// requests: the floor of send lateness on this machine), for waits of 1 ms
// (1000/s) and 100 µs (10,000/s), against the runtime's timer:
//
//	go test -run '^$' -bench Waiter -benchtime 2000x ./agent/executor/
func BenchmarkWaiter(b *testing.B) {
	for _, gap := range []time.Duration{time.Millisecond, 100 * time.Microsecond} {
		for _, kind := range []string{"precise", "timer"} {
			b.Run(fmt.Sprintf("%s/gap=%s", kind, gap), func(b *testing.B) {
				ctx := context.Background()
				var w waiter = &timerWaiter{ctx: ctx, c: RealClock{}}
				if kind == "precise" {
					w = newWaiter(ctx, RealClock{})
				}
				defer w.close()
				benchWaits(b, w, gap)
			})
		}
	}
}

// benchWaits waits for instants gap apart with w for b's loop and reports
// the CPU per wait and how late the waits ended (p50, p99, max, in µs with
// nanosecond resolution).
func benchWaits(b *testing.B, w waiter, gap time.Duration) {
	b.Helper()
	late := hist.New()
	cpu := int64(cputime.Process())
	t0 := time.Now()
	i := 0
	for b.Loop() {
		i++
		at := t0.Add(time.Duration(i) * gap)
		w.until(at)
		_ = late.RecordValue(hist.Clamp(time.Since(at).Nanoseconds()))
	}
	b.ReportMetric(float64(int64(cputime.Process())-cpu)/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(late.ValueAtQuantile(50))/1e3, "late-p50-µs")
	b.ReportMetric(float64(late.ValueAtQuantile(99))/1e3, "late-p99-µs")
	b.ReportMetric(float64(late.Max())/1e3, "late-max-µs")
}

// benchLead is how long before its start BenchmarkOpenModel runs the
// scenario (an agent launches its parts when assigned, at least a second
// before the start).
var benchLead = func() time.Duration {
	d, err := time.ParseDuration(os.Getenv("SURGE_BENCH_LEAD"))
	if err != nil {
		return time.Second
	}
	return d
}()

// openModelScenarios builds one constant-arrival-rate scenario of b.N
// arrivals at rate against url (pre-allocated VUs min(rate, 256), max
// min(rate, 2048)) recording into rec, with the pacing spin; total is its
// arrivals.
func openModelScenarios(b *testing.B, rate int, url string, spin time.Duration, rec *Recorder) (scens []*Scenario, total int64) {
	b.Helper()
	d := max((time.Duration(b.N) * time.Second / time.Duration(rate)).Round(time.Millisecond), time.Millisecond)
	p, err := plan.Parse("bench.yaml", []byte(fmt.Sprintf(`
scenarios:
  s:
    executor: constant-arrival-rate
    rate: %d
    duration: %s
    pre_allocated_vus: %d
    max_vus: %d
    graceful_stop: 2s
    requests: [{name: get, url: "%s"}]
`, rate, d, min(rate, 256), min(rate, 2048), url)))
	if err != nil {
		b.Fatal(err)
	}
	total = p.Scenarios["s"].TotalArrivals()
	scens, err = BuildScenarios(ShareOptions{Plan: p, Recorder: rec, RunID: "bench", PacingSpin: spin, Share: plan.Share{
		Scenarios: []plan.ScenarioShare{{Scenario: "s", Arrivals: total, TotalArrivals: total,
			PreAllocVUs: int64(min(rate, 256)), MaxVUs: int64(min(rate, 2048))}}}})
	if err != nil {
		b.Fatal(err)
	}
	return scens, total
}
