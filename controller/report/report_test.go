package report_test

import (
	"bytes"
	"flag"
	"math"
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"

	"github.com/surgeload/surge/controller/report"
	surgev1 "github.com/surgeload/surge/gen/surge/v1"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func stats(req, fail int64, rps float64, p50 int64) *surgev1.Stats {
	return &surgev1.Stats{
		Requests: req,
		Failures: fail,
		Rps:      rps,
		LatencyUs: &surgev1.LatencyStats{
			P50: p50, P90: p50 * 2, P95: p50 * 3, P99: p50 * 4, P999: p50 * 5,
			Max: p50 * 10, Min: p50 / 2, Mean: float64(p50) * 1.1,
		},
		DroppedIterations: fail / 2,
		Deficit:           fail / 3,
		Errors:            map[string]int64{"5xx": fail},
	}
}

func summaries() map[string]*surgev1.RunSummary {
	return map[string]*surgev1.RunSummary{
		"pass": {
			RunId:           "r-0001",
			PlanName:        "demo",
			Status:          "finished",
			Verdict:         "pass",
			DurationS:       30.5,
			StartedAtUnixMs: 1767225600123,
			EndedAtUnixMs:   1767225630623,
			All:             stats(9000, 6, 295.08, 1234),
			Regions: map[string]*surgev1.Stats{
				"us-east":  stats(4500, 3, 147.5, 1000),
				"eu-west":  stats(2700, 2, 88.5, 1500),
				"ap-south": stats(1800, 1, 59.0, 2500),
			},
			RegionAgents: map[string]int64{"us-east": 1, "eu-west": 1, "ap-south": 1},
			Scenarios: map[string]*surgev1.Stats{
				"browse": stats(6000, 4, 196.7, 1100),
				"burst":  stats(3000, 2, 98.4, 1600),
			},
			Agents: []*surgev1.AgentSummary{
				{Id: "agent-ap-south", Region: "ap-south", Requests: 1800, ClockOffsetUs: -120, Snapshots: 31},
				{Id: "agent-eu-west", Region: "eu-west", Requests: 2700, ClockOffsetUs: 35},
				{Id: "agent-us-east", Region: "us-east", Requests: 4500, ClockOffsetUs: 0},
			},
			Thresholds: []*surgev1.ThresholdResult{
				{Metric: "http_req_duration", Expr: "p(95)<500", Ok: true, Value: 3.702},
				{Metric: "http_req_failed", Expr: "rate<0.01", Ok: true, Value: 0.000666},
			},
			StartSpreadUs: 1830,
			Notes:         []string{"agent-ap-south: CPU above 90% in 2 intervals"},
		},
		"fail": {
			RunId:           "r-0002",
			PlanName:        "checkout",
			Status:          "aborted",
			Verdict:         "fail",
			DurationS:       12,
			StartedAtUnixMs: 1767225600000,
			All:             stats(1200, 300, 100, 250000),
			Regions:         map[string]*surgev1.Stats{"eu-west": stats(1200, 300, 100, 250000)},
			RegionAgents:    map[string]int64{"eu-west": 2, "us-east": 1},
			Thresholds: []*surgev1.ThresholdResult{
				{Metric: "http_req_duration{region:eu-west}", Expr: "p(99)<300", Ok: false, Value: 1000, AbortOnFail: true},
				{Metric: "checks", Expr: "rate>0.9", Ok: false, Value: math.NaN()},
			},
			Error: "threshold http_req_duration{region:eu-west} p(99)<300 failed; run aborted",
		},
		"empty": {RunId: "r-0003", Status: "failed", Error: "no agents in region ap-south"},
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from golden file (go test -update rewrites it)\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

func TestJSONGolden(t *testing.T) {
	for name, s := range summaries() {
		t.Run(name, func(t *testing.T) {
			b, err := report.JSON(s)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, name+".json", b)

			back, err := report.ParseJSON(b)
			if err != nil {
				t.Fatalf("ParseJSON: %v", err)
			}
			if back.RunID != s.RunId || back.Requests != s.GetAll().GetRequests() || back.Verdict != s.Verdict {
				t.Errorf("round trip: got %+v", back)
			}
		})
	}
}

func TestJSONFields(t *testing.T) {
	b, err := report.JSON(summaries()["pass"])
	if err != nil {
		t.Fatal(err)
	}
	s, err := report.ParseJSON(b)
	if err != nil {
		t.Fatal(err)
	}
	if s.StartedAt != "2026-01-01T00:00:00.123Z" {
		t.Errorf("started_at = %q", s.StartedAt)
	}
	if got := s.Regions["eu-west"]; got.Agents != 1 || got.Requests != 2700 || got.LatencyUS.P50 != 1500 {
		t.Errorf("regions[eu-west] = %+v", got)
	}
	if got := s.Scenarios["burst"].Errors["5xx"]; got != 2 {
		t.Errorf("scenarios.burst.errors.5xx = %d", got)
	}
	if len(s.Agents) != 3 || s.Agents[0].ClockOffsetUS != -120 {
		t.Errorf("agents = %+v", s.Agents)
	}
	if len(s.Thresholds) != 2 || s.Thresholds[0].Value == nil || *s.Thresholds[0].Value != 3.702 {
		t.Errorf("thresholds = %+v", s.Thresholds)
	}

	// A threshold without data encodes as null, not as an encoding error.
	b, err = report.JSON(summaries()["fail"])
	if err != nil {
		t.Fatal(err)
	}
	f, err := report.ParseJSON(b)
	if err != nil {
		t.Fatal(err)
	}
	if f.Thresholds[1].Value != nil {
		t.Errorf("NaN threshold value = %v, want null", *f.Thresholds[1].Value)
	}
	if r := f.Regions["us-east"]; r.Agents != 1 || r.Errors == nil {
		t.Errorf("region with agents but no stats = %+v", r)
	}
}

func TestParseJSONRejectsUnknownFields(t *testing.T) {
	if _, err := report.ParseJSON([]byte(`{"run_id":"x","bogus":1}`)); err == nil {
		t.Fatal("want an error for an unknown field")
	}
}

func TestTextGolden(t *testing.T) {
	for name, s := range summaries() {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := report.Text(&buf, s); err != nil {
				t.Fatal(err)
			}
			golden(t, name+".txt", buf.Bytes())
		})
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, os.ErrClosed }

func TestTextWriteError(t *testing.T) {
	if err := report.Text(failWriter{}, summaries()["pass"]); err == nil {
		t.Fatal("want the writer's error")
	}
}
