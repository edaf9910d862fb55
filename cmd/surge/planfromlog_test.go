package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"context"
	"errors"
	"io"
	"math"

	"github.com/surgeload/surge/cmd/surge/target"
	"github.com/surgeload/surge/controller/baseline"
	"github.com/surgeload/surge/controller/surgetest"
	surgev1 "github.com/surgeload/surge/gen/surge/v1"
	"github.com/surgeload/surge/plan"
	"github.com/surgeload/surge/plan/fromlog"
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
	rows, err := baseline.ReadCSV(f)
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

// testFromLogRun derives a time-compressed plan from a generated log (each
// minute runs in a second) and runs it: the target receives each endpoint's
// count, scaled, within 5%.
func testFromLogRun(t *testing.T, c *surgetest.Cluster, addr string) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	// minute counts with a spike; endpoint mix 50/30/20
	counts := []int{400, 400, 1200, 400}
	mix := []struct {
		method, path, tmpl string
		share              float64
	}{{"GET", "/api/users/%d", "/api/users/{id}", 0.5}, {"GET", "/api/items", "/api/items", 0.3}, {"POST", "/api/orders/%d", "/api/orders/{id}", 0.2}}
	var b strings.Builder
	want := map[string]float64{}
	for m, n := range counts {
		for i, e := range mix {
			k := int(math.Round(float64(n) * e.share))
			for j := range k {
				ts := t0.Add(time.Duration(m)*time.Minute + time.Duration(j)*time.Minute/time.Duration(k))
				path := e.path
				if strings.Contains(path, "%d") {
					path = fmt.Sprintf(path, 1000+i*7+j)
				}
				fmt.Fprintf(&b, "127.0.0.1 - - [%s] \"%s %s HTTP/1.1\" 200 10\n", ts.Format("02/Jan/2006:15:04:05 -0700"), e.method, path)
			}
			want[e.tmpl] += float64(k)
		}
	}
	b.WriteString("garbage line\n")
	logFile := writeFile(t, "access.log", b.String())
	out := filepath.Join(t.TempDir(), "derived.yaml")
	// Each minute runs in 3 s, on one agent (region us-east): each
	// scenario's arrivals round to whole requests at window boundaries (±1
	// per scenario and agent), and requests a busy generator sends a few tens
	// of ms late cross a boundary; at 200+ requests per window both stay
	// within a few percent.
	const scale, speedup = 0.5, 20
	// A target without added latency, so each request lands in the
	// interval of its arrival.
	tgt := startTarget(t, target.Config{})
	r := cli(t, nil, "plan", "from-log", logFile, "--window", "1m", "--scale", fmt.Sprint(scale), "--speedup", fmt.Sprint(speedup), "--regions", "us-east=1",
		"--target", "http://"+tgt.Addr(), "-o", out)
	if r.code != 0 {
		t.Fatalf("from-log: exit %d\n%s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, fmt.Sprintf("access.log:%d: malformed, skipped", 1+int(float64(sum(counts))))) ||
		!strings.Contains(r.stderr, "1 malformed lines skipped") || !strings.Contains(r.stderr, "peak-to-mean") {
		t.Errorf("profile/malformed report:\n%s", r.stderr)
	}
	if v := cli(t, nil, "validate", out); v.code != 0 {
		t.Fatalf("derived plan does not validate: %s", v.stderr)
	}
	src, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	s := runOK(t, c, "derived.yaml", src)
	st := tgt.Stats()
	var total float64
	for _, e := range mix {
		var got int64
		for path, n := range st.ByPath {
			if fromlog.Template(path) == e.tmpl {
				got += n
			}
		}
		w := want[e.tmpl] * scale
		total += float64(got)
		if math.Abs(float64(got)-w)/w > 0.05 {
			t.Errorf("%s: target got %d, log × scale %.1f", e.tmpl, got, w)
		}
	}
	wantTotal := float64(sum(counts)) * scale
	if math.Abs(total-wantTotal)/wantTotal > 0.05 {
		t.Errorf("total %v, want %.1f", total, wantTotal)
	}
	// Each compressed minute is 3 one-second intervals of the run: their
	// requests (from the stored interval histograms) reproduce the minute's
	// count.
	perWindow := make([]int64, len(counts))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stream, err := c.Runs.Histograms(ctx, &surgev1.HistogramsRequest{RunId: s.GetRunId()})
	if err != nil {
		t.Fatal(err)
	}
	aligned := true
	for {
		f, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if f.GetInterval() < 0 {
			aligned = false // no interval data stored
			break
		}
		if i := f.GetInterval() * int64(speedup) / 60; i < int64(len(perWindow)) {
			perWindow[i] += f.GetCount()
		}
	}
	var worst float64
	if aligned {
		for i, n := range counts {
			w := float64(n) * scale
			rel := math.Abs(float64(perWindow[i])-w) / w
			worst = max(worst, rel)
			if rel > 0.05 {
				t.Errorf("window %d: run sent %d, log %d × %v = %.0f", i, perWindow[i], n, scale, w)
			}
		}
	} else {
		t.Log("the store has no interval data: per-window rates not checked, totals only")
	}
	t.Logf("measured: run %s sent %d requests (dropped %d), log × scale %.0f; per window %v, worst window error %.1f%%",
		s.GetRunId(), s.GetAll().GetRequests(), s.GetAll().GetDroppedIterations(), wantTotal, perWindow, worst*100)
}
