//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/surgeload/surge/controller/report"
	"github.com/surgeload/surge/internal/freeport"
)

// TestCompareTargets: the built binary runs the same plan twice against a
// `surge target --latency uniform(20ms,25ms)` and once against a target
// three times slower; `surge compare` finds the equal runs equal (every
// metric within tolerance or noise) and the slow run divergent (exit 1);
// `surge report --format hdr` writes an interval log.
func TestCompareTargets(t *testing.T) {
	c := startCluster(t, [][2]string{{"a1", "us-east"}})
	fast, slow := freeport.Addr(t), freeport.Addr(t)
	start(t, "fast target", "target", "--listen", fast, "--latency", "uniform(20ms,25ms)")
	start(t, "slow target", "target", "--listen", slow, "--latency", "uniform(60ms,75ms)")
	runPlan := func(name, addr string) string {
		plan := writePlan(t, name+".yaml", fmt.Sprintf(`name: %s
scenarios:
  steady:
    executor: constant-arrival-rate
    rate: 200
    duration: 4s
    pre_allocated_vus: 40
    max_vus: 100
    requests:
      - name: hello
        url: http://%s/hello
`, name, addr))
		sum := filepath.Join(t.TempDir(), name+".json")
		if out, code := surge(t, "run", "-q", "--controller", c.ctrl, "--json", sum, plan); code != 0 {
			t.Fatalf("run %s: exit %d\n%s", name, code, out)
		}
		return readSummary(t, sum).RunID
	}
	// A warm-up run first: a cold agent's first connections and a loaded
	// machine's first seconds skew one run's tail against the other's.
	runPlan("warmup", fast)
	a, b, s := runPlan("a", fast), runPlan("b", fast), runPlan("s", slow)

	// Equal runs compare equal at the default tolerance: exit 0, no
	// divergence, and every metric (tails and connections included) either
	// within the tolerance or within its confidence intervals, recomputed
	// here from the values compare reports.
	out, code := surge(t, "compare", "--controller", c.ctrl, "--json", a, b)
	var eq report.ComparisonJSON
	if err := json.Unmarshal([]byte(out), &eq); err != nil || code != 0 {
		t.Fatalf("equal runs: exit %d, %v, want 0\n%s", code, err, out)
	}
	if !eq.Within || eq.Diverged != 0 || len(eq.Metrics) == 0 {
		t.Fatalf("equal runs: within %v, %d diverged, %d metrics\n%s", eq.Within, eq.Diverged, len(eq.Metrics), out)
	}
	for _, m := range eq.Metrics {
		if why := unequal(m, eq.Tolerance); why != "" {
			t.Errorf("equal runs: %s %s: %s", m.Group, m.Metric, why)
		}
	}
	out, code = surge(t, "compare", "--controller", c.ctrl, "--json", a, s)
	if code != 1 || !strings.Contains(out, `"within_tolerance": false`) {
		t.Errorf("slow run: exit %d\n%s", code, out)
	}
	hdr, code := surge(t, "report", "--controller", c.ctrl, "--format", "hdr", s)
	if code != 0 || !strings.Contains(hdr, "#[Histogram log format version 1.3]") || !strings.Contains(hdr, ",HISTFAA") {
		t.Errorf("hdr report: exit %d\n%s", code, hdr)
	}
}

// unequal says why metric m of two equal runs is not equal: diverged, or a
// relative difference past tol whose confidence intervals do not overlap
// (or that has none); "" when it is equal.
func unequal(m report.MetricJSON, tol float64) string {
	if m.Diverged {
		return "diverged"
	}
	if m.A == nil || m.B == nil {
		return "a side without a value"
	}
	a, b := *m.A, *m.B
	if a == b {
		return ""
	}
	if a != 0 && math.Abs(b-a)/math.Abs(a) <= tol {
		return ""
	}
	if len(m.ARange) != 2 || len(m.BRange) != 2 || m.ARange[0] == nil || m.BRange[0] == nil {
		return fmt.Sprintf("%v vs %v past %.0f%% with no confidence interval", a, b, tol*100)
	}
	// high is nil when unbounded.
	aHigh, bHigh := math.Inf(1), math.Inf(1)
	if m.ARange[1] != nil {
		aHigh = *m.ARange[1]
	}
	if m.BRange[1] != nil {
		bHigh = *m.BRange[1]
	}
	if *m.ARange[0] <= bHigh && *m.BRange[0] <= aHigh {
		return ""
	}
	return fmt.Sprintf("%v [%v, %v] vs %v [%v, %v]: past %.0f%% and outside each other's confidence intervals",
		a, *m.ARange[0], aHigh, b, *m.BRange[0], bHigh, tol*100)
}

