package agent

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
	"github.com/surgeload/surge/internal/ciskip"
	"github.com/surgeload/surge/plan"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// controllerSkew is how far the fake controller's clock is ahead.
const controllerSkew = 5 * time.Second

// fakeController is a minimal AgentGateway: it answers clock probes with a
// skewed clock, acks snapshots, forwards every agent message to msgs and
// sends what the test puts in out.
type fakeController struct {
	surgev1.UnimplementedAgentGatewayServer
	msgs chan *surgev1.AgentMessage
	out  chan *surgev1.ControllerMessage
}

func (f *fakeController) Connect(stream grpc.BidiStreamingServer[surgev1.AgentMessage, surgev1.ControllerMessage]) error {
	replies := make(chan *surgev1.ControllerMessage, 64)
	errc := make(chan error, 1)
	go func() {
		for {
			m, err := stream.Recv()
			if err != nil {
				errc <- err
				return
			}
			switch x := m.GetMsg().(type) {
			case *surgev1.AgentMessage_ClockProbe:
				now := time.Now().Add(controllerSkew).UnixNano()
				replies <- &surgev1.ControllerMessage{Msg: &surgev1.ControllerMessage_ClockReply{ClockReply: &surgev1.ClockProbe{
					Id: x.ClockProbe.GetId(), AgentSendNs: x.ClockProbe.GetAgentSendNs(), ControllerRecvNs: now, ControllerSendNs: now}}}
			case *surgev1.AgentMessage_Snapshot:
				replies <- &surgev1.ControllerMessage{Msg: &surgev1.ControllerMessage_SnapshotAck{SnapshotAck: &surgev1.SnapshotAck{
					RunId: x.Snapshot.GetRunId(), Seq: x.Snapshot.GetSeq()}}}
			}
			f.msgs <- m
		}
	}()
	_ = stream.Send(&surgev1.ControllerMessage{Msg: &surgev1.ControllerMessage_Welcome{Welcome: &surgev1.Welcome{ControllerId: "c1"}}})
	for {
		var m *surgev1.ControllerMessage
		select {
		case m = <-replies:
		case m = <-f.out:
		case err := <-errc:
			return err
		}
		if err := stream.Send(m); err != nil {
			return err
		}
	}
}

func startController(t *testing.T) (*fakeController, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeController{msgs: make(chan *surgev1.AgentMessage, 10000), out: make(chan *surgev1.ControllerMessage, 16)}
	s := grpc.NewServer()
	surgev1.RegisterAgentGatewayServer(s, f)
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Serve(ln) }()
	t.Cleanup(func() { s.Stop(); <-done })
	return f, ln.Addr().String()
}

// next returns the next agent message satisfying pred, failing after d.
func (f *fakeController) next(t *testing.T, d time.Duration, pred func(*surgev1.AgentMessage) bool) *surgev1.AgentMessage {
	t.Helper()
	tm := time.NewTimer(d)
	defer tm.Stop()
	for {
		select {
		case m := <-f.msgs:
			if pred(m) {
				return m
			}
		case <-tm.C:
			t.Fatal("timed out waiting for an agent message")
			return nil
		}
	}
}

func testPlan(t *testing.T, url string) ([]byte, int64) {
	t.Helper()
	p := &plan.Plan{Name: "t", Scenarios: map[string]*plan.Scenario{"s": {
		Executor: plan.ConstantArrivalRate, Rate: 50, TimeUnit: plan.Duration(time.Second),
		Duration: plan.Duration(2 * time.Second), PreAllocatedVUs: 5, MaxVUs: 20,
		GracefulStop: plan.Duration(2 * time.Second),
		Requests:     []plan.Request{{Name: "get", Method: "GET", URL: url, Timeout: plan.Duration(2 * time.Second)}},
	}}}
	b, err := plan.MarshalCanonical(p)
	if err != nil {
		t.Fatal(err)
	}
	total := p.Scenarios["s"].TotalArrivals()
	return b, total
}

