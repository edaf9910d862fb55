package agent

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
	"github.com/surgeload/surge/plan"
)

// A plan's controller_loss_grace governs its run; a plan without one runs
// on the agent's --controller-loss-grace. With the controller gone, the run
// on the agent's short grace stops once that grace has passed, while the
// run whose plan allows a minute keeps going.
func TestPlanControllerLossGrace(t *testing.T) {
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) }))
	defer target.Close()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fc := &fakeController{msgs: make(chan *surgev1.AgentMessage, 10000), out: make(chan *surgev1.ControllerMessage, 16)}
	srv := grpc.NewServer()
	surgev1.RegisterAgentGatewayServer(srv, fc)
	served := make(chan struct{})
	go func() { defer close(served); _ = srv.Serve(ln) }()
	stopController := func() { srv.Stop(); <-served }
	defer stopController()

	const agentGrace = 400 * time.Millisecond
	a, err := New(Config{ID: "a1", Region: "r1", Controller: ln.Addr().String(), Allow: []string{"127.0.0.1"},
		ReconnectMin: 50 * time.Millisecond, ControllerLossGrace: agentGrace, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	runAgent(t, a)

	assign := func(id string, grace time.Duration) {
		p := &plan.Plan{Name: id, ControllerLossGrace: plan.Duration(grace), Scenarios: map[string]*plan.Scenario{"s": {
			Executor: plan.ConstantArrivalRate, Rate: 5, TimeUnit: plan.Duration(time.Second),
			Duration: plan.Duration(30 * time.Second), PreAllocatedVUs: 2, MaxVUs: 2,
			Requests: []plan.Request{{Name: "get", Method: "GET", URL: target.URL + "/" + id, Timeout: plan.Duration(time.Second)}},
		}}}
		b, err := plan.MarshalCanonical(p)
		if err != nil {
			t.Fatal(err)
		}
		n := p.Scenarios["s"].TotalArrivals()
		fc.out <- &surgev1.ControllerMessage{Msg: &surgev1.ControllerMessage_Assign{Assign: &surgev1.Assign{
			RunId: id, Epoch: 1, PlanJson: b, StartUnixNs: time.Now().UnixNano(), IntervalMs: 500,
			Share: &surgev1.Share{Scenarios: []*surgev1.ScenarioShare{{Scenario: "s", Arrivals: n, TotalArrivals: n, PreAllocatedVus: 2, MaxVus: 2}}},
		}}}
		fc.next(t, 5*time.Second, func(m *surgev1.AgentMessage) bool {
			return m.GetRunEvent().GetRunId() == id && m.GetRunEvent().GetKind() == surgev1.RunEvent_KIND_STARTED
		})
	}
	fc.next(t, 5*time.Second, func(m *surgev1.AgentMessage) bool { return m.GetHello() != nil })
	assign("agent-grace", 0)          // no plan value: the agent's 400ms
	assign("plan-grace", time.Minute) // the plan's minute

	stopController()
	lost := time.Now()
	running := func(id string) *runState {
		a.runsMu.Lock()
		defer a.runsMu.Unlock()
		return a.runs[id]
	}
	short := running("agent-grace")
	if short == nil {
		t.Fatal("run agent-grace is not running")
	}
	deadline := time.Now().Add(10 * time.Second)
	for running("agent-grace") != nil {
		if time.Now().After(deadline) {
			t.Fatalf("run agent-grace still running %s after the controller was lost (grace %s)", time.Since(lost), agentGrace)
		}
		time.Sleep(20 * time.Millisecond)
	}
	stoppedAfter := time.Since(lost)
	long := running("plan-grace")
	var reason string
	if rs := short.stopReason.Load(); rs != nil {
		reason = *rs
	}
	t.Logf("measured: agent-grace run stopped %s after the controller was lost (%q); plan-grace run still running: %v",
		stoppedAfter.Round(time.Millisecond), reason, long != nil)
	if stoppedAfter < agentGrace {
		t.Errorf("stopped %s after the loss, before its grace of %s", stoppedAfter, agentGrace)
	}
	if !strings.Contains(reason, fmt.Sprintf("controller_loss_grace %s", agentGrace)) {
		t.Errorf("stop reason %q", reason)
	}
	if long == nil || long.stopReason.Load() != nil {
		t.Errorf("the run whose plan allows a minute was stopped %s after the loss", stoppedAfter)
	}
}