// The judge on real runs: against targets at 10 ms and 11 ms it fails the
// slower run's latency as high (exit 1); two runs against the same target
// pass (exit 0); --junit reports each judged metric; a judge config's
// allowance decides; a bad judge flag or config is a usage error (exit 2).
func TestCompareJudge(t *testing.T) {
	ten, eleven := freeport.Addr(t), freeport.Addr(t)
	start(t, "10ms target", "target", "--listen", ten, "--latency", "uniform(9.5ms,10.5ms)")
	start(t, "11ms target", "target", "--listen", eleven, "--latency", "uniform(10.5ms,11.5ms)")
	c := startCluster(t, [][2]string{{"j1", "us-east"}})
	runOn := func(addr string) string {
		plan := writePlan(t, "judge.yaml", fmt.Sprintf(`name: judge
scenarios:
  api:
    executor: constant-arrival-rate
    rate: 100
    duration: 3s
    requests: [{name: item, url: 'http://%s/item'}]
`, addr))
		out := filepath.Join(t.TempDir(), "s.json")
		if text, code := surge(t, "run", plan, "--controller", c.ctrl, "-q", "--json", out); code != 0 {
			t.Fatalf("run against %s: exit %d\n%s", addr, code, text)
		}
		return readSummary(t, out).RunID
	}
	a, same, slow := runOn(ten), runOn(ten), runOn(eleven)
	judged := func(b string) (map[string]report.JudgedMetricJSON, *report.JudgementJSON, int) {
		out, code := surge(t, "compare", "--controller", c.ctrl, "--json", "--judge", "--allowed-increase", "0.05", a, b)
		var cj report.ComparisonJSON
		if err := json.Unmarshal([]byte(out), &cj); err != nil || cj.Judgement == nil {
			t.Fatalf("compare --judge %s (exit %d): %v\n%s", b, code, err, out)
		}
		m := map[string]report.JudgedMetricJSON{}
		for _, x := range cj.Judgement.Metrics {
			if x.Metric == "latency_ms" {
				m[x.Group] = x
			}
		}
		return m, cj.Judgement, code
	}
	m, j, code := judged(slow)
	t.Logf("measured: 10 ms vs 11 ms: score %v %s, all %s shift %+.3f ms [%+.3f, %+.3f] p %.3g, exit %d",
		j.Score, j.Outcome, m["all"].Class, m["all"].Shift, m["all"].Low, m["all"].High, m["all"].P, code)
	if code != 1 || j.Outcome != "fail" || m["all"].Class != "high" || m["request=item"].Class != "high" || !(m["all"].Shift > 0.5) {
		t.Errorf("10 ms vs 11 ms: exit %d, outcome %s, classes %v, want 1, fail, high", code, j.Outcome, m)
	}
	m, j, code = judged(same)
	t.Logf("measured: same target: score %v %s, all %s shift %+.3f ms [%+.3f, %+.3f] p %.3g, exit %d",
		j.Score, j.Outcome, m["all"].Class, m["all"].Shift, m["all"].Low, m["all"].High, m["all"].P, code)
	if code != 0 || j.Outcome != "pass" || m["all"].Class != "pass" || len(m) != 2 {
		t.Errorf("same target: exit %d, outcome %s, metrics %v, want 0, pass, two passing", code, j.Outcome, m)
	}
	junit := filepath.Join(t.TempDir(), "judge.xml")
	text, code := surge(t, "compare", "--controller", c.ctrl, "--judge", "--junit", junit, a, slow)
	if code != 1 || !strings.Contains(text, "judge score 0: FAIL") {
		t.Errorf("compare --judge text: exit %d\n%s", code, text)
	}
	checkJUnit(t, junit, map[string]bool{"all latency_ms": false, "request=item latency_ms": false})
	if out, code := surge(t, "compare", "--controller", c.ctrl, "--judge", "--judge-direction", "up", a, slow); code != 2 || !strings.Contains(out, `--judge-direction "up"`) {
		t.Errorf("bad direction: exit %d\n%s", code, out)
	}
	// A judge config: 20% allowed passes the 10% slower run; an unknown
	// metric is refused with its line.
	lenient := writePlan(t, "judge.yaml", "metrics:\n  latency_ms: {allowed_increase: 0.2, critical: true}\n")
	if out, code := surge(t, "compare", "--controller", c.ctrl, "--judge-config", lenient, a, slow); code != 0 || !strings.Contains(out, "judge score 100: PASS") {
		t.Errorf("20%% allowed: exit %d\n%s", code, out)
	}
	bad := writePlan(t, "bad-judge.yaml", "metrics:\n  latency_ms: {}\n  p75_ms: {}\n")
	if out, code := surge(t, "compare", "--controller", c.ctrl, "--judge-config", bad, a, slow); code != 2 || !strings.Contains(out, "bad-judge.yaml:3: metrics.p75_ms: unknown metric") {
		t.Errorf("unknown metric: exit %d\n%s", code, out)
	}
}
