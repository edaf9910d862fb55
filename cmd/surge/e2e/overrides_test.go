//go:build e2e

package e2e

import (
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Run overrides, as k6 takes them: -e fills {{env}}, --set and --duration
// change the plan's rate and length, and the target sees exactly what the
// overridden plan asks for, split across two agents; thresholds set by
// --set are judged, and --junit reports each. A bad override is refused,
// named, before any request.
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
	out, junit := filepath.Join(t.TempDir(), "s.json"), filepath.Join(t.TempDir(), "junit.xml")
	text, code := surge(t, "run", plan, "--controller", c.ctrl, "-q", "--json", out, "--junit", junit,
		"-e", "ITEM=widgets", "--set", "scenarios.api.rate=30", "--duration", "3s",
		"--set", `thresholds={http_reqs: ["count==90"], http_req_failed: ["rate<0.01"], "http_reqs{status:200}": ["count>100"]}`)
	if code != 99 {
		t.Fatalf("run with overrides and a failing threshold: exit %d, want 99\n%s", code, text)
	}
	checkJUnit(t, junit, map[string]bool{"run finished": true, "http_reqs: count==90": true,
		"http_req_failed: rate<0.01": true, "http_reqs{status:200}: count>100": false})
	s, ts := readSummary(t, out), readTargetStats(t, c.target)
	t.Logf("measured: summary %d requests, target by path %v, agents %v", s.Requests, ts.ByPath, s.Agents)
	if ts.ByPath["/widgets"] != 90 || ts.Requests != 90 || s.Requests != 90 || s.Failures != 0 {
		t.Errorf("target saw %v (%d), summary %d requests %d failures; want 90 to /widgets (30/s for 3s)", ts.ByPath, ts.Requests, s.Requests, s.Failures)
	}
	if len(s.Agents) != 2 || s.Agents[0].Requests+s.Agents[1].Requests != 90 || s.Agents[0].Requests == 0 || s.Agents[1].Requests == 0 {
		t.Errorf("agents %+v, want both sharing the 90", s.Agents)
	}
}

// --rps 300 over three agents on a plan that would send 1,000/s: the
// target sees 300 requests in every full second of the run, within 1%,
// and what the cap held back is counted, not lost.
func TestRunRPSCap(t *testing.T) {
	c := startCluster(t, [][2]string{{"r1", "us-east"}, {"r2", "eu-west"}, {"r3", "ap-south"}})
	plan := writePlan(t, "rps.yaml", fmt.Sprintf(`name: rps
scenarios:
  api:
    executor: constant-arrival-rate
    rate: 1000
    duration: 4s
    pre_allocated_vus: 30
    max_vus: 60
    graceful_stop: 2s
    requests: [{url: 'http://%s/capped'}]
`, c.target))
	out := filepath.Join(t.TempDir(), "s.json")
	text, code := surge(t, "run", plan, "--controller", c.ctrl, "-q", "--json", out, "--rps", "300")
	if code != 0 {
		t.Fatalf("run --rps 300: exit %d\n%s", code, text)
	}
	s, ts := readSummary(t, out), readTargetStats(t, c.target)
	started, err := time.Parse(time.RFC3339Nano, s.StartedAt)
	if err != nil {
		t.Fatal(err)
	}
	var seconds []int64
	for i := range int64(4) {
		sec := started.Unix() + i
		n := ts.BySecond[sec]
		seconds = append(seconds, n)
		if n < 297 || n > 303 {
			t.Errorf("second %d of the run: the target saw %d requests, want 300 within 1%%", i, n)
		}
	}
	held := s.DroppedIterations
	t.Logf("measured: per second %v; summary %d requests, %d arrivals dropped, target %d", seconds, s.Requests, held, ts.Requests)
	if s.Requests != ts.Requests || s.Requests+held != 4000 {
		t.Errorf("summary %d requests + %d dropped, target %d; want the 4000 arrivals accounted for", s.Requests, held, ts.Requests)
	}
}

// checkJUnit reads a --junit report: its test cases by name, passed or not.
func checkJUnit(t *testing.T, path string, want map[string]bool) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Tests, Failures int `xml:",attr"`
		Cases           []struct {
			Name    string    `xml:"name,attr"`
			Failure *struct{} `xml:"failure"`
		} `xml:"testsuite>testcase"`
	}
	if err := xml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("junit report: %v\n%s", err, b)
	}
	got := map[string]bool{}
	for _, c := range doc.Cases {
		got[c.Name] = c.Failure == nil
	}
	t.Logf("measured: junit cases (name → passed) %v", got)
	if len(got) != len(want) {
		t.Errorf("junit cases %v, want %v", got, want)
	}
	for name, ok := range want {
		if pass, present := got[name]; !present || pass != ok {
			t.Errorf("junit case %q: present %v passed %v, want passed %v", name, present, pass, ok)
		}
	}
}
