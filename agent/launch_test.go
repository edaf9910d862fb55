package agent

import (
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
)

// An assigned run launches its parts when the assignment arrives: the
// arrival-rate scenario's pre-allocated VUs open their connections before
// the start. A stop before the start ends the run with no request sent,
// one final snapshot and FINISHED; the parts' goroutines end with it
// (goleak, in TestMain).
func TestLaunchOnAssign(t *testing.T) {
	var accepted, hits atomic.Int64
	target := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		_, _ = w.Write([]byte("ok"))
	}))
	target.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			accepted.Add(1)
		}
	}
	target.Start()
	defer target.Close()

	fc, addr := startController(t)
	a, err := New(Config{ID: "a1", Region: "r1", Controller: addr, Allow: []string{"127.0.0.1"},
		ReconnectMin: 50 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	runAgent(t, a)
	fc.next(t, 5*time.Second, func(m *surgev1.AgentMessage) bool { return m.GetHello() != nil })

	planJSON, total := testPlan(t, target.URL)
	const preAllocated = 5
	start := time.Now().Add(time.Minute)
	fc.out <- &surgev1.ControllerMessage{Msg: &surgev1.ControllerMessage_Assign{Assign: &surgev1.Assign{
		RunId: "r1", Epoch: 1, PlanJson: planJSON, StartUnixNs: start.UnixNano(), IntervalMs: 500,
		Share: &surgev1.Share{Scenarios: []*surgev1.ScenarioShare{{Scenario: "s", Arrivals: total, TotalArrivals: total,
			PreAllocatedVus: preAllocated, MaxVus: 20}}},
	}}}
	ev := fc.next(t, 5*time.Second, func(m *surgev1.AgentMessage) bool { return m.GetRunEvent().GetRunId() == "r1" }).GetRunEvent()
	if ev.GetKind() != surgev1.RunEvent_KIND_ACCEPTED {
		t.Fatalf("event %v, want ACCEPTED", ev)
	}
	for deadline := time.Now().Add(10 * time.Second); accepted.Load() < preAllocated; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections before the start, want %d (the pre-allocated VUs')", accepted.Load(), preAllocated)
		}
	}

	fc.out <- &surgev1.ControllerMessage{Msg: &surgev1.ControllerMessage_Stop{Stop: &surgev1.Stop{RunId: "r1", Reason: "test"}}}
	var snaps []*surgev1.Snapshot
	for {
		m := fc.next(t, 10*time.Second, func(m *surgev1.AgentMessage) bool {
			return m.GetRunEvent().GetRunId() == "r1" || m.GetSnapshot().GetRunId() == "r1"
		})
		if s := m.GetSnapshot(); s != nil {
			snaps = append(snaps, s)
			continue
		}
		ev := m.GetRunEvent()
		if ev.GetKind() != surgev1.RunEvent_KIND_FINISHED || ev.GetMessage() != "stopped before the start" {
			t.Fatalf("event %v, want FINISHED, stopped before the start", ev)
		}
		break
	}
	if len(snaps) != 1 || !snaps[0].GetFinal() || len(snaps[0].GetSeries()) != 0 {
		t.Fatalf("snapshots %v, want one final snapshot without series", snaps)
	}
	if st := snaps[0].GetScenarios(); len(st) != 1 || st[0].GetStarted() != 0 || st[0].GetConnsOpened() != preAllocated {
		t.Errorf("scenario stats %v, want 0 started, %d connections opened", st, preAllocated)
	}
	if hits.Load() != 0 {
		t.Errorf("the target got %d requests before the start", hits.Load())
	}
}
