package controller

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/surgeload/surge/cluster/clustertest"
	surgev1 "github.com/surgeload/surge/gen/surge/v1"
	"github.com/surgeload/surge/hist"
)

func TestMain(m *testing.M) {
	clustertest.VerifyTestMain(m)
}

func TestTwoRegionsExactMerge(t *testing.T) {
	tc := startController(t, t.TempDir())
	us := newFakeAgent(t, tc.Addr(), "a-us", "us-east", "")
	eu := newFakeAgent(t, tc.Addr(), "a-eu", "eu-west", "")
	tc.waitAgents(t, 2)

	resp, err := submit(t, tc, twoRegionPlan)
	if err != nil {
		t.Fatalf("submit: %v", err)
	}
	if !strings.HasPrefix(resp.GetRunId(), time.Now().UTC().Format("2006")) || len(resp.GetAgents()) != 2 {
		t.Fatalf("bad submit response %v", resp)
	}
	asg := us.waitAssign()
	eu.waitAssign()
	if asg.GetIntervalMs() != 200 || asg.GetControllerStartUnixNs()%int64(200*time.Millisecond) != 0 ||
		asg.GetControllerStartUnixNs()-asg.GetStartUnixNs() != 1500_000 || len(asg.GetShare().GetScenarios()) != 1 {
		t.Fatalf("bad assign %v", asg)
	}
	if sh := asg.GetShare().GetScenarios()[0]; sh.GetArrivals() != 5 || sh.GetSegmentTo() == "" {
		t.Fatalf("bad share %v", sh)
	}
	updates := watch(t, tc, resp.GetRunId())

	for i := range int64(5) {
		final := i == 4
		us.waitAck(us.snapshot(resp.GetRunId(), i, final, values(1000+i*100, 50), 2))
		eu.waitAck(eu.snapshot(resp.GetRunId(), i, final, values(80_000+i*1000, 30), 1))
	}
	us.event(resp.GetRunId(), surgev1.RunEvent_KIND_FINISHED, "")
	eu.event(resp.GetRunId(), surgev1.RunEvent_KIND_FINISHED, "")

	sum, progress := finalSummary(t, updates)
	if progress == 0 {
		t.Error("no progress updates")
	}
	if sum.GetStatus() != StatusFinished || sum.GetVerdict() != VerdictPass {
		t.Errorf("status %q verdict %q, want finished/pass (notes %v)", sum.GetStatus(), sum.GetVerdict(), sum.GetNotes())
	}
	if got, want := sum.GetAll().GetRequests(), us.sent+eu.sent; got != want {
		t.Errorf("requests %d, want %d", got, want)
	}
	if got := sum.GetAll().GetFailures(); got != 15 {
		t.Errorf("failures %d, want 15", got)
	}
	if got := sum.GetAll().GetErrors()["http_5xx"]; got != 15 {
		t.Errorf("errors[5xx] %d, want 15", got)
	}
	h := hist.New()
	for _, v := range append(append([]int64{}, us.raw...), eu.raw...) {
		_ = h.RecordValue(v)
	}
	if got, want := sum.GetAll().GetLatencyUs().GetP99(), h.ValueAtQuantile(99); got != want {
		t.Errorf("p99 %d, want %d (exact merge)", got, want)
	}
	if got, want := sum.GetAll().GetLatencyUs().GetP50(), h.ValueAtQuantile(50); got != want {
		t.Errorf("p50 %d, want %d", got, want)
	}
	hu := hist.New()
	for _, v := range us.raw {
		_ = hu.RecordValue(v)
	}
	if r := sum.GetRegions()["us-east"]; r.GetRequests() != us.sent || r.GetLatencyUs().GetP95() != hu.ValueAtQuantile(95) || r.GetDroppedIterations() != 5 {
		t.Errorf("us-east stats %v", r)
	}
	if r := sum.GetRegions()["eu-west"]; r.GetRequests() != eu.sent || r.GetFailures() != 5 {
		t.Errorf("eu-west stats %v", r)
	}
	if sum.GetRegionAgents()["us-east"] != 1 || sum.GetRegionAgents()["eu-west"] != 1 || len(sum.GetAgents()) != 2 {
		t.Errorf("agents %v %v", sum.GetRegionAgents(), sum.GetAgents())
	}
	for _, a := range sum.GetAgents() {
		if a.GetSnapshots() != 5 || a.GetClockOffsetUs() != 1500 {
			t.Errorf("agent summary %v", a)
		}
	}
	if sum.GetDurationS() != 1.0 {
		t.Errorf("duration %v, want 1s", sum.GetDurationS())
	}
	if s := sum.GetScenarios()["s"]; s.GetRequests() != us.sent+eu.sent {
		t.Errorf("scenario stats %v", s)
	}

	got, err := tc.runs.Get(context.Background(), &surgev1.GetRunRequest{RunId: resp.GetRunId()})
	if err != nil || !proto.Equal(got, sum) {
		t.Errorf("Get after end = %v, %v; want the watched summary", got, err)
	}
	list, err := tc.runs.List(context.Background(), &surgev1.ListRunsRequest{})
	if err != nil || len(list.GetRuns()) != 1 || list.GetRuns()[0].GetVerdict() != VerdictPass {
		t.Errorf("List = %v, %v", list, err)
	}
}

