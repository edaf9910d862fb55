package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/surgeload/surge/internal/cputime"
	"github.com/surgeload/surge/internal/freeport"

	"google.golang.org/grpc/encoding"

	"github.com/surgeload/surge/controller"
	surgev1 "github.com/surgeload/surge/gen/surge/v1"
)

// fleetResult is what one fleet simulation measured.
type fleetResult struct {
	o                   options
	snapshotsSent       int64
	acked               int64
	stops               int64
	expected, emitted   int
	lags                []time.Duration // per emitted interval, in interval order
	window              time.Duration   // from the run's start to its last progress
	ctrlCPU             time.Duration   // controller CPU over window
	peakCores           float64         // busiest sampled second
	simCPU              time.Duration   // this process over window
	ctrlRSSPeakKiB      int64
	bytesOut, bytesIn   int64 // agents' connections over window
	worstSendLate       time.Duration
	status, verdict     string
	requests, expected2 int64 // summary requests, requests the agents reported
	warn, errs          int
	logPath             string
}

// cpuSample is the controller's CPU time at a moment.
type cpuSample struct {
	at  time.Time
	cpu time.Duration
	rss int64
}

// fleetPlan is the plan the simulated agents accept: one open-model
// scenario (they send no traffic; the controller only splits it).
func fleetPlan(o options) []byte {
	return fmt.Appendf(nil, `name: fleet-sim
interval: %s
scenarios:
  %s:
    executor: constant-arrival-rate
    rate: %d
    time_unit: 1s
    duration: %s
    pre_allocated_vus: %d
    max_vus: %d
    graceful_stop: 0s
    requests:
      - url: http://127.0.0.1:9/
thresholds:
  http_req_duration: ["p(99)<500"]
`, o.interval, fleetScenario, o.agents*o.series*o.values, o.duration, o.agents, 2*o.agents)
}

// runFleet starts a controller, connects the simulated agents, runs one
// plan and measures the controller's CPU and the emission lag.
func runFleet(ctx context.Context, o options, dir string, log io.Writer) (*fleetResult, error) {
	res := &fleetResult{o: o, expected: int(o.duration / o.interval)}
	payloads, err := makePayloads(o.variants, o.series, o.values)
	if err != nil {
		return nil, err
	}
	if o.compress {
		if err := registerPrecompressor(payloads); err != nil {
			return nil, err
		}
	}
	addrs, err := freeport.Addrs(2)
	if err != nil {
		return nil, err
	}
	ctrl, err := startController(ctx, o.surge, dir, addrs[0], addrs[1])
	if err != nil {
		return nil, err
	}
	defer ctrl.stop(10 * time.Second)
	res.logPath = ctrl.log.Name()
	fmt.Fprintf(log, "controller pid %d on %s; connecting %d agents\n", ctrl.pid(), ctrl.addr, o.agents)

	var cnt counters
	fl, err := startFleet(ctx, o.agents, func(i int) simOptions {
		return simOptions{addr: ctrl.addr, compress: o.compress, intervals: int64(res.expected),
			offset: time.Duration(i) * o.jitter / time.Duration(max(o.agents, 1)), payloads: payloads, counters: &cnt}
	})
	if err != nil {
		return nil, err
	}
	defer fl.stop()
	if err := ctrl.waitAgents(ctx, o.agents, time.Minute); err != nil {
		return nil, err
	}
	starts := fl.run()
	sub, err := ctrl.runs.Submit(ctx, &surgev1.SubmitRequest{PlanYaml: fleetPlan(o), FileName: "fleet.yaml"})
	if err != nil {
		return nil, fmt.Errorf("submit: %w", err)
	}
	var start time.Time
	select {
	case start = <-starts:
	case <-time.After(10 * time.Second):
		return nil, errors.New("no agent got an assign with a start time")
	}
	fmt.Fprintf(log, "run %s with %d agents starts at %s\n", sub.GetRunId(), len(sub.GetAgents()), start.Format(time.TimeOnly))
	watch, err := watchRun(ctx, ctrl.runs, sub.GetRunId())
	if err != nil {
		return nil, err
	}
	defer watch.stop()

	if err := sleepUntil(ctx, start); err != nil {
		return nil, err
	}
	self0 := cputime.Process()
	out0, in0 := cnt.written.Load(), cnt.read.Load()
	samples, sum, err := sampleController(ctx, ctrl, watch, o.duration+2*time.Minute)
	if err != nil {
		return nil, err
	}
	arrivals, last := watch.seen()
	if last.IsZero() {
		last = time.Now()
	}
	res.simCPU = cputime.Process() - self0
	res.bytesOut, res.bytesIn = cnt.written.Load()-out0, cnt.read.Load()-in0
	res.fromSamples(samples, last)
	for i := range int64(res.expected) {
		if at, ok := arrivals[i]; ok {
			res.emitted++
			res.lags = append(res.lags, at.Sub(start.Add(time.Duration(i+1)*o.interval)))
		}
	}
	waitAcks(ctx, fl.agents, 5*time.Second)
	res.fromAgents(fl.agents, payloads)
	res.status, res.verdict = sum.GetStatus(), sum.GetVerdict()
	res.requests = sum.GetAll().GetRequests()
	if err := fl.stop(); err != nil {
		return nil, fmt.Errorf("simulated agents: %w", err)
	}
	ctrl.stop(10 * time.Second)
	res.warn, res.errs = logLevels(res.logPath)
	return res, nil
}

