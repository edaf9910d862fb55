package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/surgeload/surge/plan"
)

// From one log, from-log writes a plan and a baseline that surge compare's
// own reader takes, with one row per request name of the plan and "all".
func TestFromLogBaseline(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var b strings.Builder
	for i := range 300 {
		path := fmt.Sprintf("/api/users/%d", i)
		if i%3 == 0 {
			path = "/api/items"
		}
		fmt.Fprintf(&b, "127.0.0.1 - - [%s] \"GET %s HTTP/1.1\" 200 10 \"-\" \"curl\" 0.%03d\n",
			t0.Add(time.Duration(i)*200*time.Millisecond).Format("02/Jan/2006:15:04:05 -0700"), path, 10+i%50)
	}
	logFile := writeFile(t, "access.log", b.String())
	dir := t.TempDir()
	planFile, csvFile := filepath.Join(dir, "replay.yaml"), filepath.Join(dir, "prod.csv")
	r := cli(t, nil, "plan", "from-log", logFile, "--baseline", csvFile, "-o", planFile)
	if r.code != 0 || !strings.Contains(r.stderr, "surge compare --baseline "+csvFile+" RUN_ID") {
		t.Fatalf("%s", r)
	}
	f, err := os.Open(csvFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := parseBaseline(f)
	if err != nil {
		t.Fatalf("compare's reader refuses the baseline: %v", err)
	}
	src, err := os.ReadFile(planFile)
	if err != nil {
		t.Fatal(err)
	}
	p, err := plan.Parse(planFile, src)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, sc := range p.Scenarios {
		for _, tg := range sc.Targets() {
			names = append(names, tg.Name)
		}
	}
	var endpoints []string
	for _, row := range rows {
		endpoints = append(endpoints, row.GetEndpoint())
		if row.GetP50Ms() < 10 || row.GetP99Ms() > 59 || row.GetP50Ms() > row.GetP95Ms() || row.GetRpm() <= 0 || row.GetErrorRate() != 0 {
			t.Errorf("row %v: figures outside the log's", row)
		}
	}
	names = append(names, "all")
	slices.Sort(names)
	slices.Sort(endpoints)
	if fmt.Sprint(endpoints) != fmt.Sprint(names) {
		t.Errorf("baseline endpoints %q, want the plan's request names and all: %q", endpoints, names)
	}

	noTimes := writeFile(t, "plain.log", strings.ReplaceAll(b.String(), "\"curl\" 0.", "\"curl\" x"))
	r = cli(t, nil, "plan", "from-log", noTimes, "--baseline", filepath.Join(dir, "none.csv"))
	if r.code != exitFailure || !strings.Contains(r.stderr, "$request_time") || r.stdout != "" {
		t.Errorf("a log without request times:\n%s", r)
	}
}
