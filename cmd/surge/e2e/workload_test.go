//go:build e2e

package e2e

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/surgeload/surge/internal/freeport"
	"github.com/surgeload/surge/internal/poll"
)

// A threshold that fails mid-run with abort_on_fail stops every agent
// within two intervals and `surge run` exits 99; a passing plan exits 0.
// The agents expand a secret from {{env}}: it appears in no log line, no
// output, no summary and not in the controller's data dir.
func TestAbortOnFailAndSecrets(t *testing.T) {
	const secret = "s3cr3t-e2e-7f1d9c"
	c := &cluster{ctrl: freeport.Addr(t), gossip: freeport.Addr(t), target: freeport.Addr(t), dataDir: t.TempDir()}
	target := start(t, "target", "target", "--listen", c.target, "--latency", "uniform(2ms,4ms)")
	c.startController(t)
	var procs []*proc
	procs = append(procs, target, c.controller)
	for _, a := range [][2]string{{"w1", "us-east"}, {"w2", "us-east"}, {"w3", "eu-west"}} {
		procs = append(procs, startEnv(t, "agent "+a[0], []string{"SURGE_E2E_TOKEN=" + secret},
			"agent", "--id", a[0], "--region", a[1], "--join", c.gossip, "--gossip", "127.0.0.1:0", "--allow", "127.0.0.1"))
	}
	waitConnected(t, c.ctrl, 3)
	body := func(thresholds string) string {
		return fmt.Sprintf(`name: e2e-abort
scenarios:
  steady:
    executor: constant-arrival-rate
    rate: 60
    duration: 30s
    pre_allocated_vus: 30
    requests:
      - url: 'http://%s/t?token={{env "SURGE_E2E_TOKEN"}}'
        headers: {Authorization: 'Bearer {{env "SURGE_E2E_TOKEN"}}'}
thresholds:
%s
`, c.target, thresholds)
	}
	// Fails from the first interval: every latency is over 1 ms.
	abortPlan := writePlan(t, "abort.yaml", body(`  http_req_duration:
    - {threshold: "p(50)<1", abort_on_fail: true}`))
	jsonPath := filepath.Join(t.TempDir(), "abort.json")
	began := time.Now()
	out, code := surge(t, "run", abortPlan, "--controller", c.ctrl, "--json", jsonPath)
	took := time.Since(began)
	if code != 99 {
		t.Fatalf("surge run exited %d, want 99:\n%s", code, out)
	}
	s := readSummary(t, jsonPath)
	after := readTargetStats(t, c.target).Requests
	poll.EventuallyErr(t, 5*time.Second, "target quiet", func() error {
		if n := readTargetStats(t, c.target).Requests; n != after {
			after = n
			return fmt.Errorf("still receiving: %d", n)
		}
		return nil
	})
	// At 60/s, two intervals of load are 120 requests (+ lead time spread).
	t.Logf("measured: abort run took %s, status %s verdict %s, %d requests sent (60/s plan), measured %.1fs",
		took.Round(time.Millisecond), s.Status, s.Verdict, after, s.DurationS)
	if s.Status != "aborted" || s.Verdict != "fail" {
		t.Errorf("status %q verdict %q", s.Status, s.Verdict)
	}
	if after > 3*60 {
		t.Errorf("%d requests reached the target: the agents did not stop within 2 intervals", after)
	}

	// A passing plan exits 0.
	passPlan := strings.Replace(body(`  http_req_failed: ["rate<0.01"]`), "duration: 30s", "duration: 2s", 1)
	out2, code := surge(t, "run", writePlan(t, "pass.yaml", passPlan), "--controller", c.ctrl)
	if code != 0 {
		t.Fatalf("passing plan exited %d:\n%s", code, out2)
	}
	rep, _ := surge(t, "report", s.RunID, "--json", "--controller", c.ctrl)

	// The secret is nowhere: outputs, logs, summary, store.
	places := map[string]string{"run output": out, "pass output": out2, "report": rep}
	for _, p := range procs {
		places[p.name+" log"] = p.log.String()
	}
	if b, err := os.ReadFile(jsonPath); err == nil {
		places["summary json"] = string(b)
	}
	_ = filepath.WalkDir(c.dataDir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if b, err := os.ReadFile(path); err == nil {
				places["data "+filepath.Base(path)] = string(b)
			}
		}
		return nil
	})
	for where, text := range places {
		if strings.Contains(text, secret) {
			t.Errorf("the secret appears in %s", where)
		}
	}
	t.Logf("measured: secret searched in %d places, found in none", len(places))
}
