package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
)

func TestRunPass(t *testing.T) {
	f := &fakeController{progress: []*surgev1.Progress{progress(1000), progress(2000)}, summary: summary("finished", "pass", true)}
	addr := f.start(t)
	planFile := writeFile(t, "smoke.yaml", goodPlan)
	jsonFile := filepath.Join(t.TempDir(), "out.json")

	r := cli(t, nil, "run", planFile, "--controller", addr, "--json", jsonFile)
	if r.code != 0 {
		t.Fatalf("want exit 0:\n%s", r)
	}
	for _, want := range []string{
		"run r-1 accepted: 3 agents in regions eu-west, us-east (plan smoke, 2s)\n",
		// One line per interval: the run, then each region compactly.
		"[1.0s/2.0s running] agents=3 rps=9.5 arrivals=9.5/10.0 p50=1.23ms p95=5.68ms p99=9.01ms requests=19 errors=1 conns=12 ws=40 send_lateness_p99=0.87ms" +
			" | eu-west rps=4.0 p95=0.00ms errors=0 | us-east rps=5.5 p95=0.00ms errors=1\n",
		"[2.0s/2.0s running] thresholds ✓ http_req_duration p(95)<500\n",
		"verdict PASS",
		"✓ http_req_duration",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, r)
		}
	}
	if strings.Index(r.stdout, "accepted") > strings.Index(r.stdout, "[1.0s") {
		t.Error("the accepted line comes before progress")
	}
	if strings.Contains(r.stdout, "\x1b[") {
		t.Error("no terminal escapes when stdout is not a terminal")
	}
	s := readSummaryFile(t, jsonFile)
	if s.RunID != "r-1" || s.Verdict != "pass" || s.Requests != 20 || s.Regions["us-east"].Agents != 2 {
		t.Errorf("json summary = %+v", s)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.submitted) != 1 || string(f.submitted[0].GetPlanYaml()) != goodPlan || f.submitted[0].GetFileName() != planFile {
		t.Errorf("submitted = %v", f.submitted)
	}
}

func TestRunThresholdsFailed(t *testing.T) {
	f := &fakeController{progress: []*surgev1.Progress{progress(1000)}, summary: summary("finished", "fail", false)}
	addr := f.start(t)
	r := cli(t, map[string]string{"SURGE_CONTROLLER": addr}, "run", "--quiet", writeFile(t, "p.yaml", goodPlan))
	if r.code != 99 {
		t.Fatalf("want exit 99:\n%s", r)
	}
	if strings.Contains(r.stdout, "[1.0s") {
		t.Errorf("--quiet prints no progress:\n%s", r)
	}
	if !strings.Contains(r.stdout, "verdict FAIL") || !strings.Contains(r.stdout, "✗ http_req_duration") {
		t.Errorf("--quiet still prints the summary:\n%s", r)
	}
	if !strings.Contains(r.stderr, "surge: run r-1: thresholds failed: http_req_duration p(95)<500") {
		t.Errorf("stderr:\n%s", r)
	}
}

func TestRunFailed(t *testing.T) {
	s := summary("failed", "", true)
	s.Error = "agent a2 lost"
	f := &fakeController{summary: s}
	r := cli(t, nil, "run", "--controller", f.start(t), writeFile(t, "p.yaml", goodPlan))
	if r.code != 1 || !strings.Contains(r.stderr, "run r-1 failed: agent a2 lost") {
		t.Errorf("want exit 1:\n%s", r)
	}
}

func TestRunRetriesBrokenWatch(t *testing.T) {
	f := &fakeController{progress: []*surgev1.Progress{progress(1000)}, summary: summary("finished", "pass", true), breakWatches: 2}
	r := cli(t, nil, "run", "--controller", f.start(t), writeFile(t, "p.yaml", goodPlan))
	if r.code != 0 {
		t.Fatalf("want exit 0:\n%s", r)
	}
	if n := strings.Count(r.stderr, "retrying in"); n != 2 {
		t.Errorf("want 2 retries, got %d:\n%s", n, r)
	}
	if !strings.Contains(r.stderr, "controller shutting down") || strings.Contains(r.stderr, "rpc error") {
		t.Errorf("stderr:\n%s", r)
	}
	if !strings.Contains(r.stdout, "verdict PASS") {
		t.Errorf("stdout:\n%s", r)
	}
}