func TestDuplicateAndInvalidSnapshots(t *testing.T) {
	tc := startController(t, t.TempDir())
	a := newFakeAgent(t, tc.Addr(), "a1", "us-east", "")
	b := newFakeAgent(t, tc.Addr(), "b1", "eu-west", "")
	tc.waitAgents(t, 2)
	resp, err := submit(t, tc, twoRegionPlan)
	if err != nil {
		t.Fatalf("submit: %v", err)
	}
	a.waitAssign()
	b.waitAssign()
	id := resp.GetRunId()

	seq := a.snapshot(id, 0, false, values(500, 20), 0)
	a.waitAck(seq)
	// Same seq again: acked, not merged again.
	set := hist.NewSet()
	sr := set.Get(hist.Key{Scenario: "s", Request: "get", Status: "2xx"})
	_ = sr.Latency.RecordValue(500)
	sr.Counters.Requests = 1
	a.send(&surgev1.AgentMessage{Msg: &surgev1.AgentMessage_Snapshot{Snapshot: &surgev1.Snapshot{
		RunId: id, AgentId: "a1", Seq: seq, Epoch: 1, Interval: 0, Series: set.ToProto()}}})
	a.waitAck(seq)

	// An invalid histogram from b: rejected (no ack), nothing merged.
	bad := set.ToProto()
	bad[0].Latency.Total = 99
	b.seq++
	b.send(&surgev1.AgentMessage{Msg: &surgev1.AgentMessage_Snapshot{Snapshot: &surgev1.Snapshot{
		RunId: id, AgentId: "b1", Seq: b.seq, Epoch: 1, Interval: 0, Series: bad}}})
	// A snapshot claiming another agent's id and one for an unknown run: ignored.
	b.send(&surgev1.AgentMessage{Msg: &surgev1.AgentMessage_Snapshot{Snapshot: &surgev1.Snapshot{
		RunId: id, AgentId: "a1", Seq: 77, Epoch: 1, Series: set.ToProto()}}})
	b.send(&surgev1.AgentMessage{Msg: &surgev1.AgentMessage_Snapshot{Snapshot: &surgev1.Snapshot{
		RunId: "nope", AgentId: "b1", Seq: 78, Epoch: 1, Series: set.ToProto()}}})
	// The controller keeps serving both.
	b.waitAck(b.snapshot(id, 0, true, values(700, 10), 0))
	a.waitAck(a.snapshot(id, 1, true, values(900, 5), 0))
	select {
	case ack := <-b.acks:
		t.Fatalf("unexpected ack %v", ack)
	default:
	}

	sum, err := tc.runs.Get(context.Background(), &surgev1.GetRunRequest{RunId: id})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(waitFor)
	for sum.GetStatus() != StatusFinished && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
		if sum, err = tc.runs.Get(context.Background(), &surgev1.GetRunRequest{RunId: id}); err != nil {
			t.Fatal(err)
		}
	}
	if sum.GetStatus() != StatusFinished {
		t.Fatalf("status %q", sum.GetStatus())
	}
	if got := sum.GetAll().GetRequests(); got != 35 {
		t.Errorf("requests %d, want 35 (duplicate not double counted, invalid not merged)", got)
	}
	if !strings.Contains(strings.Join(sum.GetNotes(), "\n"), "1 invalid snapshots rejected") {
		t.Errorf("notes %v", sum.GetNotes())
	}
	if tc.stats.snapshotsDup.Load() != 1 || tc.stats.snapshotsRejected.Load() < 2 || tc.stats.snapshotsUnknown.Load() != 1 {
		t.Errorf("counters dup=%d rejected=%d unknown=%d", tc.stats.snapshotsDup.Load(),
			tc.stats.snapshotsRejected.Load(), tc.stats.snapshotsUnknown.Load())
	}
}

