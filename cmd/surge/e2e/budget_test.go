//go:build e2e

package e2e

import (
	"testing"
	"time"
)

// maxDrops is how many arrivals a constant-arrival-rate run may drop given
// its VU budget: an arrival is dropped only when every VU of its agent is
// busy. Each agent runs rate/agents arrivals a second with maxVUs/agents
// VUs; requests answered within slowest keep rate/agents·slowest of them
// busy on average, so with at least ten times that many VUs all of them
// are busy only if the agent stalled for maxVUs/rate seconds: the bound is
// zero. A plan without that headroom cannot bound its drops and is a
// mistake of the test.
func maxDrops(t *testing.T, rate float64, maxVUs, agents int, slowest time.Duration) int64 {
	t.Helper()
	perAgent := float64(maxVUs / agents)
	busy := rate / float64(agents) * slowest.Seconds()
	if perAgent < 10*busy || perAgent < 2 {
		t.Fatalf("VU budget %d over %d agents covers %.2f busy VUs each less than tenfold: no bound on drops", maxVUs, agents, busy)
	}
	return 0
}
