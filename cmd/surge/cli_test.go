package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/surgeload/surge/cluster/tlsconf"
	"github.com/surgeload/surge/controller/report"
	surgev1 "github.com/surgeload/surge/gen/surge/v1"
	"github.com/surgeload/surge/plan"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const goodPlan = `name: smoke
scenarios:
  steady:
    executor: constant-arrival-rate
    rate: 10
    duration: 2s
    requests:
      - url: http://127.0.0.1:18080/
  users:
    executor: ramping-vus
    start_time: 1s
    stages:
      - {duration: 1s, target: 2}
      - {duration: 2s, target: 0}
    requests:
      - url: http://127.0.0.1:18080/users
`

const badPlan = `name: broken
scenarios:
  steady:
    executor: constant-arrival-rate
    rate: -1
    duration: 2s
    bogus: 1
    requests:
      - url: http://127.0.0.1:18080/
`

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

type result struct {
	code           int
	stdout, stderr string
}

// cli runs the command line in-process, with env vars from vars.
func cli(t *testing.T, vars map[string]string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	e := env{stdout: &out, stderr: &errb, getenv: func(k string) string { return vars[k] }}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code := execute(ctx, args, e)
	return result{code, out.String(), errb.String()}
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\n--- stdout:\n%s--- stderr:\n%s", r.code, r.stdout, r.stderr)
}

// --- fake controller ---

type fakeController struct {
	surgev1.UnimplementedRunsServer
	surgev1.UnimplementedAgentsServer

	submitErr error
	progress  []*surgev1.Progress
	summary   *surgev1.RunSummary
	// breakWatches: this many Watch calls send the progress, then fail
	// with Unavailable before the summary.
	breakWatches int
	agents       []*surgev1.AgentInfo
	runs         []*surgev1.RunInfo

	mu        sync.Mutex
	submitted []*surgev1.SubmitRequest
	watches   int
	stopped   []string
}

func (f *fakeController) Submit(_ context.Context, req *surgev1.SubmitRequest) (*surgev1.SubmitResponse, error) {
	f.mu.Lock()
	f.submitted = append(f.submitted, req)
	f.mu.Unlock()
	if f.submitErr != nil {
		return nil, f.submitErr
	}
	return &surgev1.SubmitResponse{
		RunId:      "r-1",
		PlanName:   "smoke",
		DurationMs: 2000,
		Agents: []*surgev1.AgentShareInfo{
			{AgentId: "a1", Region: "us-east"},
			{AgentId: "a2", Region: "eu-west"},
			{AgentId: "a3", Region: "us-east"},
		},
	}, nil
}

func (f *fakeController) Watch(req *surgev1.WatchRequest, stream grpc.ServerStreamingServer[surgev1.RunUpdate]) error {
	if req.GetRunId() != "r-1" {
		return status.Errorf(codes.NotFound, "run %q not found", req.GetRunId())
	}
	f.mu.Lock()
	f.watches++
	broken := f.watches <= f.breakWatches
	f.mu.Unlock()
	for _, p := range f.progress {
		if err := stream.Send(&surgev1.RunUpdate{Update: &surgev1.RunUpdate_Progress{Progress: p}}); err != nil {
			return err
		}
	}
	if broken {
		return status.Error(codes.Unavailable, "controller shutting down")
	}
	return stream.Send(&surgev1.RunUpdate{Update: &surgev1.RunUpdate_Summary{Summary: f.summary}})
}

func (f *fakeController) Report(_ context.Context, req *surgev1.ReportRequest) (*surgev1.RunSummary, error) {
	if req.GetRunId() != f.summary.GetRunId() {
		return nil, status.Errorf(codes.NotFound, "run %q not found", req.GetRunId())
	}
	return f.summary, nil
}

func (f *fakeController) Stop(_ context.Context, req *surgev1.StopRunRequest) (*surgev1.StopRunResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stopped = append(f.stopped, req.GetRunId())
	return &surgev1.StopRunResponse{}, nil
}

