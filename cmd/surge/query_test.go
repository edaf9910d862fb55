package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"

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

func TestAgents(t *testing.T) {
	f := &fakeController{agents: []*surgev1.AgentInfo{
		{Id: "b", Region: "us-east", Zone: "us-east-1a", State: "connected", ClockOffsetUs: 1500, CpuPercent: 12.4, Runs: []string{"r-1"}},
		{Id: "a", Region: "eu-west", State: "gossip-only"},
	}}
	addr := f.start(t)
	r := cli(t, nil, "agents", "--controller", addr)
	want := "ID  REGION   ZONE        STATE        OFFSET  CPU  RUNS\n" +
		"a   eu-west  -           gossip-only  0s      0%   -\n" +
		"b   us-east  us-east-1a  connected    1.5ms   12%  r-1\n"
	if r.code != 0 || r.stdout != want {
		t.Errorf("got\n%s\nwant\n%s", r, want)
	}
}

// `surge agents --json` gives every field of AgentInfo by its proto name,
// the int64 ones as numbers, sorted as the table is.
func TestAgentsJSONNumbers(t *testing.T) {
	f := &fakeController{agents: []*surgev1.AgentInfo{
		{Id: "b", Region: "us-east", Zone: "us-east-1a", Version: "v1", Address: "127.0.0.1:7001", State: "connected",
			ClockOffsetUs: -1500, CpuPercent: 12.5, Runs: []string{"r-1"}, ConnectedAtUnixMs: 1767225600000},
		{Id: "a", Region: "eu-west", State: "gossip-only"},
	}}
	r := cli(t, nil, "agents", "--json", "--controller", f.start(t))
	var got struct {
		Agents []map[string]any `json:"agents"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || r.code != 0 || len(got.Agents) != 2 {
		t.Fatalf("exit %d, %v: %s", r.code, err, r)
	}
	fields := (&surgev1.AgentInfo{}).ProtoReflect().Descriptor().Fields()
	for i := range got.Agents {
		if len(got.Agents[i]) != fields.Len() {
			t.Errorf("agent %d has %d fields, AgentInfo %d: %v", i, len(got.Agents[i]), fields.Len(), got.Agents[i])
		}
		for j := range fields.Len() {
			fd := fields.Get(j)
			v, ok := got.Agents[i][string(fd.Name())]
			if !ok {
				t.Errorf("agent %d: no %s", i, fd.Name())
			} else if _, num := v.(float64); fd.Kind() == protoreflect.Int64Kind && !num {
				t.Errorf("agent %d: %s is %#v, want a number", i, fd.Name(), v)
			}
		}
	}
	b := got.Agents[1]
	if got.Agents[0]["id"] != "a" || b["id"] != "b" || b["clock_offset_us"] != -1500.0 || b["connected_at_unix_ms"] != 1767225600000.0 ||
		b["cpu_percent"] != 12.5 || b["address"] != "127.0.0.1:7001" || b["version"] != "v1" || fmt.Sprint(b["runs"]) != "[r-1]" {
		t.Errorf("agents %v", got.Agents)
	}
	if a := got.Agents[0]; a["clock_offset_us"] != 0.0 || fmt.Sprint(a["runs"]) != "[]" || a["zone"] != "" {
		t.Errorf("agent a: unset fields %v, want zero values", a)
	}
}

func TestRuns(t *testing.T) {
	f := &fakeController{runs: []*surgev1.RunInfo{
		{RunId: "r-1", PlanName: "smoke", Status: "finished", Verdict: "pass", StartedAtUnixMs: 1767225600000},
		{RunId: "r-3", PlanName: "soak", Status: "pending"},
		{RunId: "r-2", PlanName: "spike", Status: "aborted", Verdict: "fail", StartedAtUnixMs: 1767225700000,
			Tags: map[string]string{"environment": "staging", "commit": "abc"}},
	}}
	addr := f.start(t)
	r := cli(t, nil, "runs", "--controller", addr)
	want := "RUN_ID  PLAN   STATUS    VERDICT  STARTED               TAGS\n" +
		"r-2     spike  aborted   fail     2026-01-01T00:01:40Z  commit=abc,environment=staging\n" +
		"r-1     smoke  finished  pass     2026-01-01T00:00:00Z  -\n" +
		"r-3     soak   pending   -        -                     -\n"
	if r.code != 0 || r.stdout != want {
		t.Errorf("got\n%s\nwant\n%s", r, want)
	}
	r = cli(t, nil, "runs", "--controller", addr, "--tag", "environment=staging")
	if r.code != 0 || strings.Count(r.stdout, "\n") != 2 || !strings.Contains(r.stdout, "r-2") {
		t.Errorf("runs --tag environment=staging lists more than r-2:\n%s", r)
	}
	if r = cli(t, nil, "runs", "--controller", addr, "--tag", "environment"); r.code != exitUsage {
		t.Errorf("--tag without a value: %s", r)
	}
}

func TestStop(t *testing.T) {
	f := &fakeController{}
	r := cli(t, nil, "stop", "r-7", "--controller", f.start(t))
	if r.code != 0 || r.stdout != "run r-7 stopping\n" {
		t.Errorf("stop:\n%s", r)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.stopped) != 1 || f.stopped[0] != "r-7" {
		t.Errorf("stopped = %v", f.stopped)
	}
}
