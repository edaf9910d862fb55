//go:build e2e

package e2e

import (
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/surgeload/surge/internal/freeport"
	"github.com/surgeload/surge/internal/poll"
)

// startFaultCluster starts a target, a controller with short liveness
// timings and agents in us-east; extra are more controller flags. Each
// agent sends to its own path (openPlan), so the target counts per agent.
func startFaultCluster(t *testing.T, ids []string, extra ...string) *cluster {
	c := &cluster{ctrl: freeport.Addr(t), gossip: freeport.Addr(t), target: freeport.Addr(t), dataDir: t.TempDir()}
	start(t, "target", "target", "--listen", c.target, "--latency", "uniform(1ms,3ms)")
	c.startControllerWith(t, extra...)
	c.agents = map[string]*proc{}
	for _, id := range ids {
		c.agents[id] = startAgentEnv(t, c, id, "us-east")
	}
	waitConnected(t, c.ctrl, len(ids))
	return c
}

func (c *cluster) startControllerWith(t *testing.T, extra ...string) {
	args := append([]string{"controller", "--listen", c.ctrl, "--gossip", c.gossip, "--data-dir", c.dataDir,
		"--agent-keepalive", "1s", "--agent-keepalive-timeout", "1s"}, extra...)
	c.controller = start(t, "controller", args...)
	poll.EventuallyErr(t, 30*time.Second, "controller answers", func() error {
		out, code := surge(t, "runs", "--controller", c.ctrl)
		if code != 0 {
			return fmt.Errorf("exit %d: %s", code, out)
		}
		return nil
	})
}

func openPlan(t *testing.T, target string, rate, secs int) string {
	return writePlan(t, "open.yaml", fmt.Sprintf(`name: e2e-faults
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
        url: http://%s/hello/{{env "SURGE_E2E_AGENT"}}
`, rate, secs, target))
}

// runAsync runs `surge run` in the background; the result arrives on the
// returned channel.
func runAsync(t *testing.T, args ...string) <-chan string {
	ch := make(chan string, 1)
	go func() {
		out, code := surge(t, args...)
		ch <- fmt.Sprintf("exit %d\n%s", code, out)
	}()
	return ch
}

