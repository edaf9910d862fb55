package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"path/filepath"
	"strings"
	"testing"

	"github.com/surgeload/surge/cmd/surge/target"
	"github.com/surgeload/surge/controller/report"
	"github.com/surgeload/surge/controller/surgetest"
)

// A run's tags are the plan's with --tag set over them: in the summary
// (JSON and text) and in `surge runs`, which --tag filters; latest[:TAGS]
// names a run where an id is expected; a bad --tag is a usage error before
// anything is submitted.
func TestRunTags(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	waitGoroutines(t)
	c := surgetest.Start(t, surgetest.Options{
		Agents: []surgetest.AgentSpec{{ID: "a1", Region: "us-east"}},
		Target: target.Config{Latency: "1ms"},
	})
	c.WaitAgents(t, 1)
	addr := c.Controller.Addr()
	file := writeFile(t, "tags.yaml", fmt.Sprintf(`name: tags
tags: {team: checkout, environment: prod}
scenarios:
  s: {executor: per-vu-iterations, vus: 1, iterations: 3, requests: [{url: '%s/'}]}
`, c.TargetURL()))

	run := func(tags ...string) *report.Summary {
		t.Helper()
		out := filepath.Join(t.TempDir(), "summary.json")
		args := []string{"run", file, "--controller", addr, "-q", "--json", out}
		for _, tg := range tags {
			args = append(args, "--tag", tg)
		}
		r := cli(t, nil, args...)
		if r.code != 0 {
			t.Fatalf("%s", r)
		}
		if !strings.Contains(r.stdout, "environment=") {
			t.Errorf("text summary without its tags:\n%s", r.stdout)
		}
		return readSummaryFile(t, out)
	}
	staging := run("environment=staging", "commit=abc123")
	want := map[string]string{"team": "checkout", "environment": "staging", "commit": "abc123"}
	if !maps.Equal(staging.Tags, want) {
		t.Errorf("summary tags %v, want %v (the plan's, --tag over them)", staging.Tags, want)
	}
	prod := run()
	if want := map[string]string{"team": "checkout", "environment": "prod"}; !maps.Equal(prod.Tags, want) {
		t.Errorf("summary tags %v, want the plan's %v", prod.Tags, want)
	}

	r := cli(t, nil, "runs", "--json", "--controller", addr, "--tag", "environment=staging", "--tag", "team=checkout")
	var list struct {
		Runs []runJSON `json:"runs"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || r.code != 0 {
		t.Fatalf("runs --json: %v: %s", err, r)
	}
	if len(list.Runs) != 1 || list.Runs[0].RunID != staging.RunID || !maps.Equal(list.Runs[0].Tags, want) {
		t.Errorf("runs --tag environment=staging: %+v, want only %s with %v", list.Runs, staging.RunID, want)
	}
	r = cli(t, nil, "runs", "--controller", addr)
	if !strings.Contains(r.stdout, "TAGS") || !strings.Contains(r.stdout, "environment=prod,team=checkout") {
		t.Errorf("runs table without its tags:\n%s", r)
	}

	// Runs named by their tags where an id is expected.
	for ref, want := range map[string]string{"latest": prod.RunID, "latest:environment=staging": staging.RunID,
		"latest:team=checkout,environment=prod": prod.RunID, staging.RunID: staging.RunID} {
		r = cli(t, nil, "report", ref, "--json", "--controller", addr)
		if s, err := report.ParseJSON([]byte(r.stdout)); r.code != 0 || err != nil || s.RunID != want {
			t.Errorf("report %s: want run %s: %v %s", ref, want, err, r)
		}
	}
	r = cli(t, nil, "compare", "latest:environment=prod", "latest:environment=staging", "--controller", addr)
	if !strings.Contains(r.stdout, "A "+prod.RunID+"  vs  B "+staging.RunID) {
		t.Errorf("compare by tags does not compare %s with %s:\n%s", prod.RunID, staging.RunID, r)
	}
	r = cli(t, nil, "compare", "latest", "latest:environment=prod", "--controller", addr)
	if r.code != exitUsage || !strings.Contains(r.stderr, "are the same run, "+prod.RunID) {
		t.Errorf("compare of a run with itself: %s", r)
	}
	r = cli(t, nil, "runs", "--tag", "environment=nowhere", "--controller", addr)
	if r.code != 0 || r.stdout != "no run is tagged environment=nowhere (surge runs lists every run)\n" {
		t.Errorf("runs --tag matching nothing: %s", r)
	}
	r = cli(t, nil, "report", "latest:environment=nowhere", "--controller", addr)
	if r.code == 0 || !strings.Contains(r.stderr, `no run is tagged environment=nowhere`) {
		t.Errorf("report of a tag no run has: %s", r)
	}

	r = cli(t, nil, "run", file, "--controller", addr, "--tag", "run=x")
	if r.code != exitUsage || !strings.Contains(r.stderr, `--tag run=x: tag key "run" is surge's own`) {
		t.Errorf("reserved --tag: %s", r)
	}
	t.Logf("measured: run %s tags %v; run %s tags %v", staging.RunID, staging.Tags, prod.RunID, prod.Tags)
}