func (f *fakeController) List(context.Context, *surgev1.ListRunsRequest) (*surgev1.ListRunsResponse, error) {
	return &surgev1.ListRunsResponse{Runs: f.runs}, nil
}

// agentsServer adapts the fake to AgentsServer, whose List clashes with
// RunsServer's.
type agentsServer struct {
	surgev1.UnimplementedAgentsServer
	f *fakeController
}

func (a agentsServer) List(context.Context, *surgev1.ListAgentsRequest) (*surgev1.ListAgentsResponse, error) {
	return &surgev1.ListAgentsResponse{Agents: a.f.agents}, nil
}

// start serves f on 127.0.0.1:0 until the test ends and returns its address.
func (f *fakeController) start(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	surgev1.RegisterRunsServer(srv, f)
	surgev1.RegisterAgentsServer(srv, agentsServer{f: f})
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(lis)
	}()
	t.Cleanup(func() {
		srv.Stop()
		<-done
	})
	return lis.Addr().String()
}

func progress(elapsedMs int64) *surgev1.Progress {
	return &surgev1.Progress{
		RunId: "r-1", Status: "running", ElapsedMs: elapsedMs, TotalMs: 2000,
		All: &surgev1.RegionProgress{Agents: 3, TargetRps: 10, AchievedRps: 9.5, ArrivalRps: 9.5, P50Us: 1234, P95Us: 5678, P99Us: 9012, Requests: 19, Failures: 1,
			ConnsOpen: 12, WsOpen: 40, SendLatenessP99Us: 870},
		Regions: []*surgev1.RegionProgress{
			{Region: "eu-west", Agents: 1, TargetRps: 4, AchievedRps: 4, P50Us: 1500, Requests: 8, ConnsOpen: 4, WsOpen: 40},
			{Region: "us-east", Agents: 2, TargetRps: 6, AchievedRps: 5.5, ArrivalRps: 5.5, P50Us: 1000, Requests: 11, Failures: 1,
				ConnsOpen: 8, SendLatenessP99Us: 870},
		},
		Thresholds: []*surgev1.ThresholdResult{{Metric: "http_req_duration", Expr: "p(95)<500", Ok: true, Value: 5.678}},
	}
}

func summary(status, verdict string, ok bool) *surgev1.RunSummary {
	return &surgev1.RunSummary{
		RunId: "r-1", PlanName: "smoke", Status: status, Verdict: verdict, DurationS: 2,
		StartedAtUnixMs: 1767225600000,
		All: &surgev1.Stats{Requests: 20, Failures: 1, Rps: 10,
			LatencyUs: &surgev1.LatencyStats{P50: 1234, P99: 9012}, Errors: map[string]int64{"5xx": 1}},
		Regions:      map[string]*surgev1.Stats{"us-east": {Requests: 12}, "eu-west": {Requests: 8}},
		RegionAgents: map[string]int64{"us-east": 2, "eu-west": 1},
		Thresholds:   []*surgev1.ThresholdResult{{Metric: "http_req_duration", Expr: "p(95)<500", Ok: ok, Value: 612}},
	}
}

// --- validate ---

func TestValidate(t *testing.T) {
	good := writeFile(t, "good.yaml", goodPlan)
	r := cli(t, nil, "validate", good)
	if r.code != 0 || r.stdout != good+": ok (2 scenarios, total duration 4s)\n" {
		t.Errorf("good plan:\n%s", r)
	}

	bad := writeFile(t, "bad.yaml", badPlan)
	r = cli(t, nil, "validate", bad)
	if r.code != 1 || r.stdout != "" {
		t.Errorf("bad plan:\n%s", r)
	}
	for _, want := range []string{bad + ":7:5: scenarios.steady.bogus: unknown key"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("bad plan: stderr lacks %q:\n%s", want, r)
		}
	}
	if strings.Contains(r.stderr, "surge:") {
		t.Errorf("plan errors are printed as they are, without a prefix:\n%s", r)
	}

	r = cli(t, nil, "validate", filepath.Join(t.TempDir(), "missing.yaml"))
	if r.code != 1 || !strings.Contains(r.stderr, "surge: read plan:") {
		t.Errorf("missing file:\n%s", r)
	}
}