// TestKillAgentReshares: kill -9 one of three agents mid-run of an
// open-model test: the controller detects it, reshares its remaining
// arrivals to the two others, and the target's count stays within 3% of
// the plan.
func TestKillAgentReshares(t *testing.T) {
	// A kill -9 ends the stream at once (the kernel resets it); 300ms is
	// the reconnect window before the share is given away.
	c := startFaultCluster(t, []string{"k1", "k2", "k3"}, "--agent-loss-confirm", "300ms")
	const rate, secs = 60, 12
	jsonPath := filepath.Join(t.TempDir(), "summary.json")
	done := runAsync(t, "run", openPlan(t, c.target, rate, secs), "--controller", c.ctrl, "--json", jsonPath, "--quiet")
	poll.EventuallyErr(t, 20*time.Second, "run under way", func() error {
		if readTargetStats(t, c.target).Requests < int64(rate*secs/3) {
			return fmt.Errorf("not yet mid-run")
		}
		return nil
	})
	killed := time.Now()
	_ = c.agents["k2"].cmd.Process.Signal(syscall.SIGKILL)
	out := <-done
	s := readSummary(t, jsonPath)
	ts := readTargetStats(t, c.target)
	var detected, reshared string
	for _, n := range s.Notes {
		if strings.Contains(n, "reshared") {
			reshared = n
		}
	}
	logs := c.controller.output()
	if i := strings.Index(logs, "agent stream lost"); i >= 0 {
		detected = "stream loss logged"
	}
	planned := int64(rate * secs)
	dev := math.Abs(float64(ts.Requests-planned)) / float64(planned)
	t.Logf("measured: killed k2 at %s; %s; note %q; target %d requests, planned %d (%.2f%% off); summary %d requests, %d dropped",
		killed.Format(time.StampMilli), detected, reshared, ts.Requests, planned, 100*dev, s.Requests, s.DroppedIterations)
	if reshared == "" {
		t.Fatalf("no reshare recorded:\n%s\nnotes %v", out, s.Notes)
	}
	if dev > 0.03 {
		t.Errorf("target count %d is %.2f%% from the planned %d", ts.Requests, 100*dev, planned)
	}
	// Every planned arrival is accounted for: a request, dropped, or k2's
	// deficit: its arrivals due by the reshare and not in its acked
	// snapshots (an upper bound: what it sent after its last snapshot
	// reached the target but is counted there).
	lossDeficit := lostAgentsDeficit(s.Notes)
	t.Logf("measured: requests %d + dropped %d + lost part's deficit %d = %d, plan %d; deficit %d in all",
		s.Requests, s.DroppedIterations, lossDeficit, s.Requests+s.DroppedIterations+lossDeficit, planned, s.Deficit)
	if acc := s.Requests + s.DroppedIterations + lossDeficit; acc != planned {
		t.Errorf("requests %d + dropped %d + lost part's deficit %d = %d, plan says %d", s.Requests, s.DroppedIterations, lossDeficit, acc, planned)
	}
	// openPlan's 60 VUs; the survivors take k2's share: two agents' VUs
	// for the whole rate is the thinnest the run gets.
	if limit := maxDrops(t, rate, 60, 2, 3*time.Millisecond); s.DroppedIterations > limit {
		t.Errorf("%d arrivals dropped, the VU budget allows %d", s.DroppedIterations, limit)
	}
	if s.Requests+s.Deficit < planned {
		t.Errorf("requests %d + deficit %d fall short of the plan's %d", s.Requests, s.Deficit, planned)
	}
	// Survivors: every request the target saw is in the summary, exactly
	// (nothing acked is missing, nothing counted twice). The killed agent
	// cannot report what it sent after its last snapshot: at most about one
	// interval of its share (rate/3 per second) plus what was in flight.
	perAgent := map[string]int64{}
	for _, a := range s.Agents {
		perAgent[a.ID] = a.Requests
	}
	for _, id := range []string{"k1", "k3"} {
		if got, want := perAgent[id], ts.ByPath["/hello/"+id]; got != want {
			t.Errorf("agent %s: summary %d requests, target counted %d: an acked snapshot is missing or counted twice", id, got, want)
		}
	}
	unreported := ts.ByPath["/hello/k2"] - perAgent["k2"]
	t.Logf("measured: killed agent k2 sent %d, its acked snapshots carry %d (%d sent after its last snapshot)",
		ts.ByPath["/hello/k2"], perAgent["k2"], unreported)
	if unreported < 0 || unreported > rate/3+10 {
		t.Errorf("agent k2: target counted %d, summary %d: more than its last interval is unaccounted for", ts.ByPath["/hello/k2"], perAgent["k2"])
	}
}

// TestControllerRestartMidRun: kill -9 the controller mid-run and restart it
// on the same data dir: the agents keep running, resend what was not acked,
// the run is restored and finishes with the target's exact count.
func TestControllerRestartMidRun(t *testing.T) {
	c := startFaultCluster(t, []string{"r1", "r2"})
	const rate, secs = 40, 12
	jsonPath := filepath.Join(t.TempDir(), "summary.json")
	done := runAsync(t, "run", openPlan(t, c.target, rate, secs), "--controller", c.ctrl, "--json", jsonPath, "--quiet")
	poll.EventuallyErr(t, 20*time.Second, "run under way", func() error {
		if readTargetStats(t, c.target).Requests < int64(rate*secs/3) {
			return fmt.Errorf("not yet mid-run")
		}
		return nil
	})
	_ = c.controller.cmd.Process.Signal(syscall.SIGKILL)
	<-c.controller.done
	down := time.Now()
	c.startControllerWith(t)
	t.Logf("controller down %s", time.Since(down).Round(time.Millisecond))
	out := <-done
	s := readSummary(t, jsonPath)
	ts := readTargetStats(t, c.target)
	t.Logf("measured: summary %d requests (+%d dropped), target %d, status %s, notes %v", s.Requests, s.DroppedIterations, ts.Requests, s.Status, s.Notes)
	if s.Requests != ts.Requests {
		t.Errorf("summary requests %d, target counted %d\n%s", s.Requests, ts.Requests, out)
	}
	if s.Requests+s.DroppedIterations != rate*secs {
		t.Errorf("requests %d + dropped %d, plan says %d", s.Requests, s.DroppedIterations, rate*secs)
	}
	if limit := maxDrops(t, rate, 60, 2, 3*time.Millisecond); s.DroppedIterations > limit {
		t.Errorf("%d arrivals dropped, the VU budget allows %d", s.DroppedIterations, limit)
	}
}