func TestFirstMessageMustBeHello(t *testing.T) {
	tc := startController(t, t.TempDir())
	conn, err := grpc.NewClient(tc.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, first := range []*surgev1.AgentMessage{
		{Msg: &surgev1.AgentMessage_Heartbeat{Heartbeat: &surgev1.Heartbeat{}}},
		{Msg: &surgev1.AgentMessage_Hello{Hello: &surgev1.Hello{AgentId: ""}}},
		{Msg: &surgev1.AgentMessage_Hello{Hello: &surgev1.Hello{AgentId: "x", MaxVus: -1}}},
	} {
		stream, err := surgev1.NewAgentGatewayClient(conn).Connect(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if err := stream.Send(first); err != nil {
			t.Fatal(err)
		}
		_, err = stream.Recv()
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("first message %v: got %v, want InvalidArgument", first, err)
		}
	}
	// A good agent still connects, and clock probes are answered.
	f := newFakeAgent(t, tc.Addr(), "ok", "us-east", "")
	tc.waitAgents(t, 1)
	_ = f
}

func TestSubmitErrors(t *testing.T) {
	tc := startController(t, t.TempDir())
	newFakeAgent(t, tc.Addr(), "a-us", "us-east", "")
	tc.waitAgents(t, 1)

	_, err := submit(t, tc, "name: x\nscenarios:\n  s: [\n")
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "test.yaml:") {
		t.Errorf("unparsable plan: %v", err)
	}
	_, err = submit(t, tc, strings.Replace(twoRegionPlan, "    executor: constant-arrival-rate\n", "    executor: constant-arrival-rate\n    bogus: 1\n", 1))
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "test.yaml:9:5:") {
		t.Errorf("unknown key: %v", err)
	}
	_, err = submit(t, tc, strings.Replace(twoRegionPlan, "eu-west", "mars", 1))
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), `"mars"`) || !strings.Contains(err.Error(), "us-east") {
		t.Errorf("region without agents: %v", err)
	}
	_, err = tc.runs.Watch(context.Background(), &surgev1.WatchRequest{RunId: "nope"})
	if err == nil {
		stream, _ := tc.runs.Watch(context.Background(), &surgev1.WatchRequest{RunId: "nope"})
		_, err = stream.Recv()
	}
	if status.Code(err) != codes.NotFound {
		t.Errorf("watch unknown run: %v", err)
	}
	if _, err := tc.runs.Get(context.Background(), &surgev1.GetRunRequest{RunId: "nope"}); status.Code(err) != codes.NotFound {
		t.Errorf("get unknown run: %v", err)
	}
	if _, err := tc.runs.Stop(context.Background(), &surgev1.StopRunRequest{RunId: "nope"}); status.Code(err) != codes.NotFound {
		t.Errorf("stop unknown run: %v", err)
	}
}

func TestAgentRejects(t *testing.T) {
	tc := startController(t, t.TempDir())
	ok := newFakeAgent(t, tc.Addr(), "a-us", "us-east", "")
	const why = `target host "example.com" is not allowed on agent host-eu; start the agent with --allow example.com`
	newFakeAgent(t, tc.Addr(), "a-eu", "eu-west", why)
	tc.waitAgents(t, 2)
	_, err := submit(t, tc, twoRegionPlan)
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), why) || !strings.Contains(err.Error(), "a-eu") {
		t.Fatalf("submit: %v", err)
	}
	asg := ok.waitAssign()
	select {
	case st := <-ok.stops:
		if st.GetRunId() != asg.GetRunId() {
			t.Errorf("stop for %q", st.GetRunId())
		}
	case <-time.After(waitFor):
		t.Fatal("accepting agent got no Stop")
	}
	list, err := tc.runs.List(context.Background(), &surgev1.ListRunsRequest{})
	if err != nil || len(list.GetRuns()) != 1 || list.GetRuns()[0].GetStatus() != StatusFailed {
		t.Errorf("List = %v, %v", list, err)
	}
}

