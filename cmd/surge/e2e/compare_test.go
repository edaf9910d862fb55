//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/surgeload/surge/controller/report"
	"github.com/surgeload/surge/internal/freeport"
)

// TestCompareTargets: the built binary runs the same plan twice against a
// `surge target --latency uniform(20ms,25ms)` and once against a target
// three times slower; `surge compare` finds the equal runs' medians, rates
// and error rates within tolerance and the slow run divergent (exit 1);
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

	// The equal runs' tails and connection counts are not asserted: a
	// stall of this shared machine in one run really makes that run's
	// tail differ (in one pass, run B's p95 and p99 were 70 and 228 ms
	// against run A's 26 and 28 ms), and compare rightly says so.
	// TestCompareNoise covers the tails' noise rule with values the test
	// controls.
	out, code := surge(t, "compare", "--controller", c.ctrl, "--tolerance", "0.5", "--json", a, b)
	var eq report.ComparisonJSON
	if err := json.Unmarshal([]byte(out), &eq); err != nil || code > 1 {
		t.Fatalf("equal runs: exit %d, %v\n%s", code, err, out)
	}
	checked := 0
	for _, m := range eq.Metrics {
		if m.Metric != "p50_ms" && m.Metric != "rps" && !strings.HasPrefix(m.Metric, "error_rate") {
			continue
		}
		checked++
		if m.Diverged {
			t.Errorf("equal runs: %s %s diverged\n%s", m.Group, m.Metric, out)
		}
	}
	if checked == 0 {
		t.Fatalf("equal runs: no median, rate or error rate compared\n%s", out)
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
