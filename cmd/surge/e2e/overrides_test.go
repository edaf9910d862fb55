//go:build e2e

package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// Run overrides, as k6 takes them: -e fills {{env}}, --set and --duration
// change the plan's rate and length, and the target sees exactly what the
// overridden plan asks for, split across two agents. A bad override is
// refused, named, before any request.
func TestRunOverrides(t *testing.T) {
	c := startCluster(t, [][2]string{{"o1", "us-east"}, {"o2", "us-east"}})
	plan := writePlan(t, "ov.yaml", fmt.Sprintf(`name: ov
scenarios:
  api:
    executor: constant-arrival-rate
    rate: 50
    duration: 2s
    pre_allocated_vus: 5
    requests:
      - url: 'http://%s/{{env "ITEM"}}'
`, c.target))
	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"--set", "scenarios.api.rate=fast"}, "--set scenarios.api.rate=fast: scenarios.api.rate: expected a number"},
		{[]string{"--set", "scenarios.api.rat=5"}, "--set scenarios.api.rat=5: scenarios.api.rat: unknown key"},
		{[]string{"--vus", "3"}, `--vus 3: scenarios.api.vus: option "vus" does not apply`},
		{[]string{"-e", "ITEM"}, `-e "ITEM": want NAME=VALUE`},
	} {
		out, code := surge(t, append([]string{"run", plan, "--controller", c.ctrl, "-q"}, bad.args...)...)
		t.Logf("measured: %v: exit %d: %s", bad.args, code, strings.TrimSpace(out))
		if code == 0 || code == 99 || !strings.Contains(out, bad.want) {
			t.Errorf("%v: exit %d, want an error with %q:\n%s", bad.args, code, bad.want, out)
		}
	}
	if n := readTargetStats(t, c.target).Requests; n != 0 {
		t.Fatalf("refused overrides sent %d requests", n)
	}
	out := filepath.Join(t.TempDir(), "s.json")
	text, code := surge(t, "run", plan, "--controller", c.ctrl, "-q", "--json", out,
		"-e", "ITEM=widgets", "--set", "scenarios.api.rate=30", "--duration", "3s")
	if code != 0 {
		t.Fatalf("run with overrides: exit %d\n%s", code, text)
	}
	s, ts := readSummary(t, out), readTargetStats(t, c.target)
	t.Logf("measured: summary %d requests, target by path %v, agents %v", s.Requests, ts.ByPath, s.Agents)
	if ts.ByPath["/widgets"] != 90 || ts.Requests != 90 || s.Requests != 90 || s.Failures != 0 {
		t.Errorf("target saw %v (%d), summary %d requests %d failures; want 90 to /widgets (30/s for 3s)", ts.ByPath, ts.Requests, s.Requests, s.Failures)
	}
	if len(s.Agents) != 2 || s.Agents[0].Requests+s.Agents[1].Requests != 90 || s.Agents[0].Requests == 0 || s.Agents[1].Requests == 0 {
		t.Errorf("agents %+v, want both sharing the 90", s.Agents)
	}
}