// --- exit codes ---

func TestUsageErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		help string // the command whose help the hint names
	}{
		{[]string{"validate"}, "surge validate"},
		{[]string{"validate", "a", "b"}, "surge validate"},
		{[]string{"run", "--no-such-flag", "x.yaml"}, "surge run"},
		{[]string{"bogus-command"}, "surge"},
		{[]string{"controller"}, "surge controller"}, // --data-dir is required
		{[]string{"agent", "--id", "a"}, "surge agent"},
		{[]string{"demo", "--duration", "-1s"}, "surge demo"},
		{[]string{"agents", "--controller", "127.0.0.1:1", "extra"}, "surge agents"},
		{[]string{"plan", "from-log", "--scale", "x", "a.log"}, "surge plan from-log"},
	} {
		r := cli(t, nil, c.args...)
		if r.code != exitUsage || !strings.Contains(r.stderr, "Run '"+c.help+" --help' for usage.") {
			t.Errorf("%q: want exit 2 and a hint naming %s --help, got\n%s", c.args, c.help, r)
		}
	}
}

func TestExitCode(t *testing.T) {
	tests := []struct {
		err  error
		want int
	}{
		{nil, 0},
		{errors.New("boom"), 1},
		{withExitCode(exitThresholds, errors.New("thresholds")), 99},
		{fmt.Errorf("wrapped: %w", withExitCode(exitUsage, errors.New("usage"))), 2},
		{rpcErr("submit", "x", status.Error(codes.InvalidArgument, "bad")), 1},
	}
	for _, tt := range tests {
		if got := exitCode(tt.err); got != tt.want {
			t.Errorf("exitCode(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
}

func TestVerdictError(t *testing.T) {
	tests := []struct {
		status, verdict string
		want            int
	}{
		{"finished", "pass", 0},
		{"stopped", "pass", 0},
		{"finished", "fail", 99},
		{"aborted", "fail", 99},
		{"failed", "fail", 1},
		{"failed", "", 1},
		{"stopped", "fail", 1},
	}
	for _, tt := range tests {
		err := verdictError(summary(tt.status, tt.verdict, tt.verdict == "pass"))
		if got := exitCode(err); got != tt.want {
			t.Errorf("%s/%s: exit %d (%v), want %d", tt.status, tt.verdict, got, err, tt.want)
		}
	}
	err := verdictError(summary("finished", "fail", false))
	if want := "run r-1: thresholds failed: http_req_duration p(95)<500"; err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}
}

func TestRPCErrorHidesGRPCFraming(t *testing.T) {
	err := rpcErr("submit", "127.0.0.1:7070", status.Error(codes.InvalidArgument, "plan.yaml:1:1: empty plan"))
	if got := err.Error(); got != "submit: plan.yaml:1:1: empty plan" {
		t.Errorf("Error() = %q", got)
	}
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("code = %s, want InvalidArgument", status.Code(err))
	}
	if !errors.Is(rpcErr("watch", "x", status.Error(codes.Canceled, "gone")), context.Canceled) {
		t.Error("a cancelled call is context.Canceled")
	}
}

// --- run ---

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
	b, err := os.ReadFile(jsonFile)
	if err != nil {
		t.Fatal(err)
	}
	s, err := report.ParseJSON(b)
	if err != nil {
		t.Fatal(err)
	}
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

// --- queries ---

func TestAgents(t *testing.T) {
	f := &fakeController{agents: []*surgev1.AgentInfo{
		{Id: "b", Region: "us-east", Zone: "us-east-1a", State: "connected", ClockOffsetUs: 1500, CpuPercent: 12.4, Runs: []string{"r-1"}},
		{Id: "a", Region: "eu-west", State: "gossip-only"},
	}}
	addr := f.start(t)
	r := cli(t, nil, "agents", "--controller", addr)
	want := "ID  REGION   ZONE        STATE        OFFSET  CPU  RUNS\n" +
		"a   eu-west  -           gossip-only  0s      0%   -\n" +
		"b   us-east  us-east-1a  connected    1.5ms   12%  r-1\n"
	if r.code != 0 || r.stdout != want {
		t.Errorf("got\n%s\nwant\n%s", r, want)
	}
	r = cli(t, nil, "agents", "--json", "--controller", addr)
	if r.code != 0 || !strings.Contains(r.stdout, `"clock_offset_us": "1500"`) || !strings.Contains(r.stdout, `"id": "a"`) {
		t.Errorf("json:\n%s", r)
	}
}

func TestRuns(t *testing.T) {
	f := &fakeController{runs: []*surgev1.RunInfo{
		{RunId: "r-1", PlanName: "smoke", Status: "finished", Verdict: "pass", StartedAtUnixMs: 1767225600000},
		{RunId: "r-3", PlanName: "soak", Status: "pending"},
		{RunId: "r-2", PlanName: "spike", Status: "aborted", Verdict: "fail", StartedAtUnixMs: 1767225700000},
	}}
	r := cli(t, nil, "runs", "--controller", f.start(t))
	want := "RUN_ID  PLAN   STATUS    VERDICT  STARTED\n" +
		"r-2     spike  aborted   fail     2026-01-01T00:01:40Z\n" +
		"r-1     smoke  finished  pass     2026-01-01T00:00:00Z\n" +
		"r-3     soak   pending   -        -\n"
	if r.code != 0 || r.stdout != want {
		t.Errorf("got\n%s\nwant\n%s", r, want)
	}
}

func TestReport(t *testing.T) {
	f := &fakeController{summary: summary("finished", "pass", true)}
	addr := f.start(t)
	r := cli(t, nil, "report", "r-1", "--controller", addr)
	var want bytes.Buffer
	if err := report.Text(&want, f.summary); err != nil {
		t.Fatal(err)
	}
	if r.code != 0 || r.stdout != want.String() {
		t.Errorf("text report:\n%s", r)
	}
	r = cli(t, nil, "report", "r-1", "--json", "--controller", addr)
	if s, err := report.ParseJSON([]byte(r.stdout)); r.code != 0 || err != nil || s.RunID != "r-1" {
		t.Errorf("json report (%v):\n%s", err, r)
	}
	r = cli(t, nil, "report", "r-404", "--controller", addr)
	if r.code != 1 || r.stderr != "surge: report r-404: run \"r-404\" not found\n" {
		t.Errorf("unknown run:\n%s", r)
	}
}

func TestStop(t *testing.T) {
	f := &fakeController{}
	r := cli(t, nil, "stop", "r-7", "--controller", f.start(t))
	if r.code != 0 || r.stdout != "run r-7 stopping\n" {
		t.Errorf("stop:\n%s", r)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.stopped) != 1 || f.stopped[0] != "r-7" {
		t.Errorf("stopped = %v", f.stopped)
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

// blockingWatch holds Watch open until block is closed or the client goes.
type blockingWatch struct {
	fakeController
	block chan struct{}
	on    sync.Once
	onc   chan struct{}
}

func (b *blockingWatch) start(t *testing.T) string {
	b.onc = make(chan struct{})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	surgev1.RegisterRunsServer(srv, b)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(lis)
	}()
	t.Cleanup(func() {
		srv.Stop()
		<-done
	})
	return lis.Addr().String()
}

func (b *blockingWatch) watching() bool {
	select {
	case <-b.onc:
		return true
	default:
		return false
	}
}

func (b *blockingWatch) Watch(_ *surgev1.WatchRequest, stream grpc.ServerStreamingServer[surgev1.RunUpdate]) error {
	b.on.Do(func() { close(b.onc) })
	select {
	case <-b.block:
	case <-stream.Context().Done():
	}
	return stream.Context().Err()
}

// --- misc ---

func TestVersion(t *testing.T) {
	r := cli(t, nil, "version")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "surge ") {
		t.Errorf("version:\n%s", r)
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

func TestScalePlan(t *testing.T) {
	src, err := demoPlan("127.0.0.1:4242", 6*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	p, err := plan.Parse("demo.yaml", src)
	if err != nil {
		t.Fatal(err)
	}
	for _, tg := range p.Scenarios["browse"].Targets() {
		if !strings.HasPrefix(tg.URL, "http://127.0.0.1:4242/") {
			t.Errorf("target base not replaced: %s\n%s", tg.URL, src)
		}
	}
	if got := p.TotalDuration(); got < 6*time.Second-10*time.Millisecond || got > 6*time.Second+10*time.Millisecond {
		t.Errorf("scaled total = %s, want about 6s", got)
	}

	scaled, err := scalePlan("p.yaml", []byte(goodPlan), 8*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	p, err = plan.Parse("p.yaml", scaled)
	if err != nil {
		t.Fatal(err)
	}
	u := p.Scenarios["users"]
	if p.TotalDuration() != 8*time.Second || u.StartTime.D() != 2*time.Second || u.Stages[1].Duration.D() != 4*time.Second ||
		p.Scenarios["steady"].Duration.D() != 4*time.Second {
		t.Errorf("scaled plan:\n%s", scaled)
	}

	if _, err := scalePlan("bad.yaml", []byte(badPlan), time.Second); err == nil {
		t.Error("scaling an invalid plan: want an error")
	}
}

// --- credentials ---

// startSecure serves f over mTLS with the controller certificate in dir,
// requiring a client certificate with the cli role and "Bearer token" on
// every call, as the controller does.
func (f *fakeController) startSecure(t *testing.T, dir, token string) string {
	t.Helper()
	cfg, err := tlsconf.Files{CA: filepath.Join(dir, tlsconf.CAFile), Cert: tlsconf.CertFile(dir, "ctl"), Key: tlsconf.KeyFile(dir, "ctl")}.Server()
	if err != nil {
		t.Fatal(err)
	}
	check := func(ctx context.Context) error {
		role := ""
		if p, ok := peer.FromContext(ctx); ok {
			if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(ti.State.VerifiedChains) > 0 {
				role = tlsconf.Role(ti.State.VerifiedChains[0][0])
			}
		}
		if role != tlsconf.RoleCLI {
			return status.Errorf(codes.PermissionDenied, "client certificate role %q", role)
		}
		md, _ := metadata.FromIncomingContext(ctx)
		if got := md.Get("authorization"); len(got) != 1 || got[0] != "Bearer "+token {
			return status.Errorf(codes.Unauthenticated, "a valid bearer token is required")
		}
		return nil
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(cfg)),
		grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			if err := check(ctx); err != nil {
				return nil, err
			}
			return h(ctx, req)
		}),
		grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			if err := check(ss.Context()); err != nil {
				return err
			}
			return h(srv, ss)
		}))
	surgev1.RegisterRunsServer(srv, f)
	surgev1.RegisterAgentsServer(srv, agentsServer{f: f})
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(lis)
	}()
	t.Cleanup(func() {
		srv.Stop()
		<-done
	})
	return lis.Addr().String()
}

