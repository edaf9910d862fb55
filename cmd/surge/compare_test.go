package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/surgeload/surge/cmd/surge/target"
	"github.com/surgeload/surge/controller/report"
	"github.com/surgeload/surge/controller/surgetest"
	surgev1 "github.com/surgeload/surge/gen/surge/v1"
)

// waitGoroutines registers a cleanup, run after every later one (the
// cluster's), that polls until no goroutine is left: memberlist's
// in-flight probe ends up to a probe interval after shutdown.
func waitGoroutines(t *testing.T) {
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for goleak.Find() != nil && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
	})
}

// startTarget runs one more target for the test.
func startTarget(t *testing.T, cfg target.Config) *target.Server {
	t.Helper()
	cfg.Listen = "127.0.0.1:0"
	ts, err := target.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ts.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("target: %v", err)
		}
	})
	return ts
}

func steadyPlan(name, url string) []byte {
	return fmt.Appendf(nil, `name: %s
scenarios:
  steady:
    executor: constant-arrival-rate
    rate: 50
    duration: 3s
    pre_allocated_vus: 80
    max_vus: 150
    graceful_stop: 3s
    requests:
      - name: hello
        url: %s/hello
`, name, url)
}

func runOK(t *testing.T, c *surgetest.Cluster, file string, src []byte) *surgev1.RunSummary {
	t.Helper()
	s, _ := c.Run(t, file, src)
	if s.GetStatus() != "finished" {
		t.Fatalf("%s: run %s status %q error %q", file, s.GetRunId(), s.GetStatus(), s.GetError())
	}
	return s
}

