package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/surgeload/surge/cmd/surge/target"
	"github.com/surgeload/surge/controller/surgetest"
	surgev1 "github.com/surgeload/surge/gen/surge/v1"
	"github.com/surgeload/surge/internal/poll"
)

// syncBuffer is a bytes.Buffer the CLI writes while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// longPlan keeps one VU busy for a minute against url: a run the test
// interrupts long before its end.
func longPlan(url string) string {
	return fmt.Sprintf("name: long\nscenarios:\n  s:\n    executor: constant-vus\n    vus: 1\n    duration: 1m\n    requests: [{url: '%s/'}]\n", url)
}

// startCLI runs the command line in the background until ctx ends; the
// returned channel gives its exit code.
func startCLI(ctx context.Context, stdout, stderr *syncBuffer, args ...string) <-chan int {
	done := make(chan int, 1)
	go func() {
		done <- execute(ctx, args, env{stdout: stdout, stderr: stderr, getenv: func(string) string { return "" }})
	}()
	return done
}

func oneAgentCluster(t *testing.T) *surgetest.Cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	waitGoroutines(t)
	return surgetest.Start(t, surgetest.Options{
		Agents: []surgetest.AgentSpec{{ID: "a1", Region: "us-east"}},
		Target: target.Config{Latency: "uniform(1ms,3ms)"},
	})
}

// Ctrl-C of surge run stops the run, prints its partial summary and says
// how to see it again.
func TestRunInterruptPrintsPartialSummary(t *testing.T) {
	c := oneAgentCluster(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb syncBuffer
	done := startCLI(ctx, &out, &errb, "run", "--controller", c.Controller.Addr(), writeFile(t, "long.yaml", longPlan(c.TargetURL())))
	poll.Eventually(t, 20*time.Second, "a progress line", func() bool { return strings.Contains(out.String(), "[1.0s/") })
	cancel()
	select {
	case code := <-done:
		if code != exitFailure {
			t.Errorf("exit %d, want %d (the run was stopped)", code, exitFailure)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("surge run did not end after the interrupt")
	}
	runID := strings.Fields(strings.TrimPrefix(out.String(), "run "))[0]
	for _, want := range []string{"run " + runID + "  plan long", "status stopped", "REGION", "us-east"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("stdout lacks %q:\n%s", want, out.String())
		}
	}
	if want := "`surge report " + runID + "` shows this summary again"; !strings.Contains(errb.String(), want) {
		t.Errorf("stderr lacks %q:\n%s", want, errb.String())
	}
}

// surge watch re-attaches to a running run: live progress, then the
// summary; interrupting it leaves the run running.
func TestWatchReattaches(t *testing.T) {
	c := oneAgentCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	resp, err := c.Runs.Submit(ctx, &surgev1.SubmitRequest{PlanYaml: []byte(longPlan(c.TargetURL())), FileName: "long.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	id := resp.GetRunId()

	// A first watcher sees progress and detaches on its interrupt.
	wctx, wcancel := context.WithCancel(ctx)
	var out, errb syncBuffer
	done := startCLI(wctx, &out, &errb, "watch", id, "--controller", c.Controller.Addr())
	poll.Eventually(t, 20*time.Second, "a progress line", func() bool { return strings.Contains(out.String(), "agents=1") })
	wcancel()
	if code := <-done; code != exitFailure {
		t.Errorf("interrupted watch: exit %d, want %d", code, exitFailure)
	}
	if want := "`surge watch " + id + "` follows it again"; !strings.Contains(errb.String(), want) {
		t.Errorf("stderr lacks %q:\n%s", want, errb.String())
	}
	if l, err := c.Runs.List(ctx, &surgev1.ListRunsRequest{}); err != nil || len(l.GetRuns()) != 1 || l.GetRuns()[0].GetStatus() != "running" {
		t.Fatalf("after watch was interrupted: runs %v, %v; want it still running", l.GetRuns(), err)
	}

	// A second watcher follows it to its end and prints the summary.
	var out2, errb2 syncBuffer
	done = startCLI(ctx, &out2, &errb2, "watch", id, "--controller", c.Controller.Addr())
	poll.Eventually(t, 20*time.Second, "a progress line", func() bool { return strings.Contains(out2.String(), "agents=1") })
	if _, err := c.Runs.Stop(ctx, &surgev1.StopRunRequest{RunId: id}); err != nil {
		t.Fatal(err)
	}
	if code := <-done; code != exitFailure {
		t.Errorf("watch of a stopped run: exit %d, want %d\n%s", code, exitFailure, errb2.String())
	}
	if !strings.Contains(out2.String(), "run "+id+"  plan long") || !strings.Contains(out2.String(), "status stopped") {
		t.Errorf("watch printed no summary:\n%s", out2.String())
	}

	// Watching an ended run prints its summary at once.
	r := cli(t, nil, "watch", id, "--controller", c.Controller.Addr(), "-q")
	if r.code != exitFailure || !strings.Contains(r.stdout, "status stopped") {
		t.Errorf("watch of an ended run:\n%s", r)
	}
	if r := cli(t, nil, "watch", "no-such-run", "--controller", c.Controller.Addr()); r.code == 0 || !strings.Contains(r.stderr, "no-such-run") {
		t.Errorf("watch of an unknown run:\n%s", r)
	}
}
