package controller

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// fakeProm answers instant queries: the value 0.1·n for the first ok
// queries (n counts them), then 503s.
type fakeProm struct {
	mu     sync.Mutex
	n, ok  int
	series int // series per answer; 1 unless set
}

func (f *fakeProm) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	if f.n > f.ok {
		http.Error(w, "overloaded", http.StatusServiceUnavailable)
		return
	}
	var res []string
	for i := range max(f.series, 1) {
		res = append(res, fmt.Sprintf(`{"metric":{"i":"%d"},"value":[1,"%g"]}`, i, float64(f.n)/10))
	}
	fmt.Fprintf(w, `{"status":"success","data":{"resultType":"vector","result":[%s]}}`, strings.Join(res, ","))
}

func monitorPlan(url string) string {
	return twoRegionPlan + fmt.Sprintf(`monitors:
  prometheus: %s
  queries:
    cpu: sum(rate(process_cpu_seconds_total[1m]))
thresholds:
  monitor:cpu: ["max<0.35"]
`, url)
}

// TestMonitorsSampledPerInterval: the controller checks the monitor at
// submit, then samples it at each of the five intervals' ends; when
// Prometheus starts failing mid-run the intervals are counted missing and
// noted, and the run finishes all the same, its threshold judged on the
// values it has.
func TestMonitorsSampledPerInterval(t *testing.T) {
	prom := &fakeProm{ok: 3} // the submit check, intervals 0 and 1
	srv := httptest.NewServer(prom)
	defer srv.Close()
	tc := startController(t, t.TempDir())
	us := newFakeAgent(t, tc.Addr(), "a-us", "us-east", "")
	eu := newFakeAgent(t, tc.Addr(), "a-eu", "eu-west", "")
	tc.waitAgents(t, 2)
	resp, err := submit(t, tc, monitorPlan(srv.URL))
	if err != nil {
		t.Fatalf("submit: %v", err)
	}
	us.waitAssign()
	eu.waitAssign()
	updates := watch(t, tc, resp.GetRunId())
	for i := range int64(5) {
		us.waitAck(us.snapshot(resp.GetRunId(), i, i == 4, values(1000, 10), 0))
		eu.waitAck(eu.snapshot(resp.GetRunId(), i, i == 4, values(1000, 10), 0))
	}
	sum, _ := finalSummary(t, updates)
	if len(sum.GetMonitors()) != 1 {
		t.Fatalf("monitors %v", sum.GetMonitors())
	}
	m := sum.GetMonitors()[0]
	var vals []string
	for _, v := range m.GetValues() {
		vals = append(vals, fmt.Sprintf("%d=%.1f", v.GetInterval(), v.GetValue()))
	}
	if got := strings.Join(vals, " "); got != "0=0.2 1=0.3" || m.GetMissing() != 3 || !strings.Contains(m.GetLastError(), "503") {
		t.Errorf("values %s, missing %d (%q); want 0=0.2 1=0.3 and 3 missing with the 503", got, m.GetMissing(), m.GetLastError())
	}
	if !strings.Contains(strings.Join(sum.GetNotes(), "\n"), "monitor cpu: no value for 3 of 5 intervals") {
		t.Errorf("notes %q lack the missing intervals", sum.GetNotes())
	}
	if sum.GetStatus() != StatusFinished || sum.GetVerdict() != VerdictPass || len(sum.GetThresholds()) != 1 || sum.GetThresholds()[0].GetValue() != 0.3 {
		t.Errorf("status %s verdict %s thresholds %v, want finished pass with max 0.3", sum.GetStatus(), sum.GetVerdict(), sum.GetThresholds())
	}
}

// TestMonitorsRefusedAtSubmit: a monitor that cannot give one value is
// refused before any agent gets work.
func TestMonitorsRefusedAtSubmit(t *testing.T) {
	tc := startController(t, t.TempDir())
	a := newFakeAgent(t, tc.Addr(), "a-us", "us-east", "")
	b := newFakeAgent(t, tc.Addr(), "a-eu", "eu-west", "")
	tc.waitAgents(t, 2)
	down := httptest.NewServer(&fakeProm{})
	down.Close()
	two := httptest.NewServer(&fakeProm{ok: 10, series: 2})
	defer two.Close()
	failing := httptest.NewServer(&fakeProm{})
	defer failing.Close()
	for _, c := range []struct{ url, want string }{
		{down.URL, "monitors.prometheus " + down.URL + " did not answer: "},
		{two.URL, "monitors.queries.cpu: \"sum(rate(process_cpu_seconds_total[1m]))\": 2 series, want one"},
		{failing.URL, "monitors.prometheus " + failing.URL + " did not answer: "},
	} {
		_, err := submit(t, tc, monitorPlan(c.url))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("submit with %s: %v, want %q", c.url, err, c.want)
		}
	}
	for _, f := range []*fakeAgent{a, b} {
		select {
		case m := <-f.assigns:
			t.Errorf("agent %s got work: %v", f.id, m)
		default:
		}
	}
}
