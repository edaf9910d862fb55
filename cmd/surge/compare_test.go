package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"go.uber.org/goleak"

	"github.com/surgeload/surge/cmd/surge/target"
	"github.com/surgeload/surge/controller/report"
	"github.com/surgeload/surge/controller/surgetest"
	"github.com/surgeload/surge/examples/templates"
	surgev1 "github.com/surgeload/surge/gen/surge/v1"
	"github.com/surgeload/surge/hist"
	"github.com/surgeload/surge/internal/ciskip"
	"github.com/surgeload/surge/plan"
	"github.com/surgeload/surge/plan/fromlog"
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

// testHdrLog writes the run's HDR log and checks it against the summary
// (Go decoder), then, in a subtest, against hdr-histogram-js.
func testHdrLog(t *testing.T, addr string, sl *surgev1.RunSummary, byRegion bool) {
	file := filepath.Join(t.TempDir(), "run.hdr")
	args := []string{"report", "--controller", addr, "--format", "hdr", "-o", file, sl.GetRunId()}
	if byRegion {
		args = append(args, "--by-region")
	}
	if r := cli(t, nil, args...); r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	goFrames := readHdrLog(t, file)
	checkHdrAgainstSummary(t, goFrames, sl, byRegion)
	t.Run("hdr-histogram-js", func(t *testing.T) { checkHdrJS(t, file, goFrames, byRegion) })
}

