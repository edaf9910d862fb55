//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/surgeload/surge/controller/report"
	"github.com/surgeload/surge/internal/ciskip"
	"github.com/surgeload/surge/internal/poll"
)

// regions drives scripts/regions.sh: network namespaces of the project's
// own, joined by a bridge on 10.77.0.0/24; nothing else is reached.
type regions struct{ script string }

func newRegions(t *testing.T, names ...string) *regions {
	t.Helper()
	if os.Getuid() != 0 {
		ciskip.Skipf(t, "the partition test needs root to make network namespaces (scripts/regions.sh)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		ciskip.Skipf(t, "the partition test needs the ip command (iproute2)")
	}
	script, err := filepath.Abs("../../../scripts/regions.sh")
	if err != nil {
		t.Fatal(err)
	}
	r := &regions{script: script}
	_ = exec.Command(script, "down").Run() // leftovers of an interrupted run
	r.run(t, append([]string{"up"}, names...)...)
	t.Cleanup(func() {
		if out, err := exec.Command(script, "down").CombinedOutput(); err != nil {
			t.Errorf("regions.sh down: %v\n%s", err, out)
		}
	})
	return r
}

func (r *regions) run(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, r.script, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("regions.sh %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// start runs `surge args...` inside namespace ns (regions.sh exec execs
// into it, so the process is surge itself).
func (r *regions) start(t *testing.T, ns, name string, args ...string) *proc {
	t.Helper()
	return startCmd(t, name, exec.Command(r.script, append([]string{"exec", ns, bin(t)}, args...)...))
}

// surge runs one CLI command in ns.
func (r *regions) surge(t *testing.T, ns string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, r.script, append([]string{"exec", ns, bin(t)}, args...)...).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return string(out), ee.ExitCode()
	} else if err != nil {
		t.Fatalf("surge %v in %s: %v\n%s", args, ns, err, out)
	}
	return string(out), 0
}

// targetStats reads the target's counters from inside the target's
// namespace.
func (r *regions) targetStats(t *testing.T, addr string) targetStats {
	t.Helper()
	out := r.run(t, "exec", "target", "curl", "-sf", "-m", "5", "http://"+addr+"/__surge/stats")
	var s targetStats
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("target stats %q: %v", out, err)
	}
	return s
}

// keptRunning asserts that the cut-off agent ran its share through the
// cut: its run stopped only after the heal, when the controller fenced it
// (not by its controller-loss grace), and it sent requests during the cut,
// which failed: the target is unreachable only then, so a run that paused
// at the cut would have next to no failures (a request lasts 1-3 ms, so
// at most one is in flight at the cut). One second of its share (perSec)
// is the floor.
func keptRunning(t *testing.T, log string, healed time.Time, eu report.Stats, perSec int64) {
	t.Helper()
	var stopped time.Time
	for line := range strings.SplitSeq(log, "\n") {
		if !strings.Contains(line, `msg="run stopped"`) {
			continue
		}
		f, _, _ := strings.Cut(strings.TrimPrefix(strings.TrimSpace(line), "time="), " ")
		at, err := time.Parse(time.RFC3339Nano, f)
		if err != nil {
			t.Fatalf("run stopped line without a time: %q", line)
		}
		stopped = at
		if !strings.Contains(line, "fenced") {
			t.Errorf("e1's run stopped for another reason than the fence: %s", line)
		}
	}
	t.Logf("measured: e1's run stopped %s after the heal; eu-west %d requests, %d failures, %d dropped",
		stopped.Sub(healed).Round(time.Millisecond), eu.Requests, eu.Failures, eu.DroppedIterations)
	if stopped.IsZero() || stopped.Before(healed) {
		t.Errorf("e1's run stopped at %s, the heal was at %s: it did not keep running through the cut\n%s",
			stopped.Format(time.RFC3339Nano), healed.Format(time.RFC3339Nano), log)
	}
	if eu.Failures < perSec {
		t.Errorf("eu-west has %d failed requests, want at least %d (one second of its share sent into the cut)", eu.Failures, perSec)
	}
}

