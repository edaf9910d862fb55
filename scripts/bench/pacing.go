package main

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"regexp"
	"slices"
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
	// Windows are the target's own counts of the requests it received in
	// each 1-second window (nginx's access log); Progress, the arrivals
	// surge's progress reported for each of its intervals.
	Windows  windows
	Progress windows
	// TargetRequests is how many requests the target logged in the run.
	TargetRequests int64
	Deficit        int64
	Dropped        int64
	Requests       int64
	CPU            float64
	// Recording is the agent's recording path in this run (goal 4), when
	// the agent was profiled during it.
	Recording *recordingResult
}

// window is one second's arrivals and what the plan asked for.
type window struct{ arrivals, target float64 }

type windows []window

func (ws windows) errs() []float64 {
	out := make([]float64, 0, len(ws))
	for _, w := range ws {
		if w.target > 0 {
			out = append(out, math.Abs(w.arrivals-w.target)/w.target)
		}
	}
	return out
}

// Worst is the largest relative error of a window.
func (ws windows) Worst() float64 {
	worst := 0.0
	for _, x := range ws.errs() {
		worst = max(worst, x)
	}
	return worst
}

// Within counts the windows whose relative error is at most tol.
func (ws windows) Within(tol float64) int {
	n := 0
	for _, x := range ws.errs() {
		if x <= tol+1e-12 {
			n++
		}
	}
	return n
}

// trimEnds drops the first and the last window when there are more than
// two: they straddle the start and the end of the run.
func (ws windows) trimEnds() windows {
	if len(ws) > 2 {
		return ws[1 : len(ws)-1]
	}
	return ws
}

// targetWindows counts requests received at ms (Unix milliseconds, in any
// order) in the n = d/1s windows of one second from the first of them, each
// planned at rate; the ends are trimmed. Requests after the last window
// (ones sent late, past the run's duration) are in none.
func targetWindows(ms []int64, rate int, d time.Duration) windows {
	n := int(d / time.Second)
	if len(ms) == 0 || n <= 0 {
		return nil
	}
	origin := slices.Min(ms)
	ws := make(windows, n)
	for i := range ws {
		ws[i].target = float64(rate)
	}
	for _, t := range ms {
		if k := (t - origin) / 1000; k < int64(n) {
			ws[k].arrivals++
		}
	}
	return ws.trimEnds()
}

// arrivalsRe matches the run's line of a plain progress update, as
// `surge run` prints it to a pipe: "[1.0s/30.0s running] agents=1 ...
// arrivals=999.0/1000.0 ...".
var arrivalsRe = regexp.MustCompile(`^\[[^\]]*\] agents=\d+ .*?arrivals=([\d.]+)/([\d.]+)`)

// progressWindows are the arrivals/planned of each interval in surge's
// progress output, the intervals that planned nothing (past the end)
// left out and the ends trimmed.
func progressWindows(out string) windows {
	var ws windows
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if m := arrivalsRe.FindStringSubmatch(sc.Text()); m != nil {
			a, _ := strconv.ParseFloat(m[1], 64)
			t, _ := strconv.ParseFloat(m[2], 64)
			if t > 0 {
				ws = append(ws, window{a, t})
			}
		}
	}
	return ws.trimEnds()
}

// pacing runs rate per second against the logged nginx port; the
// highest rate of -rates also profiles the agent (goal 4).
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
`, rate, rate, e.o.pacingDuration, min(rate, 256), min(rate, 2048), e.pacedURL)
	logFrom, err := fileSize(e.accessLog)
	if err != nil {
		return pacingResult{}, err
	}
	var prof *agentProfiling
	if e.agentPprof != "" && rate == maxRate(e.o.rates) {
		prof = e.profileAgent(ctx, e.o.pacingDuration+profileSlack)
	}
	s, out, cpu, err := e.surgeRun(ctx, fmt.Sprintf("pacing-%d", rate), p, e.o.pacingDuration+2*time.Minute)
	if err != nil {
		if prof != nil {
			_, _ = prof.wait()
		}
		return pacingResult{}, err
	}
	res := pacingResult{Rate: rate, Deficit: s.Deficit, Dropped: s.Dropped, Requests: s.Requests, CPU: cpu, ClusterLateP99: -1,
		Progress: progressWindows(out)}
	if l := s.Scenarios["paced"].SendLatenessUS; l != nil {
		res.ClusterLateP99 = l.P99
	}
	ms, err := readAccessLog(ctx, e.accessLog, logFrom)
	if err != nil {
		return res, err
	}
	res.TargetRequests = int64(len(ms))
	res.Windows = targetWindows(ms, rate, e.o.pacingDuration)
	if prof != nil {
		b, err := prof.wait()
		if err != nil {
			return res, fmt.Errorf("agent cpu profile: %w", err)
		}
		rec, err := newRecordingResult(b, rate, e.o.pacingDuration, s.Requests, cpu)
		if err != nil {
			return res, err
		}
		res.Recording = &rec
	}
	return res, nil
}

// maxRate is the highest rate of -rates (0 when none parses).
func maxRate(rates string) int {
	m := 0
	for _, f := range strings.Split(rates, ",") {
		if r, err := strconv.Atoi(strings.TrimSpace(f)); err == nil {
			m = max(m, r)
		}
	}
	return m
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
	fmt.Fprintf(e.stdout, "bench:   target counted %d requests (surge %d): %d windows, worst %.3f%%, %d within 0.1%%; surge's progress: worst %.3f%%, %d of %d within 0.1%%; deficit %d, dropped %d; target's windows, received/planned: %v\n",
		p.TargetRequests, p.Requests, len(p.Windows), 100*p.Windows.Worst(), p.Windows.Within(0.001),
		100*p.Progress.Worst(), p.Progress.Within(0.001), len(p.Progress), p.Deficit, p.Dropped, p.Windows)
	if x := p.Recording; x != nil {
		fmt.Fprintf(e.stdout, "bench:   agent profile: recording %d of %d samples (%.2f%% of the agent's CPU), %.0f ns per request: %.2f%% of a core at 50k/s\n",
			x.Profile.Matched, x.Profile.Samples, 100*x.Profile.Share(), x.NSPerRequest(), 100*x.CoreAt(50_000))
	}
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
