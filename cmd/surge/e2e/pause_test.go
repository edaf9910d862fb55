//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/surgeload/surge/internal/freeport"
	"github.com/surgeload/surge/internal/poll"
)

// agentEnvVar names the environment variable each agent of the pause test
// gets: the plan's URL carries it ({{env ...}}), so the target counts every
// agent's requests under its own path.
const agentEnvVar = "SURGE_E2E_AGENT"

// startAgentEnv starts an agent of c in region with agentEnvVar=id in its
// environment; extra are more agent flags.
func startAgentEnv(t *testing.T, c *cluster, id, region string, extra ...string) *proc {
	t.Helper()
	t.Setenv(agentEnvVar, id) // inherited by the child; restored when the test ends
	args := append([]string{"agent", "--id", id, "--region", region, "--join", c.gossip,
		"--gossip", "127.0.0.1:0", "--allow", "127.0.0.1", "--controller", c.ctrl}, extra...)
	p := start(t, "agent "+id, args...)
	return p
}

type targetSeconds struct {
	Requests int64            `json:"requests"`
	ByPath   map[string]int64 `json:"by_path"`
	BySecond map[int64]int64  `json:"by_second"`
}

// TestPausedAgentIsFenced: SIGSTOP one of two agents mid-run of an
// open-model test, hold it until the controller has declared it lost and
// reshared its load, then SIGCONT it: the agent notices its pause, holds
// its arrivals, is fenced by the controller and sends nothing more; in no
// second did the target see more than the planned rate + 5%.
func TestPausedAgentIsFenced(t *testing.T) {
	// Timings: a stopped process keeps its TCP stream open, so the
	// controller notices it through keepalive: 1s idle + 1s ping timeout
	// (startControllerWith), then 1s of --agent-loss-confirm before the
	// share is given away: lost and reshared ~3s after SIGSTOP, memberlist's
	// local profile agreeing at about the same time. We hold the agent
	// stopped for 20s (and until the reshare is logged), then
	// resume it with the run still going for several seconds.
	c := &cluster{ctrl: freeport.Addr(t), gossip: freeport.Addr(t), target: freeport.Addr(t), dataDir: t.TempDir()}
	start(t, "target", "target", "--listen", c.target, "--latency", "uniform(1ms,3ms)")
	c.startControllerWith(t, "--agent-loss-confirm", "1s")
	c.agents = map[string]*proc{}
	for _, id := range []string{"p1", "p2"} {
		c.agents[id] = startAgentEnv(t, c, id, "us-east", "--pause-threshold", "1s")
	}
	waitConnected(t, c.ctrl, 2)

	const rate, secs, hold = 100, 32, 20 * time.Second
	planPath := writePlan(t, "pause.yaml", fmt.Sprintf(`name: e2e-pause
scenarios:
  steady:
    executor: constant-arrival-rate
    rate: %d
    duration: %ds
    pre_allocated_vus: 30
    max_vus: 60
    graceful_stop: 2s
    requests:
      - name: hello
        url: 'http://%s/hello/{{env "%s"}}'
`, rate, secs, c.target, agentEnvVar))
	jsonPath := filepath.Join(t.TempDir(), "summary.json")
	done := runAsync(t, "run", planPath, "--controller", c.ctrl, "--json", jsonPath, "--quiet")

	readSecs := func() targetSeconds {
		var ts targetSeconds
		getJSON(t, "http://"+c.target+"/__surge/stats", &ts)
		return ts
	}
	poll.EventuallyErr(t, 20*time.Second, "run under way", func() error {
		if readSecs().Requests < rate*3 {
			return fmt.Errorf("not yet mid-run")
		}
		return nil
	})
	p2 := c.agents["p2"]
	if err := p2.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	// If the test fails before SIGCONT, let the cleanup's SIGTERM work.
	t.Cleanup(func() { _ = p2.cmd.Process.Signal(syscall.SIGCONT) })
	poll.EventuallyErr(t, hold+10*time.Second, "controller reshared p2's load and the hold passed", func() error {
		if !strings.Contains(c.controller.output(), "reshared") {
			return fmt.Errorf("no reshare logged")
		}
		if time.Since(stopped) < hold {
			return fmt.Errorf("stopped only %s", time.Since(stopped))
		}
		return nil
	})
	atCont := readSecs().ByPath["/hello/p2"]
	if err := p2.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	heldFor := time.Since(stopped)
	contAt := time.Now()

	out := <-done
	s := readSummary(t, jsonPath)
	ts := readSecs()
	p2Log := p2.output()
	fenced := strings.Contains(c.controller.output(), "fenced a returning agent")
	paused := strings.Contains(p2Log, "this process was paused")

	// Per-second totals: the first and last seconds are partial (fewer, not
	// more), so every second counts.
	keys := make([]int64, 0, len(ts.BySecond))
	for k := range ts.BySecond {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var peak, peakAt int64
	var series []string
	for _, k := range keys {
		n := ts.BySecond[k]
		if n > peak {
			peak, peakAt = n, k
		}
		mark := ""
		if k == contAt.Unix() {
			mark = "*" // the second of SIGCONT
		}
		series = append(series, fmt.Sprintf("%d%s", n, mark))
	}
	t.Logf("measured: p2 stopped %s (reshare logged), p2's requests at SIGCONT %d, at the end %d; agent saw pause %v, controller fenced it %v",
		heldFor.Round(time.Millisecond), atCont, ts.ByPath["/hello/p2"], paused, fenced)
	t.Logf("measured: per-second arrivals at the target [%s]; peak %d at %s (limit %.0f)",
		strings.Join(series, " "), peak, time.Unix(peakAt, 0).Format(time.TimeOnly), rate*1.05)
	t.Logf("measured: target %d requests (p1 %d, p2 %d), summary %d requests, %d dropped, deficit %d, status %s, notes %v",
		ts.Requests, ts.ByPath["/hello/p1"], ts.ByPath["/hello/p2"], s.Requests, s.DroppedIterations, s.Deficit, s.Status, s.Notes)

	if !strings.HasPrefix(out, "exit 0") && !strings.HasPrefix(out, "exit 99") {
		t.Errorf("surge run: %s", out)
	}
	if got := ts.ByPath["/hello/p2"]; got != atCont {
		t.Errorf("p2 sent %d requests after SIGCONT; a fenced agent must send nothing", got-atCont)
	}
	if !fenced {
		t.Errorf("the controller did not log fencing p2")
	}
	if !paused {
		t.Errorf("p2 did not notice its pause")
	}
	if float64(peak) > rate*1.05 {
		t.Errorf("%d arrivals in the second at %s: over the planned %d/s by more than 5%%", peak, time.Unix(peakAt, 0).Format(time.TimeOnly), rate)
	}
	if s.Requests != ts.Requests {
		t.Errorf("summary requests %d, target counted %d", s.Requests, ts.Requests)
	}
	if ts.Requests > rate*secs {
		t.Errorf("target counted %d requests, more than the planned %d", ts.Requests, rate*secs)
	}
	// Every planned arrival is accounted for: sent (a request), dropped, or
	// due to p2 between its last report and the reshare, which nobody sent
	// (the lost part's deficit). The summary's deficit holds that and the
	// agents' own deficit (dropped, and arrivals sent later than the bound,
	// which are requests too), so it covers the plan as well.
	lossDeficit := lostAgentsDeficit(s.Notes)
	t.Logf("measured: requests %d + dropped %d + lost part's deficit %d = %d, plan %d; deficit %d in all",
		s.Requests, s.DroppedIterations, lossDeficit, s.Requests+s.DroppedIterations+lossDeficit, rate*secs, s.Deficit)
	if acc := s.Requests + s.DroppedIterations + lossDeficit; acc != rate*secs {
		t.Errorf("requests %d + dropped %d + lost part's deficit %d = %d, plan says %d", s.Requests, s.DroppedIterations, lossDeficit, acc, rate*secs)
	}
	// 60 VUs over the two agents, a target answering within 3 ms.
	if limit := maxDrops(t, rate, 60, 2, 3*time.Millisecond); s.DroppedIterations > limit {
		t.Errorf("%d arrivals dropped, the VU budget allows %d", s.DroppedIterations, limit)
	}
	if s.Requests+s.Deficit < rate*secs {
		t.Errorf("requests %d + deficit %d fall short of the plan's %d", s.Requests, s.Deficit, rate*secs)
	}
	if !slices.ContainsFunc(s.Notes, func(n string) bool { return strings.Contains(n, "reshared") }) {
		t.Errorf("no reshare note: %v", s.Notes)
	}
}

// lostAgentsDeficit sums the deficit the controller counted for lost
// agents' arrivals that nobody sent (its "deficit N: arrivals of lost
// agent ..." notes).
func lostAgentsDeficit(notes []string) int64 {
	var sum int64
	for _, n := range notes {
		var d int64
		if _, err := fmt.Sscanf(n, "deficit %d: arrivals of lost agent", &d); err == nil {
			sum += d
		}
	}
	return sum
}

// getJSON decodes the JSON answer of GET url into v.
func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}