// registerPrecompressor registers the fleet's zstd compressor, which
// sends the payloads precompressed. It runs before any gRPC use: the
// registry is not safe to change later.
func registerPrecompressor(payloads *payloadSet) error {
	pc := newPrecompressor(controller.ZstdName)
	for _, raw := range payloads.raw {
		if err := pc.addPayload(raw); err != nil {
			return err
		}
	}
	encoding.RegisterCompressor(pc)
	return nil
}

// sampleController samples the controller's CPU and RSS every 250 ms
// until the run's summary arrives or within passes.
func sampleController(ctx context.Context, ctrl *controllerProc, watch *runWatch, within time.Duration) ([]cpuSample, *surgev1.RunSummary, error) {
	var samples []cpuSample
	sample := func() {
		c, err1 := ctrl.cpu()
		r, err2 := ctrl.rssKiB()
		if err1 == nil && err2 == nil {
			samples = append(samples, cpuSample{at: time.Now(), cpu: c, rss: r})
		}
	}
	sample()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(within)
	for {
		select {
		case <-tick.C:
			sample()
		case sum := <-watch.summary:
			sample()
			return samples, sum, nil
		case err := <-watch.err:
			return nil, nil, err
		case <-deadline:
			return nil, nil, fmt.Errorf("the run did not end within %s", within)
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		}
	}
}

// fromSamples sets the controller's CPU over [first sample, last
// progress], its busiest second and its RSS peak.
func (res *fleetResult) fromSamples(samples []cpuSample, last time.Time) {
	end := samples[len(samples)-1]
	for _, s := range samples {
		if !s.at.Before(last) {
			end = s
			break
		}
	}
	res.window = end.at.Sub(samples[0].at)
	res.ctrlCPU = end.cpu - samples[0].cpu
	for i := 1; i < len(samples); i++ {
		res.ctrlRSSPeakKiB = max(res.ctrlRSSPeakKiB, samples[i].rss)
		// busiest second: samples four apart (250 ms each)
		if j := i - 4; j >= 0 && !samples[i].at.After(end.at) {
			dt := samples[i].at.Sub(samples[j].at).Seconds()
			res.peakCores = max(res.peakCores, (samples[i].cpu-samples[j].cpu).Seconds()/dt)
		}
	}
}

// fromAgents adds up what the simulated agents sent and had acknowledged.
func (res *fleetResult) fromAgents(agents []*simAgent, payloads *payloadSet) {
	for i, a := range agents {
		res.snapshotsSent += a.sent.Load()
		res.acked += a.acked.Load()
		res.stops += a.stops.Load()
		res.worstSendLate = max(res.worstSendLate, time.Duration(a.worstSendLate.Load()))
		for v := range res.expected {
			res.expected2 += payloads.requests[(i+v)%len(payloads.requests)]
		}
	}
}

// simFleet is the simulated agents of one run and the goroutines that
// drive them.
type simFleet struct {
	agents  []*simAgent
	cancel  context.CancelFunc
	actx    context.Context
	recvWG  sync.WaitGroup
	runWG   sync.WaitGroup
	runErrs []error
	once    sync.Once
	err     error
}

