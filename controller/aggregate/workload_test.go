package aggregate

import (
	"testing"
	"time"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
	"github.com/surgeload/surge/hist"
	"github.com/surgeload/surge/plan"
)

func checkSnap(agent string, seq uint64, interval int64, flow string, passed, failed int64) *surgev1.Snapshot {
	set := hist.NewSet()
	sr := set.Get(hist.Key{Scenario: "s", Flow: flow, Request: "r", Status: "2xx"})
	_ = sr.Latency.RecordValue(1000)
	sr.Counters.Requests, sr.Counters.ChecksPassed, sr.Counters.ChecksFailed = 1, passed, failed
	return &surgev1.Snapshot{RunId: "run", AgentId: agent, Seq: seq, Epoch: 1, Interval: interval, Series: set.ToProto(),
		Scenarios: []*surgev1.ScenarioStats{{Scenario: "s", Completed: 3}}}
}

// checks rate and count, with flow filters, on the merged data; the
// summary carries checks and iterations.
func TestChecksThresholds(t *testing.T) {
	specs := func(exprs map[string]string) []plan.ThresholdSpec {
		p := &plan.Plan{Scenarios: map[string]*plan.Scenario{"s": {}}, Thresholds: map[string][]plan.Threshold{}}
		for k, e := range exprs {
			p.Thresholds[k] = []plan.Threshold{{Expr: e}}
		}
		out, err := p.ThresholdSpecs()
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	r := New(Config{RunID: "run", Start: time.Unix(0, 0), Interval: time.Second, MaxInterval: 10, Epoch: 1,
		Agents: map[string]string{"a": "us", "b": "eu"},
		Thresholds: specs(map[string]string{
			"checks":              "rate>0.9",
			"checks{flow:buy}":    "rate>=0.5",
			"checks_failed":       "count<5",
			"iterations":          "count==6",
			"checks{region:eu}":   "count==10",
			"dropped_iterations":  "count==0",
			"checks{flow:browse}": "rate==1",
		})})
	if _, err := r.Add(checkSnap("a", 1, 0, "browse", 10, 0)); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Add(checkSnap("b", 1, 0, "buy", 5, 5)); err != nil {
		t.Fatal(err)
	}
	got := map[string]ThresholdResult{}
	for _, res := range r.Evaluate(time.Second) {
		got[res.Spec.Key] = res
	}
	want := map[string]struct {
		v  float64
		ok bool
	}{
		"checks": {0.75, false}, "checks{flow:buy}": {0.5, true}, "checks_failed": {5, false},
		"iterations": {6, true}, "checks{region:eu}": {10, true}, "dropped_iterations": {0, true}, "checks{flow:browse}": {1, true},
	}
	for k, w := range want {
		if g := got[k]; g.Value != w.v || g.OK != w.ok {
			t.Errorf("%s: value %v ok %v, want %v %v", k, g.Value, g.OK, w.v, w.ok)
		}
	}
	sum := r.Summary(time.Second)
	if a := sum.GetAll(); a.GetChecksPassed() != 15 || a.GetChecksFailed() != 5 || a.GetIterations() != 6 {
		t.Errorf("summary: %v", a)
	}
}

// An interval with CPU > 90%, send lateness p99 over 10ms or dropped
// iterations is flagged in progress and summary, with a note.
func TestSaturationFlags(t *testing.T) {
	r := New(Config{RunID: "run", Start: time.Unix(0, 0), Interval: time.Second, MaxInterval: 10, Epoch: 1,
		Agents: map[string]string{"a": "us", "b": "eu"}})
	late := hist.New()
	for range 100 {
		_ = late.RecordValue(50_000) // 50 ms late
	}
	ok := checkSnap("a", 1, 0, "", 0, 0)
	ok.Agent = &surgev1.AgentStats{CpuPercent: 40}
	hot := checkSnap("b", 1, 0, "", 0, 0)
	hot.Agent = &surgev1.AgentStats{CpuPercent: 97}
	hot.Scenarios[0].Lateness = hist.ToProto(late)
	hot.Scenarios[0].Dropped = 3
	for _, s := range []*surgev1.Snapshot{ok, hot} {
		if _, err := r.Add(s); err != nil {
			t.Fatal(err)
		}
	}
	clean := checkSnap("a", 2, 1, "", 0, 0)
	if _, err := r.Add(clean); err != nil {
		t.Fatal(err)
	}
	p := r.Emit(0)
	if len(p.GetSaturation()) != 1 || p.GetSaturation()[0].GetAgentId() != "b" || len(p.GetSaturation()[0].GetReasons()) != 3 {
		t.Fatalf("interval 0 saturation = %v", p.GetSaturation())
	}
	t.Logf("measured: flag %v", p.GetSaturation()[0].GetReasons())
	if p := r.Emit(1); len(p.GetSaturation()) != 0 {
		t.Errorf("interval 1 flagged: %v", p.GetSaturation())
	}
	if sum := r.Summary(2 * time.Second); len(sum.GetSaturation()) != 1 || r.SaturationNote() == "" {
		t.Errorf("summary saturation %v, note %q", sum.GetSaturation(), r.SaturationNote())
	}
}
