package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/surgeload/surge/cmd/surge/target"
	"github.com/surgeload/surge/controller/surgetest"
	"github.com/surgeload/surge/examples/templates"
	"github.com/surgeload/surge/plan"
)

// shortExample is examples/NAME scaled to last total, written beside a copy
// of the examples' data directory so that feeders still read their files.
func shortExample(t *testing.T, name string, total time.Duration) string {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("..", "..", "examples", name))
	if err != nil {
		t.Fatal(err)
	}
	short, err := scalePlan(name, src, total)
	if err != nil {
		t.Fatal(err)
	}
	return writeFile(t, name, string(short))
}

// The README's quick start (surge target, controller, agents, `surge run
// examples/demo.yaml --json FILE`) with the target on a random port: the
// plan is unchanged but for its length; --base-url, or SURGE_BASE_URL,
// points it at the target. examples/checks.yaml passes against surge target.
func TestQuickStartAnyTargetPort(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	waitGoroutines(t)
	c := surgetest.Start(t, surgetest.Options{
		Agents: []surgetest.AgentSpec{{ID: "a1", Region: "us-east"}, {ID: "a2", Region: "eu-west"}, {ID: "a3", Region: "ap-south"}},
		Target: target.Config{Latency: "uniform(1ms,3ms)"},
	})
	c.WaitAgents(t, 3)
	addr := c.Controller.Addr()
	if strings.HasSuffix(c.TargetURL(), ":8080") {
		t.Fatalf("target on %s: the test needs a port other than the plans' own", c.TargetURL())
	}

	for _, tc := range []struct {
		example string
		vars    map[string]string
		flags   []string
	}{
		{"demo.yaml", nil, []string{"--base-url", c.TargetURL()}},
		{"checks.yaml", map[string]string{plan.BaseURLEnv: c.TargetURL()}, nil},
	} {
		t.Run(tc.example, func(t *testing.T) {
			file := shortExample(t, tc.example, 2*time.Second)
			out := filepath.Join(t.TempDir(), "summary.json")
			before := c.Target.Stats().Requests
			args := append([]string{"run", file, "--controller", addr, "-q", "--json", out}, tc.flags...)
			r := cli(t, tc.vars, args...)
			if r.code != 0 {
				t.Fatalf("%s", r)
			}
			s := readSummaryFile(t, out)
			got := c.Target.Stats().Requests - before
			if s.Requests == 0 || s.Requests != got || s.Failures != 0 {
				t.Errorf("summary: %d requests, %d failures; the target on %s counted %d", s.Requests, s.Failures, c.TargetURL(), got)
			}
			for _, th := range s.Thresholds {
				if !th.OK || th.Value == nil {
					t.Errorf("threshold %s %s: ok %v value %v", th.Metric, th.Expr, th.OK, th.Value)
				}
			}
			t.Logf("measured: %s against %s: %d requests, verdict %s", tc.example, c.TargetURL(), s.Requests, s.Verdict)
		})
	}
}

// Every example plan and init template validates, and every one of its
// loopback HTTP and WebSocket URLs follows the base URL given on the
// command line.
func TestExamplesFollowBaseURL(t *testing.T) {
	files, err := filepath.Glob("../../examples/*.yaml")
	if err != nil || len(files) < 10 {
		t.Fatalf("examples: %v (%d files)", err, len(files))
	}
	srcs := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		srcs[f] = b
	}
	for _, name := range templates.Names() {
		b, err := templates.Get(name)
		if err != nil {
			t.Fatal(err)
		}
		srcs["template "+name] = b
	}
	const base = "http://127.0.0.1:19999"
	for name, src := range srcs {
		if !strings.Contains(string(src), "base_url: "+templates.BaseURL) {
			t.Errorf("%s: no base_url: %s", name, templates.BaseURL)
		}
		p, _, err := plan.ParseFile(name, src, plan.Options{BaseDir: "../../examples", BaseURL: base})
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		for sn, sc := range p.Scenarios {
			for _, tg := range sc.Targets() {
				if strings.Contains(tg.URL, "127.0.0.1") && !strings.HasPrefix(tg.URL, base) &&
					!strings.HasPrefix(tg.URL, "ws"+strings.TrimPrefix(base, "http")) && !strings.HasPrefix(tg.URL, "https://") {
					t.Errorf("%s: scenario %s: URL %s does not follow --base-url", name, sn, tg.URL)
				}
			}
		}
	}
}

func TestBaseURLFlagErrors(t *testing.T) {
	paths := writeFile(t, "paths.yaml", `name: paths
scenarios:
  s:
    executor: constant-vus
    vus: 1
    duration: 1s
    requests:
      - url: /api/items
`)
	r := cli(t, nil, "validate", paths)
	if r.code != exitFailure || !strings.Contains(r.stderr, "paths.yaml:8:14: scenarios.s.requests[0].url:") ||
		!strings.Contains(r.stderr, "set base_url") || !strings.Contains(r.stderr, "--base-url") {
		t.Errorf("validate of paths without base_url:\n%s", r)
	}
	if r := cli(t, nil, "validate", paths, "--base-url", "http://127.0.0.1:9000"); r.code != 0 {
		t.Errorf("validate --base-url:\n%s", r)
	}
	if r := cli(t, map[string]string{plan.BaseURLEnv: "http://127.0.0.1:9000"}, "validate", paths); r.code != 0 {
		t.Errorf("validate with %s:\n%s", plan.BaseURLEnv, r)
	}
	for _, args := range [][]string{
		{"validate", paths, "--base-url", "127.0.0.1:9000"},
		{"run", paths, "--base-url", "ftp://h", "--controller", "127.0.0.1:1"},
		{"init", "--template", "spike", "--base-url", "http://h/?q=1"},
	} {
		r := cli(t, nil, args...)
		if r.code != exitUsage || !strings.Contains(r.stderr, "--base-url") {
			t.Errorf("%v: want a usage error naming --base-url:\n%s", args, r)
		}
	}
	r = cli(t, nil, "init", "--template", "spike", "--base-url", "https://staging.example:8443")
	if r.code != 0 || !strings.Contains(r.stdout, "\nbase_url: https://staging.example:8443") || strings.Contains(r.stdout, templates.BaseURL) {
		t.Errorf("init --base-url:\n%s", r)
	}
}
