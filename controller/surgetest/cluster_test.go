package surgetest

import (
	"fmt"
	"math"
	"sync"
	"testing"

	"github.com/surgeload/surge/agent"
	"github.com/surgeload/surge/cluster/clustertest"
	"github.com/surgeload/surge/cmd/surge/target"
	"github.com/surgeload/surge/hist"
)

func TestMain(m *testing.M) { clustertest.VerifyTestMain(m) }

// rawRecorder keeps every latency the agents measured, to check the
// controller's merge against one histogram of all raw values.
type rawRecorder struct {
	mu  sync.Mutex
	all []int64
}

func (r *rawRecorder) observe(_ string, _ string, _ string, latencyUS int64) {
	r.mu.Lock()
	r.all = append(r.all, latencyUS)
	r.mu.Unlock()
}

// Three agents in two regions run a constant-arrival-rate plan: the target
// counts exactly the summary's requests, regions split by weight, and the
// whole-run p99 is the p99 of all raw values (an exact merge).
func TestClusterExactMerge(t *testing.T) {
	raw := &rawRecorder{}
	hook := func(c *agent.Config) { c.OnSample = raw.observe }
	c := Start(t, Options{
		Agents: []AgentSpec{
			{ID: "a1", Region: "us-east", Configure: hook},
			{ID: "a2", Region: "us-east", Configure: hook},
			{ID: "a3", Region: "eu-west", Configure: hook},
		},
		Target: target.Config{Latency: "uniform(1ms,5ms)"},
	})

	plan := fmt.Sprintf(`name: exact
regions:
  us-east: {weight: 0.75}
  eu-west: {weight: 0.25}
scenarios:
  steady:
    executor: constant-arrival-rate
    rate: 200
    duration: 5s
    pre_allocated_vus: 50
    max_vus: 100
    requests:
      - name: hello
        url: %s/hello
thresholds:
  http_req_duration: ["p(99)<2000"]
`, c.TargetURL())
	s, progress := c.Run(t, "exact.yaml", []byte(plan))

	got := c.Target.Stats().Requests
	dropped := s.GetAll().GetDroppedIterations()
	t.Logf("measured: summary %d requests (+%d dropped iterations), target %d, us-east %d, eu-west %d, p99 %dµs, spread %dµs, %d progress updates",
		s.GetAll().GetRequests(), dropped, got, s.GetRegions()["us-east"].GetRequests(), s.GetRegions()["eu-west"].GetRequests(),
		s.GetAll().GetLatencyUs().GetP99(), s.GetStartSpreadUs(), len(progress))
	// Every planned arrival is either sent or, with no VU free, counted as a
	// dropped iteration (k6 semantics); nothing is lost silently.
	if s.GetAll().GetRequests()+dropped != 1000 {
		t.Errorf("summary requests %d + dropped %d, plan says 1000", s.GetAll().GetRequests(), dropped)
	}
	if s.GetAll().GetRequests() != got {
		t.Errorf("summary requests %d, target counted %d", s.GetAll().GetRequests(), got)
	}
	if s.GetStatus() != "finished" || s.GetVerdict() != "pass" {
		t.Errorf("status %q verdict %q", s.GetStatus(), s.GetVerdict())
	}
	east := float64(s.GetRegions()["us-east"].GetRequests()) / float64(s.GetAll().GetRequests())
	if math.Abs(east-0.75) > 0.01 {
		t.Errorf("us-east share %.4f, want 0.75±0.01", east)
	}
	if n := s.GetRegionAgents()["us-east"]; n != 2 {
		t.Errorf("us-east agents %d", n)
	}
	if len(progress) == 0 {
		t.Error("no live progress")
	}

	raw.mu.Lock()
	all := hist.New()
	for _, v := range raw.all {
		if err := all.RecordValue(hist.Clamp(v)); err != nil {
			t.Fatal(err)
		}
	}
	raw.mu.Unlock()
	if all.TotalCount() != s.GetAll().GetRequests() {
		t.Fatalf("agents observed %d samples, summary has %d requests", all.TotalCount(), s.GetAll().GetRequests())
	}
	want := hist.Summarize(all)
	lat := s.GetAll().GetLatencyUs()
	if lat.GetP99() != want.GetP99() || lat.GetP50() != want.GetP50() || lat.GetMax() != want.GetMax() || lat.GetP999() != want.GetP999() {
		t.Errorf("merged latency %+v, histogram of raw values %+v", lat, want)
	}
}
