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
		Errors:            map[string]int64{"http_5xx": fail},
	}
}

// wsSummary is a WebSocket step's (or, without a step, the total's)
// figures.
func wsSummary(scenario, step string, opened, peak, msgs int64) *surgev1.WebSocketSummary {
	return &surgev1.WebSocketSummary{
		Scenario: scenario, Step: step, SessionsOpened: opened, SessionsClosed: opened - 10, SessionsActive: 10,
		SessionsPeakActive: peak, AbnormalCloses: opened / 300, ConnectFailures: 3, Reconnects: 10, MessagesOut: msgs + 10,
		MessagesIn: msgs, BytesOut: msgs * 32, BytesIn: msgs * 32, RepliesMissed: 10,
		ConnectUs:   &surgev1.LatencyStats{P50: 800, P90: 1000, P95: 1200, P99: 2500, P999: 4000, Max: 9000, Min: 300, Mean: 850, Count: opened},
		RoundTripUs: &surgev1.LatencyStats{P50: 400, P90: 700, P95: 900, P99: 1500, P999: 3000, Max: 5000, Min: 100, Mean: 450, Count: msgs},
	}
}

// detailed adds retries, phases and connections to stats.
func detailed(st *surgev1.Stats, conns int64) *surgev1.Stats {
	p50 := st.GetLatencyUs().GetP50()
	st.Retries = st.GetFailures() * 2
	st.PhasesUs = map[string]*surgev1.LatencyStats{
		"connect": {P50: 90, P90: 120, P95: 150, P99: 400, P999: 900, Max: 1200, Min: 40, Mean: 101.5},
		"ttfb":    {P50: p50 - 100, P90: 2*p50 - 100, P95: 3*p50 - 100, P99: 4*p50 - 100, P999: 5*p50 - 100, Max: 10 * p50, Min: p50 / 3, Mean: float64(p50) * 0.9},
	}
	st.ConnsOpened, st.ConnsClosed, st.ConnsOpen, st.ConnsPeakOpen = conns, conns, 0, conns/2
	return st
}

// withChecks sets st's checks passed and failed.
func withChecks(st *surgev1.Stats, passed, failed int64) *surgev1.Stats {
	st.ChecksPassed, st.ChecksFailed = passed, failed
	return st
}