// One cluster (three agents in three regions, two targets with known
// different latency and error rates) serves every test of compare, report
// --format hdr, plan from-log and init, to keep the suite short.
func TestClusterCompareReportFromLogInit(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	waitGoroutines(t)
	slow := startTarget(t, target.Config{Latency: "uniform(1s,1.1s)", ErrorRate: 0.2})
	c := surgetest.Start(t, surgetest.Options{
		Agents: []surgetest.AgentSpec{
			{ID: "a1", Region: "us-east"}, {ID: "a2", Region: "eu-west"}, {ID: "a3", Region: "ap-south"},
		},
		Target: target.Config{Latency: "uniform(50ms,55ms)"},
	})
	c.WaitAgents(t, 3)
	addr := c.Controller.Addr()
	fast := c.TargetURL()

	// A warm-up run: first connections and a cold process skew the first
	// run's latency on a loaded machine.
	runOK(t, c, "warmup.yaml", steadyPlan("steady", fast))
	a := runOK(t, c, "a.yaml", steadyPlan("steady", fast))
	b := runOK(t, c, "b.yaml", steadyPlan("steady", fast))
	sl := runOK(t, c, "slow.yaml", steadyPlan("steady", "http://"+slow.Addr()))

	t.Run("compare/equal", func(t *testing.T) {
		// Tolerance 0.5: the same plan against the same target, measured on a
		// shared (and, under -race, slow) machine, still varies by some tens
		// of percent at p99.9 of 150 samples.
		r := cli(t, nil, "compare", "--controller", addr, "--json", "--tolerance", "0.5", a.GetRunId(), b.GetRunId())
		var got report.ComparisonJSON
		if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
			t.Fatalf("exit %d: %v\n%s%s", r.code, err, r.stdout, r.stderr)
		}
		if r.code != 0 || got.Diverged != 0 {
			for _, m := range got.Metrics {
				if m.Diverged {
					t.Errorf("equal runs diverge on %s %s: %v vs %v", m.Group, m.Metric, *m.A, *m.B)
				}
			}
			t.Errorf("equal runs: exit %d, %d diverged", r.code, got.Diverged)
		}
		checkAgainstSummary(t, got, a, b)
		var worst float64
		for _, m := range got.Metrics {
			if m.RelDiff != nil && !m.Window {
				worst = max(worst, math.Abs(*m.RelDiff))
			}
		}
		t.Logf("measured: equal runs, largest whole-run relative difference %.1f%% (p99 %.2fms vs %.2fms)", worst*100,
			pick(got, "all", "p99_ms", true), pick(got, "all", "p99_ms", false))
	})

	t.Run("compare/divergent", func(t *testing.T) {
		r := cli(t, nil, "compare", "--controller", addr, "--json", a.GetRunId(), sl.GetRunId())
		var got report.ComparisonJSON
		if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
			t.Fatalf("exit %d: %v\n%s%s", r.code, err, r.stdout, r.stderr)
		}
		if r.code != exitFailure {
			t.Errorf("divergent runs: exit %d, want 1", r.code)
		}
		var diverged []string
		windows := 0
		for _, m := range got.Metrics {
			switch {
			case m.Diverged && m.Window:
				windows++
			case m.Diverged:
				diverged = append(diverged, m.Group+" "+m.Metric)
			}
		}
		if got.Aligned && windows == 0 {
			t.Error("aligned windows compared, none diverged")
		}
		// Latency ×20 and 20% errors (5xx) differ. The rate is requests
		// over the exact duration, which the slow target's drain (its
		// latency, after the last arrival) lengthens: it differs as far as
		// the summaries say. With
		// per-VU connections, 20× the latency holds about 20× the VUs, so
		// the connections differ too, as far as the summaries say they do.
		// A percentile with fewer than ten values beyond it on a side is
		// too thin to diverge (report.TailMinValues).
		beyond := map[string]int64{"p50_ms": 500, "p95_ms": 50, "p99_ms": 10, "p999_ms": 1}
		var want []string
		for _, m := range got.Metrics {
			if m.Window || (m.Group != "all" && m.Group != "request=hello") {
				continue
			}
			// Expected responses' percentiles are read from the successes
			// (one request: the group's are the run's).
			base, exp := strings.CutSuffix(m.Metric, report.ExpectedSuffix)
			b, pct := beyond[base]
			na, nb := m.ARequests, m.BRequests
			if exp {
				na, nb = na-a.GetAll().GetFailures(), nb-sl.GetAll().GetFailures()
			}
			switch {
			case pct && min(na, nb)*b >= report.TailMinValues*1000,
				m.Metric == "error_rate" || m.Metric == "error_rate.http_5xx":
				want = append(want, m.Group+" "+m.Metric)
			}
			if pct && m.Thin == (min(na, nb)*b >= report.TailMinValues*1000) {
				t.Errorf("%s %s: thin %v with %d and %d values", m.Group, m.Metric, m.Thin, na, nb)
			}
		}
		secs := func(s *surgev1.RunSummary) float64 { return s.GetDurationS() }
		connsA, connsB := a.GetAll().GetConnsOpened(), sl.GetAll().GetConnsOpened()
		for metric, ab := range map[string][2]float64{
			"conns_opened_per_s": {float64(connsA) / secs(a), float64(connsB) / secs(sl)},
			"conns_peak_open":    {float64(a.GetAll().GetConnsPeakOpen()), float64(sl.GetAll().GetConnsPeakOpen())},
		} {
			d := math.Abs(ab[1] - ab[0])
			if d > report.ConnFloor && (ab[0] == 0 || d/math.Abs(ab[0]) > report.DefaultTolerance) {
				want = append(want, "all "+metric)
			}
		}
		if ra, rb := a.GetAll().GetRps(), sl.GetAll().GetRps(); math.Abs(rb-ra)/ra > report.DefaultTolerance {
			want = append(want, "all rps", "request=hello rps")
		}
		t.Logf("measured: rps %.2f vs %.2f over %.3fs and %.3fs", a.GetAll().GetRps(), sl.GetAll().GetRps(),
			a.GetDurationS(), sl.GetDurationS())
		t.Logf("measured: connections opened %d vs %d, peak open %d vs %d", connsA, connsB,
			a.GetAll().GetConnsPeakOpen(), sl.GetAll().GetConnsPeakOpen())
		slices.Sort(want)
		slices.Sort(diverged)
		if strings.Join(diverged, ",") != strings.Join(want, ",") {
			t.Errorf("diverged:\n  %s\nwant:\n  %s", strings.Join(diverged, "\n  "), strings.Join(want, "\n  "))
		}
		checkAgainstSummary(t, got, a, sl)
		text := cli(t, nil, "compare", "--controller", addr, "--by", "region", a.GetRunId(), sl.GetRunId())
		if text.code != 1 || !strings.Contains(text.stdout, "region=ap-south") || !strings.Contains(text.stdout, "DIVERGED") {
			t.Errorf("text by region: exit %d\n%s%s", text.code, text.stdout, text.stderr)
		}
		t.Logf("measured: A p99 %.2fms vs B p99 %.2fms, error rate %.3f vs %.3f; %d metrics diverged",
			pick(got, "all", "p99_ms", true), pick(got, "all", "p99_ms", false),
			pick(got, "all", "error_rate", true), pick(got, "all", "error_rate", false), got.Diverged)
	})

	t.Run("compare/baseline", func(t *testing.T) {
		p99 := float64(a.GetAll().GetLatencyUs().GetP99()) / 1000
		p50 := float64(a.GetAll().GetLatencyUs().GetP50()) / 1000
		p95 := float64(a.GetAll().GetLatencyUs().GetP95()) / 1000
		rpm := a.GetAll().GetRps() * 60
		csv := writeFile(t, "prod.csv", fmt.Sprintf("endpoint,p50,p95,p99,error_rate,rpm\nhello,%g,%g,%g,0,%g\n", p50, p95, p99, rpm))
		if r := cli(t, nil, "compare", "--controller", addr, "--baseline", csv, a.GetRunId()); r.code != 0 {
			t.Errorf("run vs its own figures: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		r := cli(t, nil, "compare", "--controller", addr, "--json", "--baseline", csv, sl.GetRunId())
		if r.code != 1 {
			t.Errorf("slow run vs fast figures: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		// The latency itself diverges, judged by the run's own values (the
		// baseline's carry no count), not only the error rate.
		var got report.ComparisonJSON
		if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
			t.Fatalf("%v\n%s", err, r.stdout)
		}
		for _, m := range got.Metrics {
			if m.Group == "request=hello" && m.Metric == "p50_ms" && (!m.Diverged || m.Thin) {
				t.Errorf("slow run's p50 vs the fast baseline: diverged %v thin %v\n%s", m.Diverged, m.Thin, r.stdout)
			}
		}
	})

	t.Run("report/formats", func(t *testing.T) {
		j := cli(t, nil, "report", "--controller", addr, "--json", a.GetRunId())
		j2 := cli(t, nil, "report", "--controller", addr, "--format", "json", a.GetRunId())
		if j.code != 0 || j.stdout != j2.stdout {
			t.Errorf("--json and --format json differ (exit %d)", j.code)
		}
		csv := cli(t, nil, "report", "--controller", addr, "--format", "csv", a.GetRunId())
		if csv.code != 0 || !strings.HasPrefix(csv.stdout, "run_id,group,name,requests") ||
			!strings.Contains(csv.stdout, fmt.Sprintf("%s,all,,%d,", a.GetRunId(), a.GetAll().GetRequests())) {
			t.Errorf("csv: exit %d\n%s%s", csv.code, csv.stdout, csv.stderr)
		}
	})

	t.Run("report/hdr", func(t *testing.T) {
		for _, byRegion := range []bool{false, true} {
			// Each log's own subtest: a skipped hdr-histogram-js check
			// (no node) ends neither the Go check nor the by-region log.
			t.Run(fmt.Sprintf("by-region=%v", byRegion), func(t *testing.T) { testHdrLog(t, addr, sl, byRegion) })
		}
	})

	t.Run("from-log", func(t *testing.T) { testFromLogRun(t, c, addr) })
	t.Run("init", func(t *testing.T) { testInitTemplatesRun(t, c) })
}

func pick(c report.ComparisonJSON, group, metric string, a bool) float64 {
	for _, m := range c.Metrics {
		if !m.Window && m.Group == group && m.Metric == metric {
			v := m.B
			if a {
				v = m.A
			}
			if v != nil {
				return *v
			}
		}
	}
	return math.NaN()
}

// checkAgainstSummary checks the comparison's whole-run figures against the
// runs' summaries, which the controller computed from the same merged
// histograms while aggregating.
func checkAgainstSummary(t *testing.T, c report.ComparisonJSON, a, b *surgev1.RunSummary) {
	t.Helper()
	for _, side := range []struct {
		isA bool
		s   *surgev1.RunSummary
	}{{true, a}, {false, b}} {
		l := side.s.GetAll().GetLatencyUs()
		for metric, us := range map[string]int64{"p50_ms": l.GetP50(), "p95_ms": l.GetP95(), "p99_ms": l.GetP99(), "p999_ms": l.GetP999()} {
			if got := pick(c, "all", metric, side.isA); got != float64(us)/1000 {
				t.Errorf("run %s %s: compare %v ms, summary %d µs", side.s.GetRunId(), metric, got, us)
			}
		}
		all := side.s.GetAll()
		if got, want := pick(c, "all", "error_rate", side.isA), float64(all.GetFailures())/float64(all.GetRequests()); math.Abs(got-want) > 1e-12 {
			t.Errorf("run %s error rate: compare %v, summary %v", side.s.GetRunId(), got, want)
		}
	}
}
