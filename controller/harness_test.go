package controller

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
	"github.com/surgeload/surge/hist"
)

// The controller's test harness: a controller on loopback run until the
// test ends, and fake agents that speak the agent protocol by hand.

const waitFor = 15 * time.Second

// testController runs a controller until the test ends.
type testController struct {
	*Controller
	cancel context.CancelFunc
	done   chan error
	conn   *grpc.ClientConn
	runs   surgev1.RunsClient
	agents surgev1.AgentsClient
}

func startController(t *testing.T, dir string) *testController {
	t.Helper()
	logger := slog.New(slog.DiscardHandler)
	if os.Getenv("SURGE_TEST_LOG") != "" {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	c, err := New(Config{
		Listen:    "127.0.0.1:0",
		DataDir:   dir,
		EmitGrace: 300 * time.Millisecond,
		StartLead: 50 * time.Millisecond,
		Logger:    logger,
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	tc := &testController{Controller: c, cancel: cancel, done: make(chan error, 1)}
	go func() { tc.done <- c.Run(ctx) }()
	conn, err := grpc.NewClient(c.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	tc.conn = conn
	tc.runs = surgev1.NewRunsClient(conn)
	tc.agents = surgev1.NewAgentsClient(conn)
	t.Cleanup(tc.stop)
	return tc
}

// stop ends the controller and waits for Run; safe to call twice.
func (tc *testController) stop() {
	if tc.cancel == nil {
		return
	}
	tc.cancel()
	tc.cancel = nil
	_ = tc.conn.Close()
	select {
	case err := <-tc.done:
		if err != nil {
			panic("controller run: " + err.Error())
		}
	case <-time.After(waitFor):
		panic("controller did not stop")
	}
}

func (tc *testController) waitAgents(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		resp, err := tc.agents.List(context.Background(), &surgev1.ListAgentsRequest{})
		if err == nil && len(resp.GetAgents()) == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("want %d agents, have %v (err %v)", n, resp.GetAgents(), err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// fakeAgent speaks the AgentGateway protocol by hand.
type fakeAgent struct {
	t          *testing.T
	id, region string
	reject     string // REJECT assigns with this message

	conn   *grpc.ClientConn
	stream surgev1.AgentGateway_ConnectClient
	sendMu sync.Mutex
	seq    uint64
	wg     sync.WaitGroup

	assigns chan *surgev1.Assign
	stops   chan *surgev1.Stop
	acks    chan *surgev1.SnapshotAck
	raw     []int64 // every latency value sent, for exactness checks
	sent    int64   // requests sent
}

func newFakeAgent(t *testing.T, addr, id, region, reject string) *fakeAgent {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	stream, err := surgev1.NewAgentGatewayClient(conn).Connect(context.Background())
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	f := &fakeAgent{
		t: t, id: id, region: region, reject: reject, conn: conn, stream: stream,
		assigns: make(chan *surgev1.Assign, 16),
		stops:   make(chan *surgev1.Stop, 16),
		acks:    make(chan *surgev1.SnapshotAck, 256),
	}
	f.send(&surgev1.AgentMessage{Msg: &surgev1.AgentMessage_Hello{Hello: &surgev1.Hello{AgentId: id, Region: region, Incarnation: "i1"}}})
	f.send(&surgev1.AgentMessage{Msg: &surgev1.AgentMessage_Heartbeat{Heartbeat: &surgev1.Heartbeat{ClockOffsetNs: 1500_000}}})
	f.wg.Go(f.recv)
	t.Cleanup(f.close)
	return f
}

func (f *fakeAgent) close() {
	f.sendMu.Lock()
	_ = f.stream.CloseSend()
	f.sendMu.Unlock()
	_ = f.conn.Close()
	f.wg.Wait()
}

func (f *fakeAgent) send(m *surgev1.AgentMessage) {
	f.sendMu.Lock()
	defer f.sendMu.Unlock()
	if err := f.stream.Send(m); err != nil && !errors.Is(err, io.EOF) {
		f.t.Errorf("agent %s send: %v", f.id, err)
	}
}

func (f *fakeAgent) event(runID string, kind surgev1.RunEvent_Kind, msg string) {
	f.send(&surgev1.AgentMessage{Msg: &surgev1.AgentMessage_RunEvent{RunEvent: &surgev1.RunEvent{
		RunId: runID, Epoch: 1, Kind: kind, Message: msg, AtUnixNs: time.Now().UnixNano(),
	}}})
}

func (f *fakeAgent) recv() {
	for {
		m, err := f.stream.Recv()
		if err != nil {
			return
		}
		switch msg := m.GetMsg().(type) {
		case *surgev1.ControllerMessage_Assign:
			if f.reject != "" {
				f.event(msg.Assign.GetRunId(), surgev1.RunEvent_KIND_REJECTED, f.reject)
				continue
			}
			f.event(msg.Assign.GetRunId(), surgev1.RunEvent_KIND_ACCEPTED, "")
			f.event(msg.Assign.GetRunId(), surgev1.RunEvent_KIND_STARTED, "")
			f.assigns <- msg.Assign
		case *surgev1.ControllerMessage_Stop:
			f.stops <- msg.Stop
		case *surgev1.ControllerMessage_SnapshotAck:
			f.acks <- msg.SnapshotAck
		}
	}
}

// snapshot builds and sends one snapshot with the given latencies (µs);
// failures of them are 5xx. It returns the seq used.
func (f *fakeAgent) snapshot(runID string, interval int64, final bool, values []int64, failures int) uint64 {
	f.seq++
	set := hist.NewSet()
	ok := set.Get(hist.Key{Scenario: "s", Request: "get", Status: "2xx"})
	bad := set.Get(hist.Key{Scenario: "s", Request: "get", Status: "5xx"})
	for i, v := range values {
		sr := ok
		if i < failures {
			sr = bad
			sr.Counters.Failures++
		}
		if err := sr.Latency.RecordValue(v); err != nil {
			f.t.Fatalf("record: %v", err)
		}
		sr.Counters.Requests++
	}
	f.raw = append(f.raw, values...)
	f.sent += int64(len(values))
	f.send(&surgev1.AgentMessage{Msg: &surgev1.AgentMessage_Snapshot{Snapshot: &surgev1.Snapshot{
		RunId: runID, AgentId: f.id, Seq: f.seq, Epoch: 1, Interval: interval, Final: final,
		Series:    set.ToProto(),
		Scenarios: []*surgev1.ScenarioStats{{Scenario: "s", TargetRate: 5, Completed: int64(len(values)), Dropped: 1}},
	}}})
	return f.seq
}

func (f *fakeAgent) waitAck(seq uint64) {
	f.t.Helper()
	timeout := time.After(waitFor)
	for {
		select {
		case a := <-f.acks:
			if a.GetSeq() == seq {
				return
			}
		case <-timeout:
			f.t.Fatalf("agent %s: no ack for seq %d", f.id, seq)
		}
	}
}

func (f *fakeAgent) waitAssign() *surgev1.Assign {
	f.t.Helper()
	select {
	case a := <-f.assigns:
		return a
	case <-time.After(waitFor):
		f.t.Fatalf("agent %s: no assign", f.id)
		return nil
	}
}

const twoRegionPlan = `name: two
interval: 200ms
regions:
  us-east: {weight: 1}
  eu-west: {weight: 1}
scenarios:
  s:
    executor: constant-arrival-rate
    rate: 10
    duration: 1s
    pre_allocated_vus: 2
    graceful_stop: 0s
    requests:
      - url: http://127.0.0.1:1/
        name: get
`

// watch collects a run's updates until the stream ends.
func watch(t *testing.T, tc *testController, runID string) <-chan []*surgev1.RunUpdate {
	t.Helper()
	stream, err := tc.runs.Watch(context.Background(), &surgev1.WatchRequest{RunId: runID})
	if err != nil {
		t.Fatalf("watch: %v", err)
	}
	out := make(chan []*surgev1.RunUpdate, 1)
	go func() {
		var ups []*surgev1.RunUpdate
		for {
			u, err := stream.Recv()
			if err != nil {
				out <- ups
				return
			}
			ups = append(ups, u)
		}
	}()
	return out
}

func submit(t *testing.T, tc *testController, yaml string) (*surgev1.SubmitResponse, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	return tc.runs.Submit(ctx, &surgev1.SubmitRequest{PlanYaml: []byte(yaml), FileName: "test.yaml"})
}

func values(base, n int64) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = base + int64(i)*37%5000
	}
	return out
}

func finalSummary(t *testing.T, ch <-chan []*surgev1.RunUpdate) (*surgev1.RunSummary, int) {
	t.Helper()
	select {
	case ups := <-ch:
		progress := 0
		for _, u := range ups {
			if u.GetProgress() != nil {
				progress++
			}
		}
		if len(ups) == 0 || ups[len(ups)-1].GetSummary() == nil {
			t.Fatalf("watch ended without a summary: %v", ups)
		}
		return ups[len(ups)-1].GetSummary(), progress
	case <-time.After(waitFor):
		t.Fatal("watch did not end")
		return nil, 0
	}
}
