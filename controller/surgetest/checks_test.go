package surgetest

import (
	"bytes"
	"fmt"
	"regexp"
	"testing"

	"github.com/surgeload/surge/cmd/surge/target"
	"github.com/surgeload/surge/controller/report"
)

// Each check is counted by name, per request, from every agent: against a
// target that answers 30% of requests 500 "error" and the rest 200 "ok"
// after 20 ms, status and body_contains pass exactly on the target's own
// 200s, max_duration (5 ms) and json_path (the body is not JSON) fail on
// every request, and the text summary shows which check failed where.
func TestChecksByName(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	c := Start(t, Options{
		Agents: []AgentSpec{{ID: "a1", Region: "us-east"}, {ID: "a2", Region: "eu-west"}},
		Target: target.Config{Latency: "20ms", ErrorRate: 0.3},
	})
	plan := fmt.Sprintf(`name: checks
regions: {us-east: {weight: 0.5}, eu-west: {weight: 0.5}}
scenarios:
  api:
    executor: per-vu-iterations
    vus: 4
    iterations: 15
    requests:
      - name: home
        url: '%s/'
        checks: {status: 200, body_contains: ok, max_duration: 5ms, json_path: {"$.id": "1"}}
`, c.TargetURL())
	sum, _ := c.Run(t, "checks.yaml", []byte(plan))
	st := c.Target.Stats()
	const n = 4 * 15
	if st.Requests != n || st.ByStatus[200]+st.ByStatus[500] != n {
		t.Fatalf("target saw %d requests (%v), want %d", st.Requests, st.ByStatus, n)
	}
	ok, bad := st.ByStatus[200], st.ByStatus[500]
	want := map[string][2]int64{
		"body_contains": {ok, bad}, "json_path.$.id": {0, n}, "max_duration": {0, n}, "status": {ok, bad},
	}
	reqs := sum.GetRequests()
	if len(reqs) != 1 || reqs[0].GetRequest() != "home" {
		t.Fatalf("summary requests %v, want one named home", reqs)
	}
	got := map[string][2]int64{}
	var names []string
	for _, ch := range reqs[0].GetChecks() {
		got[ch.GetName()] = [2]int64{ch.GetPasses(), ch.GetFails()}
		names = append(names, ch.GetName())
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("checks of home (passes, fails) %v, want %v", got, want)
	}
	if fmt.Sprint(names) != "[body_contains json_path.$.id max_duration status]" {
		t.Errorf("checks in order %v, want sorted by name", names)
	}
	if a := sum.GetAll(); a.GetChecksPassed() != 2*ok || a.GetChecksFailed() != 2*bad+2*n {
		t.Errorf("checks passed %d, failed %d; want %d, %d", a.GetChecksPassed(), a.GetChecksFailed(), 2*ok, 2*bad+2*n)
	}

	var text bytes.Buffer
	if err := report.Text(&text, sum); err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile(fmt.Sprintf(`(?m)^✗ max_duration +home +api +0 +%d +0\.0%%$`, n))
	if !row.Match(text.Bytes()) {
		t.Errorf("text summary has no row %s:\n%s", row, text.String())
	}
}
