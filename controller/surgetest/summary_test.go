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
