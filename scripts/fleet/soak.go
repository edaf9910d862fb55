package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/surgeload/surge/internal/freeport"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
)

// rssSample is both daemons' resident memory (KiB), Go heaps (KiB, from
// their /debug/runtime) and CPU time at one moment of a soak.
type rssSample struct {
	at                  time.Duration // since the run's first progress
	ctrl, agent         int64
	ctrlAnon, agentAnon int64
	// ctrlLive, agentLive: the heap live after the last GC; ctrlGoal,
	// agentGoal: the heap size at which the next GC starts.
	ctrlLive, agentLive int64
	ctrlGoal, agentGoal int64
	ctrlCPU, agentCPU   time.Duration
}

// soakSeries are the soak's figures with a growth figure, by name.
func soakSeries() []soakSeriesDef {
	return []soakSeriesDef{
		{"controller", func(s rssSample) int64 { return s.ctrl }},
		{"controller anonymous", func(s rssSample) int64 { return s.ctrlAnon }},
		{"controller live heap", func(s rssSample) int64 { return s.ctrlLive }},
		{"agent", func(s rssSample) int64 { return s.agent }},
		{"agent anonymous", func(s rssSample) int64 { return s.agentAnon }},
		{"agent live heap", func(s rssSample) int64 { return s.agentLive }},
	}
}

type soakSeriesDef struct {
	name string
	kib  func(rssSample) int64
}

// heap is a daemon's live heap and heap goal in KiB, read from its
// /debug/runtime (runtime/metrics, no forced GC).
func heap(ctx context.Context, client *http.Client, addr string) (live, goal int64, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/debug/runtime", nil)
	if err != nil {
		return 0, 0, fmt.Errorf("runtime metrics: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, 0, fmt.Errorf("runtime metrics: %w", err)
	}
	defer resp.Body.Close()
	var m map[string]float64
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		return 0, 0, fmt.Errorf("runtime metrics of %s: %w", addr, err)
	}
	return int64(m["/gc/heap/live:bytes"]) / 1024, int64(m["/gc/heap/goal:bytes"]) / 1024, nil
}

type soakResult struct {
	o        options
	samples  []rssSample
	status   string
	requests int64
	failures int64
}

// soakPlan is a constant-arrival-rate plan at rate for d against target,
// with three requests (three series).
func soakPlan(rate int, d time.Duration, target string) []byte {
	return fmt.Appendf(nil, `name: soak
scenarios:
  soak:
    executor: constant-arrival-rate
    rate: %d
    time_unit: 1s
    duration: %s
    pre_allocated_vus: 50
    max_vus: 500
    requests:
      - name: items
        url: http://%s/api/items
      - name: cart
        method: POST
        url: http://%s/api/cart
        body: '{"item": 1}'
      - name: item
        url: http://%s/api/items/7
`, rate, d, target, target, target)
}

