package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// fidelityResult compares surge and vegeta against a 10 ms target at
// 1k/s. The target measures how long it held each request (its own timer
// is not exact either); each tool's p50 is compared with the target's p50
// over that tool's run.
type fidelityResult struct {
	DelayUS               int64
	SurgeP50, SurgeP99    int64
	VegetaP50, VegetaP99  int64
	SurgeDeficit          int64 // over all rounds
	Rounds                int
	SurgeP99s, VegetaP99s []int64 // per round
	// Per round: the agent's CPU seconds over its run, vegeta's over its;
	// surge's send lateness p99 (-1: not in the summary) and the target's
	// hold p99 during each tool's run, in microseconds.
	SurgeCPUs, VegetaCPUs      []float64
	SurgeLateP99s              []int64
	HoldSurgeP99s, HoldVegP99s []int64
	// The target's hold time during each tool's run.
	HoldSurge, HoldVegeta delayStats
}

// delayStats is the fidelity target's hold time, in microseconds.
type delayStats struct {
	Count int64 `json:"count"`
	P50   int64 `json:"p50_us"`
	P99   int64 `json:"p99_us"`
}

func (e *env) fidelity(ctx context.Context) (fidelityResult, error) {
	const delay = 10 * time.Millisecond
	url, err := e.startDelayTarget(ctx, delay)
	if err != nil {
		return fidelityResult{}, err
	}
	stats := func() (delayStats, error) { // since the last call
		var d delayStats
		out, err := httpGet(ctx, url+"__stats")
		if err != nil {
			return d, fmt.Errorf("target stats: %w", err)
		}
		return d, json.Unmarshal(out, &d)
	}
	p := fmt.Sprintf(`name: bench-fidelity
scenarios:
  fixed:
    executor: constant-arrival-rate
    rate: 1000
    duration: %s
    pre_allocated_vus: 50
    max_vus: 200
    graceful_stop: 5s
    requests:
      - url: %s
`, e.o.duration, url)
	res := fidelityResult{DelayUS: delay.Microseconds()}
	if _, err := stats(); err != nil {
		return res, err
	}
	// Rounds of surge and vegeta, which goes first alternating; each
	// figure is the median over rounds.
	var sp50, sp99, vp50, vp99, hs50, hs99, hv50, hv99 []int64
	for round := range e.o.rounds {
		var (
			s          summary
			vr         vegetaReport
			hs, hv     delayStats
			scpu, vcpu float64
		)
		runSurge := func() (err error) {
			if s, _, scpu, err = e.surgeRun(ctx, "fidelity", p, e.o.duration+2*time.Minute); err != nil {
				return err
			}
			hs, err = stats()
			return err
		}
		runVegeta := func() (err error) {
			if vr, vcpu, err = e.vegetaRun(ctx, url, "-rate", "1000/s"); err != nil {
				return err
			}
			hv, err = stats()
			return err
		}
		first, second := runSurge, runVegeta
		if round%2 == 1 {
			first, second = runVegeta, runSurge
		}
		if err := first(); err != nil {
			return res, err
		}
		if err := second(); err != nil {
			return res, err
		}
		res.SurgeCPUs, res.VegetaCPUs = append(res.SurgeCPUs, scpu), append(res.VegetaCPUs, vcpu)
		late := int64(-1)
		if l := s.Scenarios["fixed"].SendLatenessUS; l != nil {
			late = l.P99
		}
		res.SurgeLateP99s = append(res.SurgeLateP99s, late)
		res.HoldSurgeP99s, res.HoldVegP99s = append(res.HoldSurgeP99s, hs.P99), append(res.HoldVegP99s, hv.P99)
		res.SurgeDeficit += s.Deficit
		sp50, sp99 = append(sp50, s.LatencyUS.P50), append(sp99, s.LatencyUS.P99)
		vp50 = append(vp50, time.Duration(vr.Latencies.P50).Microseconds())
		vp99 = append(vp99, time.Duration(vr.Latencies.P99).Microseconds())
		hs50, hs99, hv50, hv99 = append(hs50, hs.P50), append(hs99, hs.P99), append(hv50, hv.P50), append(hv99, hv.P99)
	}
	res.Rounds = e.o.rounds
	res.SurgeP99s, res.VegetaP99s = sp99, vp99
	res.SurgeP50, res.SurgeP99, res.VegetaP50, res.VegetaP99 = median(sp50), median(sp99), median(vp50), median(vp99)
	res.HoldSurge = delayStats{P50: median(hs50), P99: median(hs99)}
	res.HoldVegeta = delayStats{P50: median(hv50), P99: median(hv99)}
	return res, nil
}

// median is the median of xs (the upper one of an even count).
func median(xs []int64) int64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// measureFidelity is goal 3: latency fidelity against a 10 ms target at
// 1k/s.
func (e *env) measureFidelity(ctx context.Context, r *report) error {
	fmt.Fprintf(e.stdout, "bench: latency fidelity, 10ms target, 1000/s for %s\n", e.o.duration)
	var err error
	if r.Fidelity, err = e.fidelity(ctx); err != nil {
		return fmt.Errorf("latency fidelity: %w", err)
	}
	f := r.Fidelity
	fmt.Fprintf(e.stdout, "bench:   surge p50 %dµs p99 %dµs (target held p50 %dµs); vegeta p50 %dµs p99 %dµs (target held p50 %dµs)\n",
		f.SurgeP50, f.SurgeP99, f.HoldSurge.P50, f.VegetaP50, f.VegetaP99, f.HoldVegeta.P50)
	for i := range f.SurgeP99s {
		fmt.Fprintf(e.stdout, "bench:   round %d: surge p99 %dµs (send lateness p99 %dµs, target held p99 %dµs, agent %.2f CPU s), vegeta p99 %dµs (target held p99 %dµs, %.2f CPU s)\n",
			i+1, f.SurgeP99s[i], f.SurgeLateP99s[i], f.HoldSurgeP99s[i], f.SurgeCPUs[i], f.VegetaP99s[i], f.HoldVegP99s[i], f.VegetaCPUs[i])
	}
	return nil
}
