//go:build e2e

package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// TestCompareTargets: the built binary runs the same plan twice against a
// `surge target --latency uniform(20ms,25ms)` and once against a target
// three times slower; `surge compare` finds the equal runs within
// tolerance (exit 0) and the slow run divergent on latency only (exit 1);
// `surge report --format hdr` writes an interval log.
func TestCompareTargets(t *testing.T) {
	c := startCluster(t, [][2]string{{"a1", "us-east"}})
	fast, slow := freePort(t), freePort(t)
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
	// 800 requests a run put 40 values beyond p95, so that a stall of the
	// shared machine in one run stays within the percentiles' noise.
	runPlan("warmup", fast)
	a, b, s := runPlan("a", fast), runPlan("b", fast), runPlan("s", slow)

	if out, code := surge(t, "compare", "--controller", c.ctrl, "--tolerance", "0.5", a, b); code != 0 {
		t.Errorf("equal runs: exit %d\n%s", code, out)
	}
	out, code := surge(t, "compare", "--controller", c.ctrl, "--json", a, s)
	if code != 1 || !strings.Contains(out, `"within_tolerance": false`) {
		t.Errorf("slow run: exit %d\n%s", code, out)
	}
	hdr, code := surge(t, "report", "--controller", c.ctrl, "--format", "hdr", s)
	if code != 0 || !strings.Contains(hdr, "#[Histogram log format version 1.3]") || !strings.Contains(hdr, ",HISTFAA") {
		t.Errorf("hdr report: exit %d\n%s", code, hdr)
	}
}