// runSoak runs a controller, one agent and a target for o.soak at o.rate,
// sampling the controller's and the agent's RSS every o.sample.
func runSoak(ctx context.Context, o options, dir string, log io.Writer) (*soakResult, error) {
	addrs, err := freeport.Addrs(5)
	if err != nil {
		return nil, err
	}
	targetAddr, ctrlPprof, agentPprof, ctrlAddr, ctrlGossip := addrs[0], addrs[1], addrs[2], addrs[3], addrs[4]
	target, err := startChild("target", dir, o.surge, "target", "--listen", targetAddr)
	if err != nil {
		return nil, err
	}
	defer target.stop(5 * time.Second)
	ctrl, err := startController(ctx, o.surge, dir, ctrlAddr, ctrlGossip, "--pprof-addr", ctrlPprof)
	if err != nil {
		return nil, err
	}
	defer ctrl.stop(10 * time.Second)
	agent, err := startChild("agent", dir, o.surge, "agent", "--id", "soak", "--region", "local", "--controller", ctrl.addr,
		"--gossip", "127.0.0.1:0", "--log-level", "warn", "--pprof-addr", agentPprof)
	if err != nil {
		return nil, err
	}
	defer agent.stop(10 * time.Second)
	if err := ctrl.waitAgents(ctx, 1, 30*time.Second); err != nil {
		return nil, err
	}
	sub, err := ctrl.runs.Submit(ctx, &surgev1.SubmitRequest{PlanYaml: soakPlan(o.rate, o.soak, targetAddr), FileName: "soak.yaml"})
	if err != nil {
		return nil, fmt.Errorf("submit: %w", err)
	}
	fmt.Fprintf(log, "soak run %s: %d/s for %s; controller pid %d, agent pid %d\n", sub.GetRunId(), o.rate, o.soak, ctrl.pid(), agent.pid())
	watch, err := watchRun(ctx, ctrl.runs, sub.GetRunId())
	if err != nil {
		return nil, err
	}
	defer watch.stop()
	select { // the first progress: the run is under way
	case <-watch.started:
	case err := <-watch.err:
		return nil, err
	case <-time.After(30 * time.Second):
		return nil, errors.New("no progress within 30s of the submit")
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	res := &soakResult{o: o}
	s := &soakSampler{ctrl: ctrl, agent: agent, ctrlPprof: ctrlPprof, agentPprof: agentPprof, t0: time.Now(),
		client: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}}
	sum, err := s.until(ctx, watch, o.sample, o.soak)
	if err != nil {
		return nil, err
	}
	res.samples = s.samples
	res.status = sum.GetStatus()
	res.requests, res.failures = sum.GetAll().GetRequests(), sum.GetAll().GetFailures()
	return res, nil
}

// soakSampler takes the soak's samples of both daemons.
type soakSampler struct {
	ctrl                  *controllerProc
	agent                 *child
	ctrlPprof, agentPprof string // their /debug/runtime addresses
	client                *http.Client
	t0                    time.Time
	samples               []rssSample
}

// take adds one sample.
func (s *soakSampler) take(ctx context.Context) error {
	c, err1 := procMem(s.ctrl.pid())
	a, err2 := procMem(s.agent.pid())
	cc, err3 := s.ctrl.cpu()
	ac, err4 := s.agent.cpu()
	cl, cg, err5 := heap(ctx, s.client, s.ctrlPprof)
	al, ag, err6 := heap(ctx, s.client, s.agentPprof)
	if err := errors.Join(err1, err2, err3, err4, err5, err6); err != nil {
		return err
	}
	s.samples = append(s.samples, rssSample{at: time.Since(s.t0), ctrl: c.rss, agent: a.rss, ctrlAnon: c.anon, agentAnon: a.anon,
		ctrlLive: cl, agentLive: al, ctrlGoal: cg, agentGoal: ag, ctrlCPU: cc, agentCPU: ac})
	return nil
}

