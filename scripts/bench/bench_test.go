package main

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func readFixture(t *testing.T, name, mode string) fleetOut {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	f, err := parseFleet(b, mode)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// The fixtures are scripts/fleet -json outputs of real runs (-wire
// -snapshots 20; -agents 5 -series 2 -duration 3s; -soak 5s -sample 1s
// -rate 100).
func TestParseFleetOutputs(t *testing.T) {
	w := readFixture(t, "fleet-wire.json", "wire")
	if len(w.Wire) != 5 {
		t.Fatalf("wire rows: %d, want 5", len(w.Wire))
	}
	g, ok := w.WireRow(agentsCompression)
	if !ok || !g.Agents || g.Series != 10 || g.Snapshots != 20 || g.BytesPerSnapshot < 10_000 || g.BytesPerSnapshot > 20_000 || g.CPUPerSnapshotUS <= 0 {
		t.Errorf("agents' compression row: %+v (found %v)", g, ok)
	}
	if raw, ok := w.WireRow(""); !ok || raw.BytesPerSnapshot <= g.BytesPerSnapshot {
		t.Errorf("uncompressed row: %+v (found %v), not larger than gzip's", raw, ok)
	}

	f := readFixture(t, "fleet-fleet.json", "fleet").Fleet
	if f.Agents != 5 || f.Series != 2 || f.Expected != 3 || f.Emitted != 3 || len(f.LagsMS) != 3 || !f.KeptUp() {
		t.Errorf("fleet: %+v", f)
	}
	if f.LagP50MS <= 0 || f.LagP99MS < f.LagP50MS || f.ControllerCores <= 0 {
		t.Errorf("fleet figures: lag p50 %v p99 %v, cores %v", f.LagP50MS, f.LagP99MS, f.ControllerCores)
	}

	s := readFixture(t, "fleet-soak.json", "soak")
	if s.Soak.DurationS != 5 || s.Soak.Rate != 100 || s.Soak.Samples != 6 || len(s.Soak.Growth) != 0 || !strings.Contains(s.Markdown, "## Memory") {
		t.Errorf("soak: %+v", s.Soak)
	}
}

func TestParseFleetRejects(t *testing.T) {
	for name, c := range map[string]struct{ json, mode, want string }{
		"other mode":  {`{"mode":"wire","wire":[{"compression":""}]}`, "fleet", `mode "wire"`},
		"no figures":  {`{"mode":"fleet"}`, "fleet", "no fleet figures"},
		"no rows":     {`{"mode":"wire"}`, "wire", "no rows"},
		"not json":    {`## Simulated fleet`, "fleet", "fleet fleet output"},
		"no soak":     {`{"mode":"soak","markdown":"x"}`, "soak", "no soak figures"},
		"wrong types": {`{"mode":"fleet","fleet":{"agents":"many"}}`, "fleet", "agents"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := parseFleet([]byte(c.json), c.mode)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err %v, want one containing %q", err, c.want)
			}
		})
	}
}

// goalRow returns the goals table's row of goal n.
func goalRow(t *testing.T, r *report, n int) string {
	t.Helper()
	for _, l := range strings.Split(r.goalsTable(), "\n") {
		if strings.HasPrefix(l, "| "+strconv.Itoa(n)+" |") {
			return l
		}
	}
	t.Fatalf("no row %d in\n%s", n, r.goalsTable())
	return ""
}

func mustContain(t *testing.T, s string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(s, w) {
			t.Errorf("missing %q in\n%s", w, s)
		}
	}
}