// startFleet connects n simulated agents and starts reading their
// streams; stop ends them.
func startFleet(ctx context.Context, n int, o func(i int) simOptions) (*simFleet, error) {
	actx, cancel := context.WithCancel(ctx)
	agents, err := connectAll(actx, n, o)
	if err != nil {
		cancel()
		return nil, err
	}
	f := &simFleet{agents: agents, cancel: cancel, actx: actx, runErrs: make([]error, len(agents))}
	for _, a := range agents {
		f.recvWG.Go(a.recv)
	}
	return f, nil
}

// run starts every agent's run loop; the first to learn the run's start
// (in the controller's clock) sends it.
func (f *simFleet) run() <-chan time.Time {
	starts := make(chan time.Time, 1)
	for i, a := range f.agents {
		f.runWG.Go(func() { f.runErrs[i] = a.run(f.actx, starts, i) })
	}
	return starts
}

// stop ends the agents' runs and streams, once; it returns their errors
// other than being stopped.
func (f *simFleet) stop() error {
	f.once.Do(func() {
		f.cancel()
		f.runWG.Wait()
		for _, a := range f.agents {
			a.close()
		}
		f.recvWG.Wait()
		if err := errors.Join(f.runErrs...); err != nil && !errors.Is(err, context.Canceled) {
			f.err = err
		}
	})
	return f.err
}

// percentile is the p-th percentile (nearest rank) of ds.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond)) }

func verdict(ok bool) string {
	if ok {
		return "pass"
	}
	return "**miss**"
}

// markdown is the fleet result as a Markdown table and verdicts.
func (r *fleetResult) markdown(w io.Writer) {
	o := r.o
	cores := r.ctrlCPU.Seconds() / max(r.window.Seconds(), 1e-9)
	p50, p99, worst := percentile(r.lags, 50), percentile(r.lags, 99), percentile(r.lags, 100)
	comp := "none"
	if o.compress {
		comp = controller.ZstdName
	}
	perAgent := float64(r.bytesOut) / max(r.window.Seconds(), 1e-9) / float64(o.agents) / 1000
	fmt.Fprintf(w, "| agents | series × values | compression | intervals emitted | snapshots sent / acked | controller CPU (mean) | busiest second | emission lag p50 / p99 / max | agent → controller per agent | controller RSS peak |\n")
	fmt.Fprintf(w, "|---:|---|---|---:|---:|---:|---:|---|---:|---:|\n")
	fmt.Fprintf(w, "| %d | %d × %d | %s | %d of %d | %d / %d | %.2f cores | %.2f cores | %s / %s / %s | %.1f KB/s | %.0f MiB |\n",
		o.agents, o.series, o.values, comp, r.emitted, r.expected, r.snapshotsSent, r.acked, cores, r.peakCores,
		ms(p50), ms(p99), ms(worst), perAgent, float64(r.ctrlRSSPeakKiB)/1024)
	kept := r.acked == r.snapshotsSent && r.requests == r.expected2
	behind := ""
	if !kept {
		behind = fmt.Sprintf("; it fell behind: %d of %d snapshots acknowledged, %d of %d requests in the summary",
			r.acked, r.snapshotsSent, r.requests, r.expected2)
	}
	fmt.Fprintf(w, "\n- Controller under one core: %s (%.2f cores on average over %.1f s, busiest second %.2f%s).\n",
		verdict(cores < 1 && kept), cores, r.window.Seconds(), r.peakCores, behind)
	fmt.Fprintf(w, "- Emission lag p99 ≤ 500 ms: %s (%s; lag = arrival of an interval's progress at a `Runs.Watch` client − the interval's end).\n",
		verdict(p99 <= 500*time.Millisecond && r.emitted == r.expected), ms(p99))
	fmt.Fprintf(w, "- Lag per interval, in order (ms):")
	for _, l := range r.lags {
		fmt.Fprintf(w, " %d", l.Milliseconds())
	}
	fmt.Fprintln(w, ".")
	fmt.Fprintf(w, "- Run %s (verdict %s): %d requests in the summary, %d sent by the agents; %d Stop messages; controller log: %d warnings, %d errors.\n",
		r.status, r.verdict, r.requests, r.expected2, r.stops, r.warn, r.errs)
	fmt.Fprintf(w, "- This simulator used %.2f cores meanwhile (same machine); its snapshots left at most %s after their planned time.\n",
		r.simCPU.Seconds()/max(r.window.Seconds(), 1e-9), ms(r.worstSendLate))
}