// checkHdrJS: hdr-histogram-js decodes the log to the same histograms.
func checkHdrJS(t *testing.T, file string, goFrames []*hdrhistogram.Histogram, byRegion bool) {
	jsFrames := hdrCheckJS(t, file)
	if len(jsFrames) != len(goFrames) {
		t.Fatalf("hdr-histogram-js decoded %d histograms, Go %d", len(jsFrames), len(goFrames))
	}
	for i, g := range goFrames {
		js := jsFrames[i]
		// hdr-histogram-js reads percentiles as HdrHistogram's reference
		// (Java) does: the count at a percentile is rounded up, where
		// hdrhistogram-go rounds to nearest. Both are read here from
		// the same decoded buckets.
		want := jsFrame{Tag: g.Tag(), Count: g.TotalCount(), P50: refPercentile(g, 50), P90: refPercentile(g, 90),
			P95: refPercentile(g, 95), P99: refPercentile(g, 99), P999: refPercentile(g, 99.9), Max: g.Max()}
		js.StartMs, js.EndMs = 0, 0
		if js != want {
			t.Errorf("histogram %d: hdr-histogram-js %+v, surge's log %+v", i, js, want)
		}
	}
	big := 0
	for i, f := range jsFrames {
		if f.Count > jsFrames[big].Count {
			big = i
		}
	}
	t.Logf("measured: %d histograms (by region %v); busiest: %d values, hdr-histogram-js p50/p99/p99.9 %d/%d/%dµs = surge's log %d/%d/%dµs",
		len(goFrames), byRegion, jsFrames[big].Count, jsFrames[big].P50, jsFrames[big].P99, jsFrames[big].P999,
		refPercentile(goFrames[big], 50), refPercentile(goFrames[big], 99), refPercentile(goFrames[big], 99.9))
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

// readHdrLog reads an interval log back with hdrhistogram-go's reader.
func readHdrLog(t *testing.T, file string) []*hdrhistogram.Histogram {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rd := hdrhistogram.NewHistogramLogReader(f)
	var out []*hdrhistogram.Histogram
	for {
		h, err := rd.NextIntervalHistogram()
		if err != nil {
			t.Fatalf("read hdr log: %v", err)
		}
		if h == nil {
			break
		}
		out = append(out, h)
	}
	if len(out) == 0 {
		t.Fatal("hdr log has no histograms")
	}
	return out
}

// checkHdrAgainstSummary: the log's histograms merged give the summary's
// count and percentiles (per region when tagged).
func checkHdrAgainstSummary(t *testing.T, frames []*hdrhistogram.Histogram, s *surgev1.RunSummary, byRegion bool) {
	t.Helper()
	merged := map[string]*hdrhistogram.Histogram{}
	for _, h := range frames {
		if merged[h.Tag()] == nil {
			merged[h.Tag()] = hist.New()
		}
		merged[h.Tag()].Merge(h)
	}
	want := map[string]*surgev1.Stats{"": s.GetAll()}
	if byRegion {
		want = s.GetRegions()
	}
	if len(merged) != len(want) {
		t.Fatalf("hdr log tags %d, want %d", len(merged), len(want))
	}
	for tag, st := range want {
		h := merged[tag]
		if h == nil {
			t.Fatalf("no histogram tagged %q", tag)
		}
		l := st.GetLatencyUs()
		if h.TotalCount() != st.GetRequests() || h.ValueAtQuantile(99) != l.GetP99() || h.ValueAtQuantile(50) != l.GetP50() || h.Max() != l.GetMax() {
			t.Errorf("tag %q: log count %d p50 %d p99 %d max %d; summary %d %d %d %d", tag, h.TotalCount(),
				h.ValueAtQuantile(50), h.ValueAtQuantile(99), h.Max(), st.GetRequests(), l.GetP50(), l.GetP99(), l.GetMax())
		}
	}
}

type jsFrame struct {
	Tag     string `json:"tag"`
	StartMs int64  `json:"start_ms"`
	EndMs   int64  `json:"end_ms"`
	Count   int64  `json:"count"`
	P50     int64  `json:"p50"`
	P90     int64  `json:"p90"`
	P95     int64  `json:"p95"`
	P99     int64  `json:"p99"`
	P999    int64  `json:"p999"`
	Max     int64  `json:"max"`
}

// refPercentile is HdrHistogram's reference getValueAtPercentile: the
// highest equivalent value of the bucket where the running count reaches
// ceil(q/100 × total).
func refPercentile(h *hdrhistogram.Histogram, q float64) int64 {
	fp := q / 100 * float64(h.TotalCount())
	ulp := math.Nextafter(fp, math.Inf(1)) - fp
	target := max(int64(math.Ceil(fp-ulp)), 1)
	var n int64
	for _, b := range h.Distribution() {
		n += b.Count
		if b.Count > 0 && n >= target {
			return b.To
		}
	}
	return 0
}

// hdrCheckJS decodes the log with hdr-histogram-js (scripts/hdrcheck,
// installed once with `npm ci` into .cache/hdrcheck). Without node the test
// is skipped with a loud message.
func hdrCheckJS(t *testing.T, file string) []jsFrame {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		ciskip.Skipf(t, "node is not installed, so the HDR log was NOT checked with hdr-histogram-js; install node >= 18 to run this check")
	}
	_, self, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(self), "..", "..")
	src := filepath.Join(root, "scripts", "hdrcheck")
	dir := filepath.Join(root, ".cache", "hdrcheck")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"package.json", "package-lock.json", "check.mjs"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		old, _ := os.ReadFile(filepath.Join(dir, f))
		if !bytes.Equal(old, b) {
			if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
				t.Fatal(err)
			}
			_ = os.RemoveAll(filepath.Join(dir, "node_modules"))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "hdr-histogram-js")); err != nil {
		cmd := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("npm ci in %s: %v\n%s", dir, err, out)
		}
	}
	cmd := exec.CommandContext(ctx, node, filepath.Join(dir, "check.mjs"), file)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("node check.mjs: %v\n%s", err, ee.Stderr)
		}
		t.Fatal(err)
	}
	var frames []jsFrame
	if err := json.Unmarshal(out, &frames); err != nil {
		t.Fatalf("node output: %v\n%s", err, out)
	}
	return frames
}