// TestRegionPartition: a controller, a target and two regions, each in its
// own network namespace. Mid-run, eu-west is cut off for 20 s and healed:
// its agent keeps running through the cut (controller-loss grace), the
// gossip membership re-forms without any manual step, the agent's buffered
// snapshots arrive, and the run's count of answered requests matches the
// target's.
func TestRegionPartition(t *testing.T) {
	r := newRegions(t, "us-east", "eu-west")
	const ctl, gossip, tgt = "10.77.0.1:7070", "10.77.0.1:7946", "10.77.0.2:8080"
	r.start(t, "target", "target", "target", "--listen", tgt, "--latency", "uniform(1ms,3ms)")
	// --agent-loss-confirm 60s: the stream alone would be waited for longer
	// than the cut; gossip (lan profile) confirms the agent gone sooner.
	ctrl := r.start(t, "ctl", "controller", "controller", "--listen", ctl, "--gossip", gossip, "--data-dir", t.TempDir(),
		"--agent-keepalive", "1s", "--agent-keepalive-timeout", "2s", "--agent-loss-confirm", "60s")
	agents := map[string]*proc{}
	for _, a := range [][3]string{{"u1", "us-east", "10.77.0.11"}, {"e1", "eu-west", "10.77.0.12"}} {
		agents[a[0]] = r.start(t, a[1], "agent "+a[0], "agent", "--id", a[0], "--region", a[1], "--join", gossip,
			"--gossip", a[2]+":0", "--allow", "10.77.0.2", "--controller-loss-grace", "90s")
	}
	agentsState := func() map[string]string {
		out, code := r.surge(t, "ctl", "agents", "--json", "--controller", ctl)
		st := map[string]string{}
		if code != 0 {
			return st
		}
		var resp struct{ Agents []struct{ ID, State string } }
		if json.Unmarshal([]byte(out), &resp) == nil {
			for _, a := range resp.Agents {
				st[a.ID] = a.State
			}
		}
		return st
	}
	poll.EventuallyErr(t, 60*time.Second, "both agents connected", func() error {
		if st := agentsState(); st["u1"] != "connected" || st["e1"] != "connected" {
			return fmt.Errorf("agents %v", st)
		}
		return nil
	})

	const rate, secs = 40, 40
	planPath := writePlan(t, "partition.yaml", fmt.Sprintf(`name: e2e-partition
regions:
  us-east: {weight: 0.5}
  eu-west: {weight: 0.5}
scenarios:
  steady:
    executor: constant-arrival-rate
    rate: %d
    duration: %ds
    pre_allocated_vus: 20
    max_vus: 40
    graceful_stop: 2s
    requests:
      - url: http://%s/hello
`, rate, secs, tgt))
	jsonPath := filepath.Join(t.TempDir(), "summary.json")
	done := make(chan string, 1)
	go func() {
		out, code := r.surge(t, "ctl", "run", planPath, "--controller", ctl, "--json", jsonPath, "--quiet")
		done <- fmt.Sprintf("exit %d\n%s", code, out)
	}()
	poll.EventuallyErr(t, 30*time.Second, "run under way", func() error {
		if r.targetStats(t, tgt).Requests < rate*5 {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	r.run(t, "cut", "eu-west")
	cut := time.Now()
	// The cut itself lasts 20 s: a fixed hold, not a wait for a condition.
	<-time.After(20 * time.Second)
	gone := agentsState()["e1"]
	r.run(t, "heal", "eu-west")
	healed := time.Now()
	poll.EventuallyErr(t, 30*time.Second, "e1 back in the membership", func() error {
		if st := agentsState(); st["e1"] != "connected" {
			return fmt.Errorf("e1 is %q", st["e1"])
		}
		return nil
	})
	rejoined := time.Since(healed)
	out := <-done
	s := readSummary(t, jsonPath)
	ts := r.targetStats(t, tgt)
	t.Logf("measured: eu-west cut %s (e1 state during the cut %q), e1 connected again %s after heal",
		healed.Sub(cut).Round(time.Millisecond), gone, rejoined.Round(time.Millisecond))
	t.Logf("measured: summary %d requests, %d failures (us-east %d, eu-west %d, +%d dropped), target %d, status %s, notes %v",
		s.Requests, s.Failures, s.Regions["us-east"].Requests, s.Regions["eu-west"].Requests, s.DroppedIterations, ts.Requests, s.Status, s.Notes)
	if !strings.HasPrefix(out, "exit 0") {
		t.Errorf("surge run: %s", out)
	}
	keptRunning(t, agents["e1"].output(), healed, s.Regions["eu-west"].Stats, rate/2)
	// The cut also cuts eu-west off the target: its requests during the cut
	// fail (no route) and are counted as failures that the target never saw.
	// A request in flight at the cut may have reached the target with its
	// answer lost: a failure the target did count. So every answered request
	// was counted by the target, and the target counted nothing beyond the
	// requests the summary holds (nothing lost, nothing twice).
	if answered := s.Requests - s.Failures; ts.Requests < answered || ts.Requests > s.Requests {
		t.Errorf("target counted %d; the summary has %d answered of %d requests: want answered <= target <= requests",
			ts.Requests, answered, s.Requests)
	}
	// Gossip confirms the cut-off agent gone within seconds, so its share
	// goes to us-east and it is fenced when it returns; what it measured
	// until then, buffered during the cut, must still arrive and be merged.
	if !slices.ContainsFunc(s.Notes, func(n string) bool { return strings.Contains(n, "from fenced agent e1 arrived") }) &&
		!strings.Contains(ctrl.output(), "agent re-attached") {
		t.Errorf("e1's buffered snapshots did not arrive: notes %v", s.Notes)
	}
	if !strings.Contains(ctrl.output(), "e1") {
		t.Errorf("controller never logged e1")
	}
}