// The client commands take their credentials from --tls-ca, --tls-cert,
// --tls-key and --token, each defaulting to its environment variable; a
// flag wins over the environment.
func TestClientCredentialFlags(t *testing.T) {
	dir := t.TempDir()
	if err := tlsconf.InitCA(dir); err != nil {
		t.Fatal(err)
	}
	for name, role := range map[string]string{"ctl": tlsconf.RoleController, "cli": tlsconf.RoleCLI, "agt": tlsconf.RoleAgent} {
		if err := tlsconf.Issue(dir, name, role, nil); err != nil {
			t.Fatal(err)
		}
	}
	const token = "s3cret-token"
	f := &fakeController{summary: summary("finished", "pass", true)}
	addr := f.startSecure(t, dir, token)
	ca := filepath.Join(dir, tlsconf.CAFile)
	tlsFlags := []string{"--tls-ca", ca, "--tls-cert", tlsconf.CertFile(dir, "cli"), "--tls-key", tlsconf.KeyFile(dir, "cli")}
	tlsEnv := map[string]string{"SURGE_TLS_CA": ca, "SURGE_TLS_CERT": tlsconf.CertFile(dir, "cli"), "SURGE_TLS_KEY": tlsconf.KeyFile(dir, "cli")}
	with := func(m map[string]string, kv ...string) map[string]string {
		out := map[string]string{}
		for k, v := range m {
			out[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	planFile := writeFile(t, "p.yaml", goodPlan)
	cases := []struct {
		name   string
		vars   map[string]string
		args   []string
		code   int
		stderr string // a substring of stderr when the command fails
	}{
		{"run with flags", nil, append([]string{"run", planFile, "--quiet", "--token", token}, tlsFlags...), 0, ""},
		{"runs with flags", nil, append([]string{"runs", "--token", token}, tlsFlags...), 0, ""},
		{"agents from env", with(tlsEnv, "SURGE_TOKEN", token), []string{"agents"}, 0, ""},
		{"report: flag wins over env", with(tlsEnv, "SURGE_TOKEN", "stale"), []string{"report", "r-1", "--token", token}, 0, ""},
		{"stop: tls flags win over env", with(map[string]string{"SURGE_TLS_CERT": tlsconf.CertFile(dir, "agt"), "SURGE_TLS_KEY": tlsconf.KeyFile(dir, "agt")}, "SURGE_TOKEN", token),
			append([]string{"stop", "r-1"}, tlsFlags...), 0, ""},
		{"compare with flags", nil, append([]string{"compare", "r-1", "r-1", "--token", token}, tlsFlags...), -1, ""},
		{"wrong token from env", with(tlsEnv, "SURGE_TOKEN", "guess"), []string{"runs"}, 1, "bearer token"},
		{"no token", tlsEnv, []string{"runs"}, 1, "bearer token"},
		{"agent certificate", nil, []string{"runs", "--token", token, "--tls-ca", ca, "--tls-cert", tlsconf.CertFile(dir, "agt"), "--tls-key", tlsconf.KeyFile(dir, "agt")}, 1, "role \"agent\""},
		{"no TLS", map[string]string{"SURGE_TOKEN": token}, []string{"runs"}, 1, "unavailable"},
		{"CA only", nil, []string{"runs", "--tls-ca", ca}, 2, "--tls-ca, --tls-cert, --tls-key (or SURGE_TLS_CA, SURGE_TLS_CERT, SURGE_TLS_KEY)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := cli(t, tc.vars, append(tc.args, "--controller", addr)...)
			if tc.code == -1 { // the fake has no Compare: authenticated, then unimplemented
				if r.code != 1 || !strings.Contains(r.stderr, "Compare not implemented") {
					t.Errorf("want the call to reach the controller:\n%s", r)
				}
				return
			}
			if r.code != tc.code || (tc.stderr != "" && !strings.Contains(r.stderr, tc.stderr)) {
				t.Errorf("want exit %d and %q in stderr:\n%s", tc.code, tc.stderr, r)
			}
		})
	}

	// Help names the variable behind each flag and never shows a value.
	for _, cmd := range []string{"run", "agents", "runs", "report", "stop", "compare"} {
		r := cli(t, with(tlsEnv, "SURGE_TOKEN", token), cmd, "--help")
		for _, want := range []string{"--token TOKEN", "(env SURGE_TOKEN)", "--tls-ca FILE", "(env SURGE_TLS_CA)", "(env SURGE_TLS_CERT)", "(env SURGE_TLS_KEY)"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("surge %s --help lacks %q:\n%s", cmd, want, r.stdout)
			}
		}
		if strings.Contains(r.stdout, token) || strings.Contains(r.stdout, ca) {
			t.Errorf("surge %s --help shows a value from the environment:\n%s", cmd, r.stdout)
		}
	}
}