// until samples every period until the run's summary arrives; the run's
// last second (of d) is left out: the ends of runs allocate.
func (s *soakSampler) until(ctx context.Context, watch *runWatch, period, d time.Duration) (*surgev1.RunSummary, error) {
	if err := s.take(ctx); err != nil {
		return nil, err
	}
	tick := time.NewTicker(period)
	defer tick.Stop()
	stopSampling := time.After(d - time.Second)
	timeout := time.After(d + 2*time.Minute)
	for {
		select {
		case <-tick.C:
			if err := s.take(ctx); err != nil {
				return nil, err
			}
		case <-stopSampling:
			if err := s.take(ctx); err != nil {
				return nil, err
			}
			tick.Stop()
			stopSampling = nil
		case sum := <-watch.summary:
			return sum, nil
		case err := <-watch.err:
			return nil, err
		case <-timeout:
			return nil, errors.New("the soak run did not end in time")
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// growth is the change of rss from the first sample at or after one
// minute (base) to the last and to the highest after it, and the
// least-squares trend over those samples across the same span, each in
// percent of base. A collected heap makes RSS a sawtooth: the trend is
// what tells growth from it.
func (r *soakResult) growth(rss func(rssSample) int64) (base rssSample, last, peak, trend float64, ok bool) {
	i := 0
	for i < len(r.samples) && r.samples[i].at < time.Minute-r.o.sample/2 {
		i++
	}
	if i >= len(r.samples)-1 {
		return rssSample{}, 0, 0, 0, false
	}
	base = r.samples[i]
	b := float64(rss(base))
	var hi int64
	var n, sx, sy, sxx, sxy float64
	for _, s := range r.samples[i:] {
		hi = max(hi, rss(s))
		x, y := s.at.Seconds(), float64(rss(s))
		n, sx, sy, sxx, sxy = n+1, sx+x, sy+y, sxx+x*x, sxy+x*y
	}
	slope := (n*sxy - sx*sy) / (n*sxx - sx*sx) // KiB per second
	span := (r.samples[len(r.samples)-1].at - base.at).Seconds()
	return base, 100 * (float64(rss(r.samples[len(r.samples)-1])) - b) / b, 100 * (float64(hi) - b) / b, 100 * slope * span / b, true
}

func (r *soakResult) markdown(w io.Writer) {
	o := r.o
	fmt.Fprintf(w, "A `surge controller`, one `surge agent` and `surge target` as separate processes; constant-arrival-rate %d/s (three requests) for %s; every %s from the first progress, VmRSS of both daemons and its anonymous part (RssAnon: heap and stacks; the rest is files mapped in, mostly the controller's bbolt run store and journal), and each one's Go heap from its `/debug/runtime`: live after the last GC (`/gc/heap/live:bytes`) and the goal at which the next GC starts (`/gc/heap/goal:bytes`, about twice the live heap).\n\n",
		o.rate, o.soak, o.sample)
	fmt.Fprintf(w, "| since start | controller RSS | of it anonymous | heap live / goal | agent RSS | of it anonymous | heap live / goal |\n|---:|---:|---:|---:|---:|---:|---:|\n")
	every := max(1, int(time.Minute/o.sample)) // one row a minute, plus the first and last
	mib := func(kib int64) float64 { return float64(kib) / 1024 }
	for i, s := range r.samples {
		if i == 0 || i == len(r.samples)-1 || i%every == 0 {
			fmt.Fprintf(w, "| %s | %.1f MiB | %.1f MiB | %.1f / %.1f MiB | %.1f MiB | %.1f MiB | %.1f / %.1f MiB |\n", s.at.Round(time.Second),
				mib(s.ctrl), mib(s.ctrlAnon), mib(s.ctrlLive), mib(s.ctrlGoal), mib(s.agent), mib(s.agentAnon), mib(s.agentLive), mib(s.agentGoal))
		}
	}
	fmt.Fprintf(w, "\nEvery sample, controller/agent MiB:")
	for _, s := range r.samples {
		fmt.Fprintf(w, " %.0f/%.0f", mib(s.ctrl), mib(s.agent))
	}
	fmt.Fprintf(w, ".\n\n")
	for _, d := range soakSeries() {
		base, last, peak, trend, ok := r.growth(d.kib)
		if !ok {
			fmt.Fprintf(w, "- %s: run shorter than a minute plus one sample; no growth figure.\n", d.name)
			continue
		}
		fmt.Fprintf(w, "- %s after the first minute (%s, %.1f MiB): trend %+.1f%% over the rest of the run: %s (< 5%%); %+.1f%% at the end, %+.1f%% at its highest.\n",
			d.name, base.at.Round(time.Second), mib(d.kib(base)), trend, verdict(trend < 5), last, peak)
	}
	first, last := r.samples[0], r.samples[len(r.samples)-1]
	secs := max((last.at - first.at).Seconds(), 1e-9)
	fmt.Fprintf(w, "- Run %s: %d requests (%.0f/s), %d failures; CPU over the samples: controller %.1f%%, agent %.1f%% of a core.\n",
		r.status, r.requests, float64(r.requests)/o.soak.Seconds(), r.failures,
		100*(last.ctrlCPU-first.ctrlCPU).Seconds()/secs, 100*(last.agentCPU-first.agentCPU).Seconds()/secs)
}
