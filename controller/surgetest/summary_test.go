package surgetest

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/surgeload/surge/agent"
	"github.com/surgeload/surge/cmd/surge/target"
	"github.com/surgeload/surge/controller/report"
	surgev1 "github.com/surgeload/surge/gen/surge/v1"
)

// The summary's duration is the run's exact one, from its start to the
// last agent's end, not rounded to whole intervals: a 2 s plan whose last
// responses end in the third interval lasts 2 s and a bit, and its rps is
// its requests over that.
func TestClusterExactDuration(t *testing.T) {
	c := Start(t, Options{Agents: []AgentSpec{{ID: "a1", Region: "local"}},
		Target: target.Config{Latency: "uniform(40ms,60ms)"}})
	s, _ := c.Run(t, "duration.yaml", fmt.Appendf(nil, `name: duration
scenarios:
  steady:
    executor: constant-arrival-rate
    rate: 50
    duration: 2s
    pre_allocated_vus: 10
    requests:
      - name: hello
        url: %s/hello
`, c.TargetURL()))
	d := s.GetDurationS()
	if d < 2 || d >= 2.5 {
		t.Errorf("duration %.3fs, want 2s and the last requests' end (under 2.5s)", d)
	}
	all := s.GetAll()
	if want := float64(all.GetRequests()) / d; math.Abs(all.GetRps()-want) > 1e-9 {
		t.Errorf("rps %v, want requests %d / duration %.3fs = %v", all.GetRps(), all.GetRequests(), d, want)
	}
}

// A run its agent refused never started: its summary has no start time,
// and an end.
func TestClusterRejectedRunNeverStarted(t *testing.T) {
	c := Start(t, Options{Agents: []AgentSpec{{ID: "a1", Region: "local",
		Configure: func(cfg *agent.Config) { cfg.Allow = []string{"10.0.0.0/8"} }}}})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, subErr := c.Runs.Submit(ctx, &surgev1.SubmitRequest{FileName: "over.yaml", PlanYaml: fmt.Appendf(nil, `name: over
scenarios:
  steady:
    executor: constant-arrival-rate
    rate: 10
    duration: 2s
    pre_allocated_vus: 10
    requests:
      - url: %s/hello
`, c.TargetURL())})
	if subErr == nil {
		t.Fatal("submit to a target outside the agent's allow-list: accepted")
	}
	list, err := c.Runs.List(ctx, &surgev1.ListRunsRequest{})
	if err != nil || len(list.GetRuns()) != 1 {
		t.Fatalf("runs %v, err %v: want the refused run (submit: %v)", list.GetRuns(), err, subErr)
	}
	s, err := c.Runs.Report(ctx, &surgev1.ReportRequest{RunId: list.GetRuns()[0].GetRunId()})
	if err != nil {
		t.Fatal(err)
	}
	if s.GetStatus() != "failed" || s.GetStartedAtUnixMs() != 0 || s.GetEndedAtUnixMs() == 0 {
		t.Errorf("refused run: status %q started %d ended %d, want failed, never started, ended",
			s.GetStatus(), s.GetStartedAtUnixMs(), s.GetEndedAtUnixMs())
	}
	var text strings.Builder
	if err := report.Text(&text, s); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), "never started  ended ") {
		t.Errorf("refused run's report:\n%s", text.String())
	}
}

// Thresholds judge what they select: with three fast resets for each slow
// success, the p50 of every request passes on the fast failures, the p50
// of expected responses (k6's tag) does not, and a threshold that selected
// nothing (no 503 came) fails with no value. The summary gives both
// latencies and names requests as thresholds do.
func TestClusterThresholdsJudgeWhatTheySelect(t *testing.T) {
	c := Start(t, Options{Agents: []AgentSpec{{ID: "a1", Region: "local"}},
		Target: target.Config{Latency: "uniform(30ms,40ms)"}})
	s, _ := c.Run(t, "select.yaml", fmt.Appendf(nil, `name: select
scenarios:
  spike:
    executor: per-vu-iterations
    vus: 2
    iterations: 10
    requests:
      - {name: boom-1, url: "%[1]s/boom?delay=0ms&reset=1"}
      - {name: boom-2, url: "%[1]s/boom?delay=0ms&reset=1"}
      - {name: boom-3, url: "%[1]s/boom?delay=0ms&reset=1"}
      - {name: create-order, url: "%[1]s/orders"}
thresholds:
  http_req_duration: ["p(50)<20"]
  http_req_duration{expected_response:true}: ["p(50)<20"]
  http_req_duration{request:create-order,expected_response:true}: ["min>=30"]
  http_req_duration{status:503}: ["p(95)<1000"]
`, c.TargetURL()))
	got := map[string]string{}
	for _, th := range s.GetThresholds() {
		v := fmt.Sprintf("%.3g", th.GetValue())
		got[th.GetMetric()] = fmt.Sprintf("ok=%v value=%s", th.GetOk(), v)
	}
	if all := s.GetAll(); all.GetRequests() != 80 || all.GetFailures() != 60 {
		t.Fatalf("requests %d failures %d, want 80 and 60 (resets)", all.GetRequests(), all.GetFailures())
	}
	for metric, want := range map[string]string{
		"http_req_duration{expected_response:true}":                      "ok=false",
		"http_req_duration{request:create-order,expected_response:true}": "ok=true",
		"http_req_duration{status:503}":                                  "ok=false value=NaN",
	} {
		if !strings.HasPrefix(got[metric], want) {
			t.Errorf("%s: %s, want %s", metric, got[metric], want)
		}
	}
	if !strings.HasPrefix(got["http_req_duration"], "ok=true") {
		t.Errorf("http_req_duration: %s, want ok on the fast failures (the case for expected_response)", got["http_req_duration"])
	}
	if s.GetVerdict() != "fail" {
		t.Errorf("verdict %q with failed thresholds", s.GetVerdict())
	}
	exp := s.GetAll().GetExpectedLatencyUs()
	if exp.GetCount() != 20 || exp.GetMin() < 30000 || s.GetAll().GetLatencyUs().GetP50() >= 20000 {
		t.Errorf("expected-response latency %v (all p50 %dµs), want the 20 successes' (>= 30 ms)", exp, s.GetAll().GetLatencyUs().GetP50())
	}

	js, err := report.JSON(s)
	if err != nil {
		t.Fatal(err)
	}
	sum, err := report.ParseJSON(js)
	if err != nil {
		t.Fatal(err)
	}
	for _, th := range sum.Thresholds {
		if th.Metric == "http_req_duration{status:503}" && (th.Value != nil || th.OK) {
			t.Errorf("no-data threshold in JSON: ok %v value %v, want false and null", th.OK, *th.Value)
		}
	}
	var text strings.Builder
	if err := report.Text(&text, s); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"✗ http_req_duration{status:503}", "(no data)", "expected responses only (1xx-3xx, 20)", "\ncreate-order "} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text summary lacks %q:\n%s", want, text.String())
		}
	}
}
