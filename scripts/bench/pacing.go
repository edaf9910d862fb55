package main

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// pacingResult is one open-model pacing run.
type pacingResult struct {
	// InProcess is the same rate run by the executor in-process
	// (BenchmarkOpenModel): the send lateness its recorder measured.
	InProcess *micro
	// ClusterLateP99 is the summary's send lateness p99 (µs), -1 when the
	// summary does not report it.
	ClusterLateP99 int64
	Rate           int
	Windows        []window
	Deficit        int64
	Dropped        int64
	Requests       int64
	CPU            float64
}

type window struct{ arrivals, target float64 }

func (p pacingResult) errs() []float64 {
	out := make([]float64, 0, len(p.Windows))
	for _, w := range p.Windows {
		if w.target > 0 {
			out = append(out, math.Abs(w.arrivals-w.target)/w.target)
		}
	}
	return out
}

func (p pacingResult) Worst() float64 {
	worst := 0.0
	for _, x := range p.errs() {
		worst = max(worst, x)
	}
	return worst
}

func (p pacingResult) Within(tol float64) int {
	n := 0
	for _, x := range p.errs() {
		if x <= tol+1e-12 {
			n++
		}
	}
	return n
}

var arrivalsRe = regexp.MustCompile(`\] all .* arrivals=([\d.]+)/([\d.]+)`)

func (e *env) pacing(ctx context.Context, rate int) (pacingResult, error) {
	p := fmt.Sprintf(`name: bench-pacing-%d
scenarios:
  paced:
    executor: constant-arrival-rate
    rate: %d
    duration: %s
    pre_allocated_vus: %d
    max_vus: %d
    graceful_stop: 5s
    requests:
      - url: %s
`, rate, rate, e.o.pacingDuration, min(rate, 256), min(rate, 2048), e.nginxURL)
	s, out, cpu, err := e.surgeRun(ctx, fmt.Sprintf("pacing-%d", rate), p, e.o.pacingDuration+2*time.Minute)
	if err != nil {
		return pacingResult{}, err
	}
	res := pacingResult{Rate: rate, Deficit: s.Deficit, Dropped: s.Dropped, Requests: s.Requests, CPU: cpu, ClusterLateP99: -1}
	if l := s.Scenarios["paced"].SendLatenessUS; l != nil {
		res.ClusterLateP99 = l.P99
	}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if m := arrivalsRe.FindStringSubmatch(sc.Text()); m != nil {
			a, _ := strconv.ParseFloat(m[1], 64)
			t, _ := strconv.ParseFloat(m[2], 64)
			res.Windows = append(res.Windows, window{a, t})
		}
	}
	// Windows past the end plan nothing; the first and last planned ones
	// straddle the start and the end of the run.
	planned := res.Windows[:0]
	for _, w := range res.Windows {
		if w.target > 0 {
			planned = append(planned, w)
		}
	}
	res.Windows = planned
	if len(res.Windows) > 2 {
		res.Windows = res.Windows[1 : len(res.Windows)-1]
	}
	return res, nil
}

// measurePacing is goal 2. First the floor: how late the arrival loop's
// waiter wakes on this machine with nothing else to do; then each rate
// as a cluster run and in-process.
func (e *env) measurePacing(ctx context.Context, r *report) error {
	if e.o.executorTest != "" {
		fmt.Fprintln(e.stdout, "bench: agent/executor BenchmarkWaiter")
		n := "2000x"
		if e.o.smoke {
			n = "50x"
		}
		m, err := e.executorBench(ctx, "^BenchmarkWaiter$", n)
		if err != nil {
			return err
		}
		r.addMicroAgent(m)
	}
	for _, f := range strings.Split(e.o.rates, ",") {
		rate, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return fmt.Errorf("-rates: %w", err)
		}
		p, err := e.pacingRate(ctx, rate)
		if err != nil {
			return err
		}
		r.Pacing = append(r.Pacing, p)
	}
	return nil
}

// pacingRate paces rate per second in a cluster run, then in-process.
func (e *env) pacingRate(ctx context.Context, rate int) (pacingResult, error) {
	fmt.Fprintf(e.stdout, "bench: pacing %d/s for %s\n", rate, e.o.pacingDuration)
	p, err := e.pacing(ctx, rate)
	if err != nil {
		return p, fmt.Errorf("pacing %d/s: %w", rate, err)
	}
	fmt.Fprintf(e.stdout, "bench:   %d windows, worst %.3f%%, %d within 0.1%%, deficit %d, dropped %d; arrivals/planned: %v\n",
		len(p.Windows), 100*p.Worst(), p.Within(0.001), p.Deficit, p.Dropped, p.Windows)
	secs := int(math.Max(1, math.Round(min(e.o.pacingDuration, 10*time.Second).Seconds())))
	fmt.Fprintf(e.stdout, "bench: pacing %d/s for %ds in-process (agent/executor BenchmarkOpenModel)\n", rate, secs)
	m, err := e.executorBench(ctx, "^BenchmarkOpenModel$", fmt.Sprintf("%dx", rate*secs), fmt.Sprintf("SURGE_BENCH_RATES=%d", rate))
	if err != nil {
		return p, fmt.Errorf("pacing %d/s in-process: %w", rate, err)
	}
	if x, ok := m[fmt.Sprintf("BenchmarkOpenModel/rate=%d", rate)]; ok {
		p.InProcess = &x
		fmt.Fprintf(e.stdout, "bench:   lateness p50 %.0fµs p99 %.0fµs max %.0fµs, dropped %.0f, worst window %.3f%%\n",
			x.Metrics["late-p50-µs"], x.Metrics["late-p99-µs"], x.Metrics["late-max-µs"], x.Metrics["dropped"], x.Metrics["worst-window-%"])
	}
	return p, nil
}