func TestRunInvalidPlanIsNotSubmitted(t *testing.T) {
	f := &fakeController{summary: summary("finished", "pass", true)}
	bad := writeFile(t, "bad.yaml", badPlan)
	r := cli(t, nil, "run", "--controller", f.start(t), bad)
	if r.code != 1 || !strings.Contains(r.stderr, bad+":7:5: scenarios.steady.bogus") {
		t.Errorf("want exit 1 and the plan's errors:\n%s", r)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.submitted) != 0 {
		t.Error("an invalid plan was submitted")
	}
}

func TestRunSubmitRejected(t *testing.T) {
	f := &fakeController{submitErr: status.Error(codes.FailedPrecondition, "no agents connected")}
	r := cli(t, nil, "run", "--controller", f.start(t), writeFile(t, "p.yaml", goodPlan))
	if r.code != 1 || r.stderr != "surge: submit: no agents connected\n" {
		t.Errorf("want exit 1 and the message alone:\n%s", r)
	}
}

func TestControllerUnavailable(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	r := cli(t, nil, "runs", "--controller", addr)
	if r.code != 1 || !strings.Contains(r.stderr, "controller at "+addr+" unavailable") {
		t.Errorf("want exit 1 and a hint:\n%s", r)
	}
}

func TestRunInterruptedStopsRun(t *testing.T) {
	block := make(chan struct{})
	f := &blockingWatch{fakeController: fakeController{}, block: block}
	addr := f.start(t)
	defer close(block)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- execute(ctx, []string{"run", "--controller", addr, writeFile(t, "p.yaml", goodPlan)},
			env{stdout: &out, stderr: &errb, getenv: func(string) string { return "" }})
	}()
	deadline := time.After(10 * time.Second)
	for !f.watching() {
		select {
		case <-deadline:
			t.Fatal("watch never started")
		case <-time.After(5 * time.Millisecond):
		}
	}
	cancel()
	if code := <-done; code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if !strings.Contains(errb.String(), "interrupted; run r-1 stopped") {
		t.Errorf("stderr: %s", errb.String())
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.stopped) != 1 || f.stopped[0] != "r-1" {
		t.Errorf("stopped = %v", f.stopped)
	}
}

func TestProgressTTY(t *testing.T) {
	var buf bytes.Buffer
	pp := newProgressPrinter(&buf, true)
	pp.print(progress(1000))
	first := buf.String()
	if strings.Contains(first, "\x1b[4A") || !strings.Contains(first, "\r\x1b[2K") {
		t.Errorf("first block moves the cursor up or does not clear lines: %q", first)
	}
	lines := strings.Count(first, "\n")
	buf.Reset()
	pp.print(progress(2000))
	if want := fmt.Sprintf("\x1b[%dA", lines); !strings.HasPrefix(buf.String(), want) {
		t.Errorf("second block should start with cursor up %d lines: %q", lines, buf.String())
	}
	if !strings.Contains(buf.String(), "2.0s/2.0s") || !strings.Contains(buf.String(), "us-east") {
		t.Errorf("block: %q", buf.String())
	}
	// Connections always; WebSocket sessions and send lateness when the
	// run has them.
	for _, want := range []string{"CONNS", "WS", "LATE99ms", " 12 40 ", " 0.87\n"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("block lacks %q: %q", want, buf.String())
		}
	}
	buf.Reset()
	plain := progress(3000)
	plain.All.WsOpen, plain.All.SendLatenessP99Us = 0, 0
	pp.print(plain)
	if strings.Contains(buf.String(), "WS") || strings.Contains(buf.String(), "LATE") {
		t.Errorf("block without WebSocket or open-model data shows their columns: %q", buf.String())
	}
}