func TestSession(t *testing.T) {
	var hits, blockedHits atomic.Int64
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		_, _ = w.Write([]byte("ok"))
	}))
	defer target.Close()
	// A second target on 127.0.0.2, outside the agent's allow-list.
	ln2, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		ciskip.Skipf(t, "no 127.0.0.2: %v", err)
	}
	other := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { blockedHits.Add(1) }))
	other.Listener.Close()
	other.Listener = ln2
	other.Start()
	defer other.Close()

	fc, addr := startController(t)
	a, err := New(Config{ID: "a1", Region: "r1", Zone: "z1", Version: "v0", Controller: addr,
		Allow: []string{"127.0.0.1"}, MaxRate: 1000, ReconnectMin: 50 * time.Millisecond,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	runAgent(t, a)

	hello := fc.next(t, 5*time.Second, func(m *surgev1.AgentMessage) bool { return m.GetHello() != nil }).GetHello()
	if hello.GetAgentId() != "a1" || hello.GetRegion() != "r1" || hello.GetZone() != "z1" || hello.GetVersion() != "v0" ||
		hello.GetMaxRate() != 1000 || hello.GetIncarnation() == "" || !slices.Equal(hello.GetAllow(), []string{"127.0.0.1"}) {
		t.Errorf("hello = %v", hello)
	}
	hb := fc.next(t, 5*time.Second, func(m *surgev1.AgentMessage) bool {
		return m.GetHeartbeat() != nil && m.GetHeartbeat().GetClockRttNs() > 0
	}).GetHeartbeat()
	if off := time.Duration(hb.GetClockOffsetNs()); off < controllerSkew-100*time.Millisecond || off > controllerSkew+100*time.Millisecond {
		t.Errorf("clock offset %s, want about %s", off, controllerSkew)
	}
	if hb.GetStats().GetGoroutines() == 0 || hb.GetStats().GetRssBytes() == 0 {
		t.Errorf("heartbeat stats = %v", hb.GetStats())
	}

	// A run this agent may not send.
	badPlan, _ := testPlan(t, other.URL)
	fc.out <- &surgev1.ControllerMessage{Msg: &surgev1.ControllerMessage_Assign{Assign: &surgev1.Assign{
		RunId: "bad", Epoch: 1, PlanJson: badPlan, StartUnixNs: time.Now().UnixNano(), IntervalMs: 500,
		Share: &surgev1.Share{Scenarios: []*surgev1.ScenarioShare{{Scenario: "s", Arrivals: 100, TotalArrivals: 100, PreAllocatedVus: 5, MaxVus: 20}}},
	}}}
	ev := fc.next(t, 5*time.Second, func(m *surgev1.AgentMessage) bool { return m.GetRunEvent().GetRunId() == "bad" }).GetRunEvent()
	if ev.GetKind() != surgev1.RunEvent_KIND_REJECTED || !strings.Contains(ev.GetMessage(), "agent a1: target host \"127.0.0.2\"") ||
		!strings.Contains(ev.GetMessage(), "--allow 127.0.0.2") {
		t.Errorf("event = %v", ev)
	}

	// A good run: 60 of 100 arrivals at 50/s over 2s.
	good, total := testPlan(t, target.URL)
	const arrivals = 60
	fc.out <- &surgev1.ControllerMessage{Msg: &surgev1.ControllerMessage_Assign{Assign: &surgev1.Assign{
		RunId: "r1", Epoch: 1, PlanJson: good, StartUnixNs: time.Now().Add(200 * time.Millisecond).UnixNano(), IntervalMs: 500,
		Share: &surgev1.Share{Scenarios: []*surgev1.ScenarioShare{{Scenario: "s", Arrivals: arrivals, TotalArrivals: total, PreAllocatedVus: 5, MaxVus: 20}}},
	}}}
	var (
		kinds    []surgev1.RunEvent_Kind
		seqs     []uint64
		requests int64
		started  int64
		final    bool
	)
	for {
		m := fc.next(t, 8*time.Second, func(m *surgev1.AgentMessage) bool {
			return m.GetRunEvent().GetRunId() == "r1" || m.GetSnapshot().GetRunId() == "r1" || m.GetRunEvent().GetRunId() == "bad"
		})
		if s := m.GetSnapshot(); s != nil {
			if final {
				t.Error("snapshot after the final one")
			}
			seqs = append(seqs, s.GetSeq())
			final = s.GetFinal()
			for _, sr := range s.GetSeries() {
				requests += sr.GetCounters().GetRequests()
				if sr.GetKey().GetStatus() != "2xx" || sr.GetKey().GetRequest() != "get" || sr.GetKey().GetScenario() != "s" {
					t.Errorf("series key %v", sr.GetKey())
				}
			}
			for _, st := range s.GetScenarios() {
				started += st.GetStarted()
			}
			continue
		}
		if m.GetRunEvent().GetRunId() == "bad" {
			t.Errorf("more events for the rejected run: %v", m.GetRunEvent())
			continue
		}
		kinds = append(kinds, m.GetRunEvent().GetKind())
		if m.GetRunEvent().GetKind() == surgev1.RunEvent_KIND_FINISHED || m.GetRunEvent().GetKind() == surgev1.RunEvent_KIND_FAILED {
			break
		}
	}
	wantKinds := []surgev1.RunEvent_Kind{surgev1.RunEvent_KIND_ACCEPTED, surgev1.RunEvent_KIND_STARTED, surgev1.RunEvent_KIND_FINISHED}
	if !slices.Equal(kinds, wantKinds) {
		t.Errorf("events %v, want %v", kinds, wantKinds)
	}
	for i, s := range seqs {
		if s != uint64(i+1) {
			t.Errorf("seqs %v, want 1, 2, 3, ...", seqs)
			break
		}
	}
	if !final {
		t.Error("no final snapshot")
	}
	if len(seqs) < 4 {
		t.Errorf("%d snapshots for a 2s run at 500ms intervals", len(seqs))
	}
	if requests != arrivals || hits.Load() != arrivals || started != arrivals {
		t.Errorf("snapshot requests %d, target hits %d, started %d; want %d", requests, hits.Load(), started, arrivals)
	}
	if blockedHits.Load() != 0 {
		t.Errorf("the disallowed target got %d requests", blockedHits.Load())
	}
}

func TestNewValidates(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{Region: "r", Controller: "x:1"}, "id is required"},
		{Config{ID: "a", Controller: "x:1"}, "region is required"},
		{Config{ID: "a", Region: "r"}, "controller address or a gossip bind"},
		{Config{ID: "a", Region: "r", Controller: "x:1", Allow: []string{"10.0.0.0/40"}}, "10.0.0.0/40"},
		{Config{ID: "a", Region: "r", Controller: "x:1", PacingSpin: 2 * time.Millisecond}, "pacing spin must be between 0 and 1ms, got 2ms"},
		{Config{ID: "a", Region: "r", Controller: "x:1", PacingSpin: -time.Microsecond}, "pacing spin"},
	} {
		if _, err := New(c.cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New(%+v) = %v, want %q", c.cfg, err, c.want)
		}
	}
	if _, err := New(Config{ID: "a", Region: "r", Controller: "x:1", Allow: []string{"10.0.0.0/8", "api.example.com"}}); err != nil {
		t.Error(err)
	}
}

// runAgent runs a until the test ends, then stops it and checks that Run
// returned cleanly.
func runAgent(t *testing.T, a *Agent) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-runErr:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return")
		}
	})
}
