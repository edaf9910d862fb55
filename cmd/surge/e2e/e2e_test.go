//go:build e2e

// Package e2e holds surge's system tests: the built binary (SURGE_BIN) runs as
// separate processes — controller, agents, target — and the CLI drives them.
// Run with `make e2e`.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/surgeload/surge/cmd/surge/target"
	"github.com/surgeload/surge/controller/report"
	"github.com/surgeload/surge/internal/freeport"
	"github.com/surgeload/surge/internal/poll"
)

// proc is one surge process; its output goes to a log file kept for failures.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  *syncBuffer
	done chan struct{}
	err  error
}

type syncBuffer struct {
	mu sync.Mutex
	b  *bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func bin(t *testing.T) string {
	t.Helper()
	b := os.Getenv("SURGE_BIN")
	if b == "" {
		t.Fatal("SURGE_BIN is not set: run these tests with `make e2e`")
	}
	return b
}

// start runs `surge args...` until the test ends (or stop is called).
func start(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	return startCmd(t, name, exec.Command(bin(t), args...))
}

// startEnv is start with extra environment variables.
func startEnv(t *testing.T, name string, env []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(bin(t), args...)
	cmd.Env = append(os.Environ(), env...)
	return startCmd(t, name, cmd)
}

// startCmd runs cmd until the test ends (or stop is called); its output is
// kept and shown if the test fails.
func startCmd(t *testing.T, name string, cmd *exec.Cmd) *proc {
	t.Helper()
	p := &proc{name: name, cmd: cmd, log: &syncBuffer{b: &bytes.Buffer{}}, done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stop(t)
		if t.Failed() {
			t.Logf("--- %s output:\n%s", name, p.log.String())
		}
	})
	return p
}

// stop sends SIGTERM and waits for the process to end (SIGKILL after 10 s).
func (p *proc) stop(t *testing.T) {
	t.Helper()
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		t.Errorf("%s did not stop on SIGTERM within 10s", p.name)
	}
}

// surge runs one CLI command to completion and returns its output and exit code.
func surge(t *testing.T, args ...string) (string, int) {
	t.Helper()
	return surgeEnv(t, nil, args...)
}

// surgeEnv is surge with env (NAME=VALUE) added to the environment.
func surgeEnv(t *testing.T, env []string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin(t), args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &ee):
		return string(out), ee.ExitCode()
	default:
		t.Fatalf("surge %v: %v\n%s", args, err, out)
		return "", -1
	}
}

type targetStats struct {
	Requests      int64            `json:"requests"`
	ConnsAccepted int64            `json:"conns_accepted"`
	ByPath        map[string]int64 `json:"by_path"`
	BySecond      map[int64]int64  `json:"by_second"`
	Shop          target.ShopStats `json:"shop"`
}

func readTargetStats(t *testing.T, addr string) targetStats {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/__surge/stats")
	if err != nil {
		t.Fatalf("target stats: %v", err)
	}
	defer resp.Body.Close()
	var s targetStats
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Fatalf("target stats: %v", err)
	}
	return s
}

type cluster struct {
	ctrl, gossip, target, dataDir string
	controller                    *proc
	agents                        map[string]*proc
}

// output is what the process wrote so far.
func (p *proc) output() string {
	return p.log.String()
}

func (c *cluster) startController(t *testing.T, extra ...string) {
	c.controller = start(t, "controller", append([]string{"controller", "--listen", c.ctrl, "--gossip", c.gossip, "--data-dir", c.dataDir}, extra...)...)
	poll.EventuallyErr(t, 30*time.Second, "controller answers", func() error {
		out, code := surge(t, "runs", "--controller", c.ctrl)
		if code != 0 {
			return fmt.Errorf("exit %d: %s", code, out)
		}
		return nil
	})
}

// startCluster starts a target, a controller (with the flags ctrlArgs)
// and agents (id → region).
func startCluster(t *testing.T, agents [][2]string, ctrlArgs ...string) *cluster {
	c := &cluster{ctrl: freeport.Addr(t), gossip: freeport.Addr(t), target: freeport.Addr(t), dataDir: t.TempDir()}
	start(t, "target", "target", "--listen", c.target, "--latency", "uniform(1ms,3ms)")
	c.startController(t, ctrlArgs...)
	for _, a := range agents {
		start(t, "agent "+a[0], "agent", "--id", a[0], "--region", a[1], "--join", c.gossip,
			"--gossip", "127.0.0.1:0", "--allow", "127.0.0.1")
	}
	waitConnected(t, c.ctrl, len(agents))
	return c
}

// waitConnected waits until the controller at ctrl lists n connected agents.
func waitConnected(t *testing.T, ctrl string, n int) {
	t.Helper()
	poll.EventuallyErr(t, 30*time.Second, fmt.Sprintf("%d agents connected", n), func() error {
		out, code := surge(t, "agents", "--json", "--controller", ctrl)
		if code != 0 {
			return fmt.Errorf("exit %d: %s", code, out)
		}
		if got := strings.Count(out, `"connected"`); got != n {
			return fmt.Errorf("%d connected: %s", got, out)
		}
		return nil
	})
}

