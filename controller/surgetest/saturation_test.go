package surgetest

import (
	"fmt"
	"strings"
	"testing"

	"github.com/surgeload/surge/cmd/surge/target"
	surgev1 "github.com/surgeload/surge/gen/surge/v1"
)

// More arrivals than one agent can send (100,000/s for 2 s, 20 VUs, to a
// loopback target that waits 1 ms) are flagged with the agent, its region,
// the interval and why; the flag is in that interval's progress too.
func TestSaturatedRunIsFlagged(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	c := Start(t, Options{Agents: []AgentSpec{{ID: "a1", Region: "us-east"}}, Target: target.Config{Latency: "1ms"}})
	plan := fmt.Sprintf(`name: saturated
scenarios:
  flood:
    executor: constant-arrival-rate
    rate: 100000
    duration: 2s
    pre_allocated_vus: 20
    max_vus: 20
    requests: [{url: '%s/'}]
`, c.TargetURL())
	sum, progress := c.Run(t, "saturated.yaml", []byte(plan))
	flags := sum.GetSaturation()
	if len(flags) == 0 {
		t.Fatalf("a run past the agent's capacity is not flagged; notes %q", sum.GetNotes())
	}
	for _, f := range flags {
		if f.GetAgentId() != "a1" || f.GetRegion() != "us-east" || len(f.GetReasons()) == 0 {
			t.Errorf("flag %v: want agent a1, region us-east and a reason", f)
		}
	}
	f := flags[0]
	if why := strings.Join(f.GetReasons(), "; "); !strings.Contains(why, "dropped iterations") && !strings.Contains(why, "send lateness") {
		t.Errorf("interval %d flagged for %q, want dropped iterations or send lateness", f.GetInterval(), why)
	}
	if !inProgress(progress, f) {
		t.Errorf("interval %d's flag is in no progress update", f.GetInterval())
	}
	if !strings.Contains(strings.Join(sum.GetNotes(), "\n"), "generator saturated") {
		t.Errorf("notes %q lack the saturation note", sum.GetNotes())
	}
	t.Logf("measured: %d flags; interval %d: %v", len(flags), f.GetInterval(), f.GetReasons())
}

// One VU against a target that waits 5 ms saturates nothing: no interval,
// first and last included, is flagged; progress counts its VU.
func TestLightRunIsNotFlagged(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	c := Start(t, Options{Agents: []AgentSpec{{ID: "a1", Region: "us-east"}}, Target: target.Config{Latency: "5ms"}})
	plan := fmt.Sprintf("name: light\nscenarios:\n  s:\n    executor: constant-vus\n    vus: 1\n    duration: 2s\n    requests: [{url: '%s/'}]\n", c.TargetURL())
	sum, progress := c.Run(t, "light.yaml", []byte(plan))
	// Progress shows the closed model's VUs: one busy, one at most.
	if len(progress) == 0 {
		t.Fatal("no progress")
	}
	if p := progress[0].GetAll(); p.GetVus() != 1 || p.GetVusMax() != 1 || p.GetTargetRps() != 0 {
		t.Errorf("first progress: vus %d, vus_max %d, target rps %g; want 1, 1, 0", p.GetVus(), p.GetVusMax(), p.GetTargetRps())
	}
	if len(sum.GetSaturation()) != 0 {
		t.Errorf("a light run is flagged saturated: %v", sum.GetSaturation())
	}
	if sum.GetAll().GetRequests() == 0 {
		t.Error("the light run sent nothing")
	}
}

func inProgress(ps []*surgev1.Progress, f *surgev1.SaturationFlag) bool {
	for _, p := range ps {
		for _, g := range p.GetSaturation() {
			if g.GetInterval() == f.GetInterval() && g.GetAgentId() == f.GetAgentId() {
				return true
			}
		}
	}
	return false
}
