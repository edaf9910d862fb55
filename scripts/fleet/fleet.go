package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sync"
	"syscall"
	"time"

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
		pc := newPrecompressor(controller.ZstdName)
		for _, raw := range payloads.raw {
			if err := pc.addPayload(raw); err != nil {
				return nil, err
			}
		}
		// Before any gRPC use: the registry is not safe to change later.
		encoding.RegisterCompressor(pc)
	}
	addrs, err := freeAddrs(2)
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
	actx, cancelAgents := context.WithCancel(ctx)
	defer cancelAgents()
	agents, err := connectAll(actx, o.agents, func(i int) simOptions {
		return simOptions{addr: ctrl.addr, compress: o.compress, intervals: int64(res.expected),
			offset: time.Duration(i) * o.jitter / time.Duration(max(o.agents, 1)), payloads: payloads, counters: &cnt}
	})
	if err != nil {
		return nil, err
	}
	var recvWG sync.WaitGroup
	for _, a := range agents {
		recvWG.Go(a.recv)
	}
	var runWG sync.WaitGroup
	runErrs := make([]error, len(agents))
	defer func() {
		cancelAgents()
		runWG.Wait()
		for _, a := range agents {
			a.close()
		}
		recvWG.Wait()
	}()
	if err := ctrl.waitAgents(ctx, o.agents, time.Minute); err != nil {
		return nil, err
	}
	starts := make(chan time.Time, 1)
	for i, a := range agents {
		runWG.Go(func() { runErrs[i] = a.run(actx, starts, i) })
	}

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
	wctx, cancelWatch := context.WithCancel(ctx)
	defer cancelWatch()
	watch, err := ctrl.runs.Watch(wctx, &surgev1.WatchRequest{RunId: sub.GetRunId()})
	if err != nil {
		return nil, fmt.Errorf("watch: %w", err)
	}

	// Sample the controller every 250 ms from the run's start.
	if err := sleepUntil(ctx, start); err != nil {
		return nil, err
	}
	var samples []cpuSample
	sample := func() {
		c, err1 := ctrl.cpu()
		r, err2 := ctrl.rssKiB()
		if err1 == nil && err2 == nil {
			samples = append(samples, cpuSample{at: time.Now(), cpu: c, rss: r})
		}
	}
	sample()
	self0 := selfCPU()
	out0, in0 := cnt.written.Load(), cnt.read.Load()
	type arrival struct {
		interval int64
		at       time.Time
	}
	updates := make(chan arrival, 1024)
	summary := make(chan *surgev1.RunSummary, 1)
	watchErr := make(chan error, 1)
	var watchWG sync.WaitGroup
	watchWG.Go(func() { // ends when the watch ends or wctx does
		for {
			u, err := watch.Recv()
			if err != nil {
				watchErr <- err
				return
			}
			switch m := u.GetUpdate().(type) {
			case *surgev1.RunUpdate_Progress:
				updates <- arrival{interval: m.Progress.GetInterval(), at: time.Now()}
			case *surgev1.RunUpdate_Summary:
				summary <- m.Summary
				return
			}
		}
	})
	defer watchWG.Wait()
	defer cancelWatch()

	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	arrivals := map[int64]time.Time{}
	var last time.Time
	deadline := time.After(o.duration + 2*time.Minute)
	var sum *surgev1.RunSummary
wait:
	for {
		select {
		case <-tick.C:
			sample()
		case a := <-updates:
			if _, dup := arrivals[a.interval]; !dup {
				arrivals[a.interval] = a.at
			}
			last = a.at
		case sum = <-summary:
			break wait
		case err := <-watchErr:
			return nil, fmt.Errorf("watch: %w", err)
		case <-deadline:
			return nil, fmt.Errorf("the run did not end within %s of its duration", 2*time.Minute)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	for len(updates) > 0 { // progress sent before the summary
		a := <-updates
		if _, dup := arrivals[a.interval]; !dup {
			arrivals[a.interval] = a.at
		}
		last = a.at
	}
	sample()
	if last.IsZero() {
		last = time.Now()
	}
	res.simCPU = selfCPU() - self0
	res.bytesOut, res.bytesIn = cnt.written.Load()-out0, cnt.read.Load()-in0
	// CPU over [start, last progress], from the samples around it.
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
	for i := range int64(res.expected) {
		if at, ok := arrivals[i]; ok {
			res.emitted++
			res.lags = append(res.lags, at.Sub(start.Add(time.Duration(i+1)*o.interval)))
		}
	}
	waitAcks(ctx, agents, 5*time.Second)
	for i, a := range agents {
		res.snapshotsSent += a.sent.Load()
		res.acked += a.acked.Load()
		res.stops += a.stops.Load()
		res.worstSendLate = max(res.worstSendLate, time.Duration(a.worstSendLate.Load()))
		for v := range res.expected {
			res.expected2 += payloads.requests[(i+v)%len(payloads.requests)]
		}
	}
	res.status, res.verdict = sum.GetStatus(), sum.GetVerdict()
	res.requests = sum.GetAll().GetRequests()
	cancelAgents()
	runWG.Wait()
	if err := errors.Join(runErrs...); err != nil && !errors.Is(err, context.Canceled) {
		return nil, fmt.Errorf("simulated agents: %w", err)
	}
	ctrl.stop(10 * time.Second)
	res.warn, res.errs = logLevels(res.logPath)
	return res, nil
}

// selfCPU is this process's CPU time so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
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