func TestGoalsFromFleet(t *testing.T) {
	wire := readFixture(t, "fleet-wire.json", "wire")
	fl := readFixture(t, "fleet-fleet.json", "fleet")
	r := &report{
		Micro: map[string]micro{
			"BenchmarkRecord":                 {NsOp: 3},
			"BenchmarkSnapshotEncode":         {NsOp: 1_000_000},
			"BenchmarkDecodeValidateAndMerge": {NsOp: 40_000, Metrics: map[string]float64{"cpu-ns/op": 45_000}},
			"BenchmarkDecodeValidateMerge":    {NsOp: 90_000, Metrics: map[string]float64{"cpu-ns/op": 100_000}},
		},
		Wire: &wire, Fleet: &fl,
	}
	g, _ := wire.WireRow(agentsCompression)
	row4 := goalRow(t, r, 4)
	// Without a profiled pacing run the recording figure is not measured:
	// the micro-benchmarks alone give no verdict.
	mustContain(t, row4, strconv.FormatFloat(g.BytesPerSnapshot/1000, 'f', 1, 64)+" KB/s per agent",
		"recording: not measured", "— (recording)", "**pass** (stream)")

	// A fleet smaller than the goal's gets no fleet verdict.
	row5 := goalRow(t, r, 5)
	mustContain(t, row5, "22222 merges per CPU-second", "10000/s per CPU-second with validate and merge as separate passes",
		"**pass** (merges/s)", "fleet of 5 simulated agents × 2 series", "— (fleet smaller than 500 × 20)")

	big := *fl.Fleet
	big.Agents, big.Series, big.ControllerCores, big.LagP99MS = 500, 20, 0.6, 320
	r.Fleet = &fleetOut{Mode: "fleet", Fleet: &big}
	mustContain(t, goalRow(t, r, 5), "controller 0.60 cores", "p99 320", "**pass** (under one core)", "**pass** (emission lag)")
	big.LagP99MS, big.SnapshotsAcked = 837, big.SnapshotsSent-1
	mustContain(t, goalRow(t, r, 5), "**miss** (under one core)", "**miss** (emission lag)")

	// Without fleet figures the rows say so, and claim nothing.
	r.Wire, r.Fleet = nil, nil
	mustContain(t, goalRow(t, r, 4), "stream: not measured", "— (stream)")
	mustContain(t, goalRow(t, r, 5), "fleet: not measured", "— (fleet)")
}

// tenMinuteSoak is a soak record as a 10-minute soak would write it (the
// figures are made up for the test).
func tenMinuteSoak(ctrlTrend float64) *soakRecord {
	return &soakRecord{When: time.Date(2026, 11, 26, 17, 5, 0, 0, time.UTC), Commit: "abc1234",
		Run: fleetOut{Mode: "soak", Markdown: "## Memory over a 10m0s constant-rate run (goal 7)\n\nrows\n", Soak: &soakRun{
			DurationS: 600, Rate: 1000, SampleS: 10, Samples: 60, Status: "finished", Requests: 1_800_000,
			Growth: []growth{
				{Name: "controller", BaseAtS: 60, BaseMiB: 61, TrendPct: ctrlTrend, LastPct: 9},
				{Name: "controller anonymous", BaseAtS: 60, BaseMiB: 42, TrendPct: 4.5},
				{Name: "agent", BaseAtS: 60, BaseMiB: 35, TrendPct: -1.3, LastPct: -2},
			}}}}
}

func TestGoal7(t *testing.T) {
	r := &report{}
	mustContain(t, goalRow(t, r, 7), "not measured: no soak recorded", "| — |")

	// This run's soak.
	r.Soak, r.SoakFresh = tenMinuteSoak(8.5), true
	row := goalRow(t, r, 7)
	mustContain(t, row, "this run (soak of 2026-11-26, commit abc1234)", "controller trend +8.5% (+9.0% at the end, from 61.0 MiB at 60 s; its anonymous part's trend +4.5%)", "agent trend -1.3%", "| **miss** |")
	r.Soak = tenMinuteSoak(2)
	mustContain(t, goalRow(t, r, 7), "| **pass** |")

	// A recorded soak is labelled as one, never as this run's figure.
	r.SoakFresh = false
	row = goalRow(t, r, 7)
	mustContain(t, row, "from the soak of 2026-11-26 17:05 UTC, commit abc1234", "| stale (another run's) |")
	if strings.Contains(row, "pass") {
		t.Errorf("a recorded soak judged as this run's: %s", row)
	}
	if strings.Contains(row, "this run") {
		t.Errorf("a recorded soak reported as this run's: %s", row)
	}
	var b strings.Builder
	r.controllerSection(func(f string, a ...any) { b.WriteString(strings.TrimSpace(fmt.Sprintf(f, a...)) + "\n") })
	mustContain(t, b.String(), "not from this run: it is from the soak of 2026-11-26 17:05 UTC, commit abc1234", "### Memory over a 10m0s")

	// This run's soak, shorter than the goal's ten minutes: figures, no
	// verdict.
	short := tenMinuteSoak(1)
	short.Run.Soak.DurationS = 120
	r.Soak, r.SoakFresh = short, true
	mustContain(t, goalRow(t, r, 7), "shorter than the goal's 10 minutes | — |")
	// Shorter than a minute: no growth figure.
	r.Soak = &soakRecord{When: time.Now(), Commit: "x", Run: readFixture(t, "fleet-soak.json", "soak")}
	mustContain(t, goalRow(t, r, 7), "5s run at 100/s: shorter than a minute plus a sample, no growth figure | — |")
}

func TestSoakRecordRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bench-soak.json")
	if r, err := readSoakRecord(path); r != nil || err != nil {
		t.Fatalf("missing record: %v, %v; want nil, nil", r, err)
	}
	want := tenMinuteSoak(3)
	if err := writeSoakRecord(path, want); err != nil {
		t.Fatal(err)
	}
	got, err := readSoakRecord(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("read %+v, wrote %+v", got, want)
	}
	if err := os.WriteFile(path, []byte(`{"when":"2026-11-26T00:00:00Z","run":{"mode":"fleet"}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := readSoakRecord(path); err == nil || !strings.Contains(err.Error(), "no soak figures") {
		t.Errorf("record without a soak: %v", err)
	}
}

// The hand-written part of docs/benchmarks.md survives regeneration
// byte for byte; a file without one gets the marker.
func TestKeepNotes(t *testing.T) {
	notes := notesMarker + "\n\n> hand-written: profiles, what would close each miss.\n\n## Section\n\ntext | with table |\n"
	old := "# Benchmarks\n\nold generated part\n\n" + notes
	got := keepNotes("# Benchmarks\n\nnew generated part\n", old)
	if !strings.HasSuffix(got, notes) || !strings.HasPrefix(got, "# Benchmarks\n\nnew generated part\n") || strings.Contains(got, "old generated") {
		t.Errorf("keepNotes:\n%s", got)
	}
	if got := keepNotes("# new\n", ""); got != "# new\n\n"+notesMarker+"\n" {
		t.Errorf("keepNotes without old notes: %q", got)
	}
	// The real file's notes, as they are now.
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "benchmarks.md"))
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(string(b), notesMarker)
	if i < 0 {
		t.Fatal("docs/benchmarks.md has no notes marker")
	}
	r := &report{Smoke: false}
	if got := keepNotes(r.markdown(), string(b)); !strings.HasSuffix(got, string(b[i:])) {
		t.Error("regenerating docs/benchmarks.md loses its hand-written part")
	}
}

// Over four rounds each of four tools runs once in each position and
// directly after each other tool once; round five starts over.
func TestRoundOrder(t *testing.T) {
	const n = 4
	pos := map[[2]int]int{}  // tool, position
	next := map[[2]int]int{} // before, after
	for round := range n {
		o := roundOrder(round, n)
		if s := slices.Sorted(slices.Values(o)); !slices.Equal(s, []int{0, 1, 2, 3}) {
			t.Fatalf("round %d: %v is not an order of 4 tools", round, o)
		}
		for k, tool := range o {
			pos[[2]int{tool, k}]++
			if k > 0 {
				next[[2]int{o[k-1], tool}]++
			}
		}
	}
	if len(pos) != n*n || len(next) != n*(n-1) {
		t.Errorf("positions %v, neighbours %v: want each once", pos, next)
	}
	if !slices.Equal(roundOrder(0, n), []int{0, 1, 3, 2}) || !slices.Equal(roundOrder(4, n), roundOrder(0, n)) {
		t.Errorf("round 1 %v, round 5 %v", roundOrder(0, n), roundOrder(4, n))
	}
	if got := roundOrder(0, 3); !slices.Equal(got, []int{0, 1, 2}) {
		t.Errorf("3 tools: %v", got)
	}
}

// Goal 1's verdict is the median of the per-round ratios, every round
// listed.
func TestRatioMedian(t *testing.T) {
	round := func(surge, vegeta float64) []throughput {
		return []throughput{{Tool: "vegeta", Requests: int64(vegeta), CPU: 1}, {Tool: "surge", Requests: int64(surge), CPU: 1}}
	}
	r := &report{Rounds: [][]throughput{round(278, 100), round(185, 100), round(333, 100), round(310, 100), round(290, 100)}}
	m, rs := r.ratio("vegeta")
	if m != 2.90 || !slices.Equal(rs, []float64{2.78, 1.85, 3.33, 3.10, 2.90}) {
		t.Errorf("median %v of %v", m, rs)
	}
}
