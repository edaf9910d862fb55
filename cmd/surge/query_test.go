package main

import (
	"encoding/json"
	"testing"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
)

// `surge runs --json` gives the start as a number of milliseconds.
func TestRunsJSONStartIsANumber(t *testing.T) {
	f := &fakeController{runs: []*surgev1.RunInfo{
		{RunId: "r-1", PlanName: "smoke", Status: "finished", Verdict: "pass", StartedAtUnixMs: 1767225600000},
		{RunId: "r-2", PlanName: "refused", Status: "failed", Verdict: "fail"},
	}}
	r := cli(t, nil, "runs", "--json", "--controller", f.start(t))
	var got struct {
		Runs []map[string]any `json:"runs"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || r.code != 0 || len(got.Runs) != 2 {
		t.Fatalf("exit %d, %v: %s", r.code, err, r)
	}
	for i, want := range []float64{1767225600000, 0} {
		if v, ok := got.Runs[i]["started_at_unix_ms"].(float64); !ok || v != want {
			t.Errorf("run %v: started_at_unix_ms %#v, want the number %v", got.Runs[i]["run_id"], got.Runs[i]["started_at_unix_ms"], want)
		}
	}
	if got.Runs[0]["run_id"] != "r-1" || got.Runs[0]["plan_name"] != "smoke" || got.Runs[0]["verdict"] != "pass" {
		t.Errorf("run 0: %v", got.Runs[0])
	}
}