func TestAbortOnFail(t *testing.T) {
	tc := startController(t, t.TempDir())
	a := newFakeAgent(t, tc.Addr(), "a1", "us-east", "")
	tc.waitAgents(t, 1)
	plan := strings.Replace(twoRegionPlan, "regions:\n  us-east: {weight: 1}\n  eu-west: {weight: 1}\n", "", 1) +
		"thresholds:\n  http_req_duration{scenario:s}:\n    - threshold: p(99)<100\n      abort_on_fail: true\n  http_req_failed: [rate<0.5]\n"
	resp, err := submit(t, tc, plan)
	if err != nil {
		t.Fatalf("submit: %v", err)
	}
	a.waitAssign()
	updates := watch(t, tc, resp.GetRunId())
	a.waitAck(a.snapshot(resp.GetRunId(), 0, false, values(400_000, 10), 0))
	select {
	case st := <-a.stops:
		if !strings.Contains(st.GetReason(), "p(99)<100") {
			t.Errorf("stop reason %q", st.GetReason())
		}
	case <-time.After(waitFor):
		t.Fatal("no Stop after a failed abort_on_fail threshold")
	}
	a.waitAck(a.snapshot(resp.GetRunId(), 1, true, values(400_000, 3), 0))
	a.event(resp.GetRunId(), surgev1.RunEvent_KIND_FINISHED, "")
	sum, _ := finalSummary(t, updates)
	if sum.GetStatus() != StatusAborted || sum.GetVerdict() != VerdictFail || sum.GetAll().GetRequests() != 13 {
		t.Errorf("summary status %q verdict %q requests %d", sum.GetStatus(), sum.GetVerdict(), sum.GetAll().GetRequests())
	}
	var failed, passed int
	for _, th := range sum.GetThresholds() {
		if th.GetOk() {
			passed++
		} else {
			failed++
			if th.GetMetric() != "http_req_duration{scenario:s}" || th.GetValue() < 400 || !th.GetAbortOnFail() {
				t.Errorf("threshold %v", th)
			}
		}
	}
	if failed != 1 || passed != 1 {
		t.Errorf("thresholds %v", sum.GetThresholds())
	}
}

func TestStopAndLostAgent(t *testing.T) {
	tc := startController(t, t.TempDir())
	a := newFakeAgent(t, tc.Addr(), "a1", "us-east", "")
	b := newFakeAgent(t, tc.Addr(), "b1", "eu-west", "")
	tc.waitAgents(t, 2)
	resp, err := submit(t, tc, twoRegionPlan)
	if err != nil {
		t.Fatal(err)
	}
	a.waitAssign()
	b.waitAssign()
	updates := watch(t, tc, resp.GetRunId())
	b.waitAck(b.snapshot(resp.GetRunId(), 0, false, values(100, 4), 0))
	b.close() // lost
	if _, err := tc.runs.Stop(context.Background(), &surgev1.StopRunRequest{RunId: resp.GetRunId()}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-a.stops:
	case <-time.After(waitFor):
		t.Fatal("no Stop")
	}
	a.waitAck(a.snapshot(resp.GetRunId(), 0, true, values(100, 6), 0))
	sum, _ := finalSummary(t, updates)
	if sum.GetStatus() != StatusStopped || sum.GetVerdict() != VerdictFail || sum.GetAll().GetRequests() != 10 {
		t.Errorf("summary %v", sum)
	}
	if !strings.Contains(strings.Join(sum.GetNotes(), "\n"), "b1 (eu-west) was lost") {
		t.Errorf("notes %v", sum.GetNotes())
	}
}

func TestReportSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	tc := startController(t, dir)
	a := newFakeAgent(t, tc.Addr(), "a1", "us-east", "")
	b := newFakeAgent(t, tc.Addr(), "b1", "eu-west", "")
	tc.waitAgents(t, 2)
	resp, err := submit(t, tc, twoRegionPlan)
	if err != nil {
		t.Fatal(err)
	}
	a.waitAssign()
	b.waitAssign()
	updates := watch(t, tc, resp.GetRunId())
	a.waitAck(a.snapshot(resp.GetRunId(), 0, true, values(100, 40), 3))
	b.waitAck(b.snapshot(resp.GetRunId(), 0, true, values(9000, 20), 0))
	want, _ := finalSummary(t, updates)
	before, err := tc.runs.Report(context.Background(), &surgev1.ReportRequest{RunId: resp.GetRunId()})
	if err != nil || !proto.Equal(before, want) {
		t.Fatalf("report before restart: %v, %v", before, err)
	}
	a.close()
	b.close()
	tc.stop()

	tc2 := startController(t, dir)
	got, err := tc2.runs.Report(context.Background(), &surgev1.ReportRequest{RunId: resp.GetRunId()})
	if err != nil || !proto.Equal(got, want) {
		t.Fatalf("report after restart = %v, %v\nwant %v", got, err, want)
	}
	stored, err := tc2.store.Get(resp.GetRunId())
	if err != nil || len(stored.Series["us-east"]) != 2 || len(stored.PlanYAML) == 0 {
		t.Fatalf("stored run %v, %v", stored, err)
	}
}

// A data dir that does not exist yet is created (with its parents).
func TestNewCreatesDataDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "var", "surge")
	startController(t, dir)
	if _, err := os.Stat(filepath.Join(dir, "runs.db")); err != nil {
		t.Fatalf("run store: %v", err)
	}
}