func summaries() map[string]*surgev1.RunSummary {
	return map[string]*surgev1.RunSummary{
		"pass": {
			RunId:           "r-0001",
			Tags:            map[string]string{"environment": "staging", "commit": "abc123"},
			All:             withChecks(detailed(stats(9000, 6, 295.08, 1234), 120), 9986, 14),
			PlanName:        "demo",
			Status:          "finished",
			Verdict:         "pass",
			DurationS:       30.5,
			StartedAtUnixMs: 1767225600123,
			EndedAtUnixMs:   1767225630623,
			Regions: map[string]*surgev1.Stats{
				"us-east":  detailed(stats(4500, 3, 147.5, 1000), 60),
				"eu-west":  detailed(stats(2700, 2, 88.5, 1500), 40),
				"ap-south": detailed(stats(1800, 1, 59.0, 2500), 20),
			},
			RegionAgents: map[string]int64{"us-east": 1, "eu-west": 1, "ap-south": 1},
			Scenarios: map[string]*surgev1.Stats{
				"browse": detailed(stats(6000, 4, 196.7, 1100), 100),
				"burst":  detailed(stats(3000, 2, 98.4, 1600), 20),
			},
			Requests: []*surgev1.RequestStats{
				{Scenario: "browse", Request: "GET /", Stats: detailed(stats(4000, 4, 131.1, 1000), 0),
					Checks: []*surgev1.CheckStats{{Name: "body_contains", Passes: 3990, Fails: 10}, {Name: "status", Passes: 3996, Fails: 4}}},
				{Scenario: "browse", Flow: "buy", Request: "POST /cart", Stats: stats(2000, 0, 65.6, 1300),
					Checks: []*surgev1.CheckStats{{Name: "json_path.$.id", Passes: 2000}}},
				{Scenario: "burst", Request: "GET /burst", Stats: detailed(stats(3000, 2, 98.4, 1600), 0)},
			},
			Websocket: wsSummary("", "", 2000, 1000, 59990),
			WebsocketSteps: []*surgev1.WebSocketSummary{
				wsSummary("chat", "ws", 1500, 800, 45000),
				wsSummary("chat", "feed", 500, 300, 14990),
			},
			Agents: []*surgev1.AgentSummary{
				{Id: "agent-ap-south", Region: "ap-south", Requests: 1800, ClockOffsetUs: -120, Snapshots: 31},
				{Id: "agent-eu-west", Region: "eu-west", Requests: 2700, ClockOffsetUs: 35},
				{Id: "agent-us-east", Region: "us-east", Requests: 4500, ClockOffsetUs: 0},
			},
			Thresholds: []*surgev1.ThresholdResult{
				{Metric: "http_req_duration", Expr: "p(95)<500", Ok: true, Value: 3.702},
				{Metric: "http_req_failed", Expr: "rate<0.01", Ok: true, Value: 0.000666},
				{Metric: "monitor:cpu", Expr: "max<0.8", Ok: true, Value: 0.62},
			},
			Monitors: []*surgev1.MonitorSummary{
				{Name: "cpu", Query: `sum(rate(process_cpu_seconds_total{job="shop"}[1m]))`, Samples: 3, Missing: 1,
					Min: 0.41, Mean: 0.51, Max: 0.62, Last: 0.5, LastError: "no series (if absence means zero, add `or vector(0)`)",
					Values: []*surgev1.MonitorSample{{Interval: 0, Value: 0.41}, {Interval: 2, Value: 0.62}, {Interval: 3, Value: 0.5}}},
				{Name: "db_conns", Query: "max(pg_stat_activity_count)", Missing: 4, LastError: "timeout"},
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
	if got := s.Scenarios["burst"].Errors["http_5xx"]; got != 2 {
		t.Errorf("scenarios.burst.errors.http_5xx = %d", got)
	}
	if len(s.Agents) != 3 || s.Agents[0].ClockOffsetUS != -120 {
		t.Errorf("agents = %+v", s.Agents)
	}
	if len(s.Thresholds) != 3 || s.Thresholds[0].Value == nil || *s.Thresholds[0].Value != 3.702 {
		t.Errorf("thresholds = %+v", s.Thresholds)
	}
	if len(s.Monitors) != 2 || s.Monitors[0].Max != 0.62 || len(s.Monitors[0].Values) != 3 || s.Monitors[0].Values[1].Interval != 2 ||
		s.Monitors[1].Samples != 0 || s.Monitors[1].Values == nil {
		t.Errorf("monitors = %+v", s.Monitors)
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

func TestCSVGolden(t *testing.T) {
	for name, s := range summaries() {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := report.CSV(&buf, s); err != nil {
				t.Fatal(err)
			}
			golden(t, name+".csv", buf.Bytes())
		})
	}
}

// The JSON has the run's phases, retries and connections, one entry per
// request and per WebSocket step.
func TestJSONDetails(t *testing.T) {
	b, err := report.JSON(summaries()["pass"])
	if err != nil {
		t.Fatal(err)
	}
	s, err := report.ParseJSON(b)
	if err != nil {
		t.Fatal(err)
	}
	if s.Retries != 12 || s.PhasesUS["ttfb"].P99 != 4836 || s.Connections.Opened != 120 || s.Connections.PeakOpen != 60 {
		t.Errorf("all: retries %d ttfb %+v conns %+v", s.Retries, s.PhasesUS["ttfb"], s.Connections)
	}
	if c := s.Regions["eu-west"].Connections; c.Opened != 40 {
		t.Errorf("eu-west connections %+v", c)
	}
	if len(s.ByRequest) != 3 || s.ByRequest[1].Flow != "buy" || len(s.ByRequest[1].PhasesUS) != 0 || s.ByRequest[2].Retries != 4 {
		t.Errorf("by_request %+v", s.ByRequest)
	}
	if ws := s.WebSocket; ws == nil || ws.Sessions != 2000 || ws.SessionsPeakActive != 1000 || ws.SessionUS != nil ||
		ws.RoundTripUS.Count != 59990 || len(ws.Steps) != 2 || ws.Steps[1].Step != "feed" || ws.Steps[1].MessagesIn != 14990 {
		t.Errorf("websocket %+v", ws)
	}
	// A summary without any of these still has the keys, empty.
	e, err := report.JSON(summaries()["empty"])
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"by_request": []`, `"websocket": null`, `"phases_us": {}`, `"connections": {`} {
		if !bytes.Contains(e, []byte(key)) {
			t.Errorf("empty summary lacks %s:\n%s", key, e)
		}
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

// Summaries stored before the error names were settled ("5xx", "4xx")
// read under today's names; success classes never count as errors.
func TestOldErrorNames(t *testing.T) {
	s := summaries()["pass"]
	s.All.Errors = map[string]int64{"5xx": 4, "4xx": 1, "timeout": 2, "2xx": 9, "http_5xx": 1}
	got := report.FromProto(s).Errors
	if len(got) != 3 || got["http_5xx"] != 5 || got["http_4xx"] != 1 || got["timeout"] != 2 {
		t.Errorf("errors %v, want http_5xx=5 http_4xx=1 timeout=2", got)
	}
}