// testFromLogRun derives a time-compressed plan from a generated log (each
// minute runs in a second) and runs it: the target receives each endpoint's
// count, scaled, within 5%.
func testFromLogRun(t *testing.T, c *surgetest.Cluster, addr string) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	// minute counts with a spike; endpoint mix 50/30/20
	counts := []int{400, 400, 1200, 400}
	mix := []struct {
		method, path, tmpl string
		share              float64
	}{{"GET", "/api/users/%d", "/api/users/{id}", 0.5}, {"GET", "/api/items", "/api/items", 0.3}, {"POST", "/api/orders/%d", "/api/orders/{id}", 0.2}}
	var b strings.Builder
	want := map[string]float64{}
	for m, n := range counts {
		for i, e := range mix {
			k := int(math.Round(float64(n) * e.share))
			for j := range k {
				ts := t0.Add(time.Duration(m)*time.Minute + time.Duration(j)*time.Minute/time.Duration(k))
				path := e.path
				if strings.Contains(path, "%d") {
					path = fmt.Sprintf(path, 1000+i*7+j)
				}
				fmt.Fprintf(&b, "127.0.0.1 - - [%s] \"%s %s HTTP/1.1\" 200 10\n", ts.Format("02/Jan/2006:15:04:05 -0700"), e.method, path)
			}
			want[e.tmpl] += float64(k)
		}
	}
	b.WriteString("garbage line\n")
	logFile := writeFile(t, "access.log", b.String())
	out := filepath.Join(t.TempDir(), "derived.yaml")
	// Each minute runs in 3 s, on one agent (region us-east): each
	// scenario's arrivals round to whole requests at window boundaries (±1
	// per scenario and agent), and requests a busy generator sends a few tens
	// of ms late cross a boundary; at 200+ requests per window both stay
	// within a few percent.
	const scale, speedup = 0.5, 20
	// A target without added latency, so each request lands in the
	// interval of its arrival.
	tgt := startTarget(t, target.Config{})
	r := cli(t, nil, "plan", "from-log", logFile, "--window", "1m", "--scale", fmt.Sprint(scale), "--speedup", fmt.Sprint(speedup), "--regions", "us-east=1",
		"--target", "http://"+tgt.Addr(), "-o", out)
	if r.code != 0 {
		t.Fatalf("from-log: exit %d\n%s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, fmt.Sprintf("access.log:%d: malformed, skipped", 1+int(float64(sum(counts))))) ||
		!strings.Contains(r.stderr, "1 malformed lines skipped") || !strings.Contains(r.stderr, "peak-to-mean") {
		t.Errorf("profile/malformed report:\n%s", r.stderr)
	}
	if v := cli(t, nil, "validate", out); v.code != 0 {
		t.Fatalf("derived plan does not validate: %s", v.stderr)
	}
	src, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	s := runOK(t, c, "derived.yaml", src)
	st := tgt.Stats()
	var total float64
	for _, e := range mix {
		var got int64
		for path, n := range st.ByPath {
			if fromlog.Template(path) == e.tmpl {
				got += n
			}
		}
		w := want[e.tmpl] * scale
		total += float64(got)
		if math.Abs(float64(got)-w)/w > 0.05 {
			t.Errorf("%s: target got %d, log × scale %.1f", e.tmpl, got, w)
		}
	}
	wantTotal := float64(sum(counts)) * scale
	if math.Abs(total-wantTotal)/wantTotal > 0.05 {
		t.Errorf("total %v, want %.1f", total, wantTotal)
	}
	// Each compressed minute is 3 one-second intervals of the run: their
	// requests (from the stored interval histograms) reproduce the minute's
	// count.
	perWindow := make([]int64, len(counts))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stream, err := c.Runs.Histograms(ctx, &surgev1.HistogramsRequest{RunId: s.GetRunId()})
	if err != nil {
		t.Fatal(err)
	}
	aligned := true
	for {
		f, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if f.GetInterval() < 0 {
			aligned = false // no interval data stored
			break
		}
		if i := f.GetInterval() * int64(speedup) / 60; i < int64(len(perWindow)) {
			perWindow[i] += f.GetCount()
		}
	}
	var worst float64
	if aligned {
		for i, n := range counts {
			w := float64(n) * scale
			rel := math.Abs(float64(perWindow[i])-w) / w
			worst = max(worst, rel)
			if rel > 0.05 {
				t.Errorf("window %d: run sent %d, log %d × %v = %.0f", i, perWindow[i], n, scale, w)
			}
		}
	} else {
		t.Log("the store has no interval data: per-window rates not checked, totals only")
	}
	t.Logf("measured: run %s sent %d requests (dropped %d), log × scale %.0f; per window %v, worst window error %.1f%%",
		s.GetRunId(), s.GetAll().GetRequests(), s.GetAll().GetDroppedIterations(), wantTotal, perWindow, worst*100)
}

// testInitTemplatesRun: every template validates, and runs against the
// target with its durations shortened to about 1.5 s and its rates and VUs
// capped.
func testInitTemplatesRun(t *testing.T, c *surgetest.Cluster) {
	for _, name := range append(templates.Names(), "endurance") {
		out := filepath.Join(t.TempDir(), name+".yaml")
		if r := cli(t, nil, "init", "--template", name, "-o", out); r.code != 0 {
			t.Fatalf("init %s: exit %d %s", name, r.code, r.stderr)
		}
		src, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(src, []byte("# "+strings.Replace(name, "endurance", "soak", 1)+" ")) &&
			!bytes.HasPrefix(src, []byte("# "+strings.Replace(name, "endurance", "soak", 1)+":")) {
			t.Errorf("%s: no comment header naming the failure", name)
		}
		if r := cli(t, nil, "validate", out); r.code != 0 {
			t.Fatalf("%s does not validate: %s", name, r.stderr)
		}
	}
	for _, name := range templates.Names() {
		src, err := templates.Get(name)
		if err != nil {
			t.Fatal(err)
		}
		short := shortenPlan(t, name, src, c.TargetURL())
		before := c.Target.Stats().Requests
		s := runOK(t, c, name+".yaml", short)
		if s.GetAll().GetRequests() == 0 || c.Target.Stats().Requests == before {
			t.Errorf("%s: no requests reached the target", name)
		}
		t.Logf("measured: template %s shortened: %d requests, p99 %dµs, verdict %s", name, s.GetAll().GetRequests(),
			s.GetAll().GetLatencyUs().GetP99(), s.GetVerdict())
	}
}

// shortenPlan scales a plan's time to about 1.5 s, caps rates at 50/s and
// VUs at 5, and points its requests at base.
func shortenPlan(t *testing.T, name string, src []byte, base string) []byte {
	t.Helper()
	p, err := plan.Parse(name+".yaml", bytes.ReplaceAll(src, []byte(templates.BaseURL), []byte(base)))
	if err != nil {
		t.Fatal(err)
	}
	f := 1500 * time.Millisecond.Seconds() / p.TotalDuration().Seconds()
	d := func(x plan.Duration) plan.Duration {
		if x == 0 {
			return 0
		}
		return plan.Duration(math.Max(float64(x)*f, float64(time.Millisecond)))
	}
	for _, sc := range p.Scenarios {
		sc.Duration, sc.StartTime, sc.GracefulStop = d(sc.Duration), d(sc.StartTime), plan.Duration(time.Second)
		var k float64
		if sc.IsArrivalRate() {
			k = math.Min(1, 50/math.Max(sc.PeakRate(), 1))
			sc.Rate, sc.StartRate = sc.Rate*k, sc.StartRate*k
		} else {
			k = math.Min(1, 5/math.Max(float64(sc.PeakVUs()), 1))
			sc.VUs, sc.StartVUs = int64(math.Ceil(float64(sc.VUs)*k)), int64(math.Ceil(float64(sc.StartVUs)*k))
		}
		for i := range sc.Stages {
			sc.Stages[i].Duration = d(sc.Stages[i].Duration)
			sc.Stages[i].Target = math.Round(sc.Stages[i].Target * k)
		}
		for i := range sc.Requests {
			sc.Requests[i].Timeout = plan.Duration(5 * time.Second)
		}
	}
	b, err := plan.MarshalCanonical(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := plan.Parse(name+".json", b); err != nil {
		t.Fatalf("shortened %s: %v\n%s", name, err, b)
	}
	return b
}

func sum(xs []int) int {
	var s int
	for _, x := range xs {
		s += x
	}
	return s
}
