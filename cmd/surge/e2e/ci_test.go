//go:build e2e

package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/surgeload/surge/internal/ciskip"
	"github.com/surgeload/surge/internal/freeport"
)

// The example CI job's script (examples/ci/validate.sh) against a local
// cluster: with "production" a run at 10 ms, a staging run at 10 ms passes
// (exit 0) and one at 11 ms fails the judge (exit 1), each leaving its
// summary and JUnit reports; the workflow that calls it passes actionlint,
// and a broken copy does not.
func TestCIValidateScript(t *testing.T) {
	script, err := filepath.Abs("../../../examples/ci/validate.sh")
	if err != nil {
		t.Fatal(err)
	}
	ten, eleven := freeport.Addr(t), freeport.Addr(t)
	start(t, "10ms target", "target", "--listen", ten, "--latency", "uniform(9.5ms,10.5ms)")
	start(t, "11ms target", "target", "--listen", eleven, "--latency", "uniform(10.5ms,11.5ms)")
	c := startCluster(t, [][2]string{{"ci1", "us-east"}})
	plan := writePlan(t, "staging.yaml", `name: staging
scenarios:
  api:
    executor: constant-arrival-rate
    rate: 100
    duration: 3s
    requests: [{name: item, url: /item}]
`)
	if out, code := surge(t, "run", plan, "--controller", c.ctrl, "-q", "--base-url", "http://"+ten, "--tag", "environment=production"); code != 0 {
		t.Fatalf("production run: exit %d\n%s", code, out)
	}
	validate := func(staging string) (string, string, int) {
		outDir := t.TempDir()
		cmd := exec.Command(script)
		cmd.Env = append(os.Environ(), "SURGE="+bin(t), "SURGE_CONTROLLER="+c.ctrl, "PLAN="+plan,
			"BASE_URL=http://"+staging, "COMMIT=abc123", "OUT="+outDir, "BASELINE_PROMETHEUS=")
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("validate.sh: %v", err)
		}
		for _, f := range []string{"summary.json", "run.xml", "compare.xml", "compare.txt"} {
			if _, err := os.Stat(filepath.Join(outDir, f)); err != nil {
				t.Errorf("validate.sh against %s left no %s: %v", staging, f, err)
			}
		}
		return string(out), outDir, code
	}
	out, dir, code := validate(ten)
	t.Logf("measured: staging at 10 ms: exit %d", code)
	if code != 0 || !strings.Contains(out, "judge score 100: PASS") || !strings.Contains(out, "validate: staging matches production") {
		t.Errorf("staging at 10 ms: exit %d, want 0\n%s", code, out)
	}
	if s := readSummary(t, filepath.Join(dir, "summary.json")); s.Tags["environment"] != "staging" || s.Tags["commit"] != "abc123" {
		t.Errorf("the staging run's tags %v", s.Tags)
	}
	out, dir, code = validate(eleven)
	t.Logf("measured: staging at 11 ms: exit %d", code)
	if code != 1 || !strings.Contains(out, "validate: staging drifted from production (exit 1)") {
		t.Errorf("staging at 11 ms: exit %d, want 1\n%s", code, out)
	}
	checkJUnit(t, filepath.Join(dir, "compare.xml"), map[string]bool{"all latency_ms": false, "request=item latency_ms": false})

	actionlint := os.Getenv("ACTIONLINT")
	if actionlint == "" {
		ciskip.Skipf(t, "actionlint: ACTIONLINT is unset: run with `make e2e`, which installs it")
	}
	workflow, _ := filepath.Abs("../../../examples/ci/staging-validation.yml")
	if b, err := exec.Command(actionlint, workflow).CombinedOutput(); err != nil {
		t.Errorf("actionlint %s: %v\n%s", workflow, err, b)
	}
	src, err := os.ReadFile(workflow)
	if err != nil {
		t.Fatal(err)
	}
	broken := filepath.Join(t.TempDir(), "broken.yml")
	if err := os.WriteFile(broken, []byte(strings.Replace(string(src), "runs-on:", "runs_on:", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := exec.Command(actionlint, broken).CombinedOutput(); err == nil {
		t.Errorf("actionlint passed a workflow without runs-on:\n%s", b)
	} else {
		t.Logf("measured: actionlint on a broken copy: %s", strings.TrimSpace(string(b)))
	}
}
