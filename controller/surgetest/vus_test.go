package surgetest

import (
	"fmt"
	"testing"

	"github.com/surgeload/surge/cmd/surge/target"
)

// Closed-model runs show their VUs: with every VU always busy (a target
// that waits 50 ms, no think time), the busy peak is the plan's VUs, per
// scenario (6 and 2), per region (half of each, by the plan's weights) and
// in all (8); progress shows them busy, and no arrivals.
func TestVUsInProgressAndSummary(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	c := Start(t, Options{
		Agents: []AgentSpec{{ID: "a1", Region: "us-east"}, {ID: "a2", Region: "eu-west"}},
		Target: target.Config{Latency: "50ms"},
	})
	plan := fmt.Sprintf(`name: vus
regions: {us-east: {weight: 0.5}, eu-west: {weight: 0.5}}
scenarios:
  a:
    executor: constant-vus
    vus: 6
    duration: 3s
    requests: [{url: '%[1]s/'}]
  b:
    executor: constant-vus
    vus: 2
    duration: 3s
    requests: [{url: '%[1]s/'}]
`, c.TargetURL())
	sum, progress := c.Run(t, "vus.yaml", []byte(plan))
	want := map[string]int64{"all": 8, "scenario a": 6, "scenario b": 2, "region us-east": 4, "region eu-west": 4}
	got := map[string]int64{"all": sum.GetAll().GetVusMax(),
		"scenario a": sum.GetScenarios()["a"].GetVusMax(), "scenario b": sum.GetScenarios()["b"].GetVusMax(),
		"region us-east": sum.GetRegions()["us-east"].GetVusMax(), "region eu-west": sum.GetRegions()["eu-west"].GetVusMax()}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("summary %s: vus_max %d, want %d", k, got[k], w)
		}
	}
	busy := false
	for _, p := range progress {
		a := p.GetAll()
		if a.GetTargetRps() != 0 || a.GetArrivalRps() != 0 {
			t.Errorf("progress of a closed-model run has arrivals %g/%g", a.GetArrivalRps(), a.GetTargetRps())
		}
		if a.GetVus() > a.GetVusMax() || a.GetVusMax() > 8 {
			t.Errorf("progress: vus %d of max %d, want vus <= max <= 8", a.GetVus(), a.GetVusMax())
		}
		busy = busy || a.GetVus() == 8
	}
	if !busy {
		t.Errorf("no progress update shows all 8 VUs busy")
	}
}