func writePlan(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func readSummary(t *testing.T, path string) *report.Summary {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := report.ParseJSON(b)
	if err != nil {
		t.Fatalf("parse %s: %v\n%s", path, err, b)
	}
	return s
}

// TestRunReportAfterRestart: three agents in two regions run a plan; the
// summary matches what the target counted; after a controller restart the
// stored report has the same numbers.
func TestRunReportAfterRestart(t *testing.T) {
	c := startCluster(t, [][2]string{{"a1", "us-east"}, {"a2", "us-east"}, {"a3", "eu-west"}})
	plan := writePlan(t, "rate.yaml", fmt.Sprintf(`name: e2e-rate
regions:
  us-east: {weight: 0.6}
  eu-west: {weight: 0.4}
scenarios:
  steady:
    executor: constant-arrival-rate
    rate: 100
    duration: 5s
    pre_allocated_vus: 50
    max_vus: 100
    requests:
      - url: http://%s/hello
thresholds:
  http_req_failed: ["rate<0.01"]
`, c.target))
	jsonPath := filepath.Join(t.TempDir(), "summary.json")
	out, code := surge(t, "run", plan, "--controller", c.ctrl, "--json", jsonPath)
	if code != 0 {
		t.Fatalf("surge run exited %d:\n%s", code, out)
	}
	if !strings.Contains(out, "accepted") {
		t.Errorf("run id not announced:\n%s", out)
	}
	s := readSummary(t, jsonPath)
	ts := readTargetStats(t, c.target)
	t.Logf("measured: summary requests %d (+%d dropped iterations), target requests %d, regions us-east %d eu-west %d, p99 %dµs, start spread %dµs",
		s.Requests, s.DroppedIterations, ts.Requests, s.Regions["us-east"].Requests, s.Regions["eu-west"].Requests, s.LatencyUS.P99, s.StartSpreadUS)
	if s.Requests+s.DroppedIterations != 500 {
		t.Errorf("summary requests %d + dropped %d, plan says 500", s.Requests, s.DroppedIterations)
	}
	// 100/s over three agents, 100 VUs, a target answering within 3 ms.
	if limit := maxDrops(t, 100, 100, 3, 3*time.Millisecond); s.DroppedIterations > limit {
		t.Errorf("%d arrivals dropped, the VU budget allows %d", s.DroppedIterations, limit)
	}
	if s.Requests != ts.Requests {
		t.Errorf("summary requests %d, target counted %d", s.Requests, ts.Requests)
	}
	if s.Status != "finished" || s.Verdict != "pass" {
		t.Errorf("status %q verdict %q", s.Status, s.Verdict)
	}
	if got := s.Regions["us-east"].Agents; got != 2 {
		t.Errorf("us-east agents %d", got)
	}
	if frac := float64(s.Regions["us-east"].Requests) / float64(s.Requests); math.Abs(frac-0.6) > 0.01 {
		t.Errorf("us-east share %.4f, want 0.6±0.01", frac)
	}

	// Restart the controller on the same data dir: the report is the same.
	c.controller.stop(t)
	c.startController(t)
	repPath := filepath.Join(t.TempDir(), "report.json")
	out, code = surge(t, "report", s.RunID, "--json", "--controller", c.ctrl)
	if code != 0 {
		t.Fatalf("surge report exited %d:\n%s", code, out)
	}
	if err := os.WriteFile(repPath, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	r := readSummary(t, repPath)
	if r.Requests != s.Requests || r.Failures != s.Failures || r.LatencyUS != s.LatencyUS ||
		r.Regions["eu-west"].Requests != s.Regions["eu-west"].Requests || r.Verdict != s.Verdict {
		t.Errorf("report after restart differs:\nrun:    %+v\nreport: %+v", s, r)
	}
	out, _ = surge(t, "runs", "--controller", c.ctrl)
	if !strings.Contains(out, s.RunID) {
		t.Errorf("runs does not list %s:\n%s", s.RunID, out)
	}
}

// TestBadInput: each bad input gets a clear error, and the controller keeps
// serving.
func TestBadInput(t *testing.T) {
	c := startCluster(t, [][2]string{{"b1", "us-east"}})
	cases := []struct {
		name, plan string
		want       []string
	}{
		{"malformed", "name: x\nscenarios: [\n", []string{"malformed.yaml:"}},
		{"unknown-executor", "name: x\nscenarios:\n  s:\n    executor: warp-speed\n    requests: [{url: 'http://127.0.0.1:1/'}]\n",
			[]string{"unknown-executor.yaml:4:", "scenarios.s.executor", "warp-speed"}},
		{"negative-rate", "name: x\nscenarios:\n  s:\n    executor: constant-arrival-rate\n    rate: -5\n    duration: 1s\n    requests: [{url: 'http://127.0.0.1:1/'}]\n",
			[]string{"negative-rate.yaml:5:", "scenarios.s.rate"}},
		{"unknown-region", "name: x\nregions: {mars: {weight: 1}}\nscenarios:\n  s:\n    executor: constant-arrival-rate\n    rate: 5\n    duration: 1s\n    requests: [{url: 'http://127.0.0.1:1/'}]\n",
			[]string{"mars"}},
		{"not-allowed", "name: x\nscenarios:\n  s:\n    executor: constant-arrival-rate\n    rate: 5\n    duration: 1s\n    requests: [{url: 'http://127.0.0.2:8080/'}]\n",
			[]string{"127.0.0.2", "allow"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := writePlan(t, tc.name+".yaml", tc.plan)
			out, code := surge(t, "run", p, "--controller", c.ctrl, "--quiet")
			if code == 0 || code == 99 {
				t.Fatalf("exit %d, want an error exit:\n%s", code, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
	// The controller still serves: a good run after all that.
	p := writePlan(t, "ok.yaml", fmt.Sprintf("name: ok\nscenarios:\n  s:\n    executor: constant-vus\n    vus: 2\n    duration: 1s\n    requests: [{url: 'http://%s/'}]\n", c.target))
	if out, code := surge(t, "run", p, "--controller", c.ctrl, "--quiet"); code != 0 {
		t.Fatalf("good run after bad input exited %d:\n%s", code, out)
	}
	if ts := readTargetStats(t, c.target); ts.Requests == 0 {
		t.Fatal("good run sent nothing")
	}
}
