package controller

import (
	"testing"
	"time"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
	"github.com/surgeload/surge/plan"
)

// The survivors' parts send exactly the arrivals the lost agent had not
// yet due at the reshare instant, each once; a second loss re-splits a
// takeover part just as exactly. Due times come from the plan's own
// arithmetic (1000 arrivals at 100/s, a share of 333 spread evenly over
// them), not from the controller's schedule code.
func TestReshareArrivalsExact(t *testing.T) {
	p, err := plan.Parse("p.yaml", []byte("name: p\nscenarios:\n  s:\n    executor: constant-arrival-rate\n    rate: 100\n    duration: 10s\n    pre_allocated_vus: 9\n    requests: [{url: 'http://127.0.0.1:1/'}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	const rate, total, share = 100, 1000, 333
	// Arrival j of the share is the scenario's arrival (j+½)·1000/333, due
	// at that index over 100/s.
	due := func(j int64) time.Duration {
		return time.Duration((float64(j) + 0.5) * total / share / rate * float64(time.Second))
	}
	lost := &surgev1.ScenarioShare{Scenario: "s", Arrivals: share, TotalArrivals: total, PreAllocatedVus: 3}
	at := 4 * time.Second
	indices := func(ss *surgev1.ScenarioShare) []int64 {
		var out []int64
		for j := ss.GetArrivalFirst(); j < ss.GetArrivals(); j += max(ss.GetArrivalStride(), 1) {
			out = append(out, j)
		}
		return out
	}
	split := reshareParts(p, []*surgev1.ScenarioShare{lost}, "a1", 2, at, 2)
	seen := map[int64]bool{}
	for _, parts := range split {
		for _, j := range indices(parts[0]) {
			if seen[j] || due(j) <= at {
				t.Fatalf("arrival %d twice or already due", j)
			}
			seen[j] = true
		}
	}
	// By 4s the scenario's first 400 arrivals are due: of the share's,
	// those with (j+½)·1000/333 < 400, j ≤ 132, so 133 of them.
	const dueAt4s = 133
	if int64(len(seen)) != share-dueAt4s {
		t.Fatalf("survivors send %d, want %d", len(seen), share-dueAt4s)
	}
	for j := int64(dueAt4s); j < share; j++ {
		if !seen[j] {
			t.Fatalf("arrival %d, not due by %s, is nobody's", j, at)
		}
	}
	// The second survivor is lost at 7s: its part goes to three others.
	again := reshareParts(p, split[1], "a3", 3, 7*time.Second, 3)
	got := map[int64]bool{}
	for _, parts := range again {
		for _, j := range indices(parts[0]) {
			if got[j] || due(j) <= 7*time.Second {
				t.Fatalf("arrival %d twice or already due", j)
			}
			got[j] = true
		}
	}
	var want int
	for _, j := range indices(split[1][0]) {
		if due(j) > 7*time.Second {
			want++
			if !got[j] {
				t.Fatalf("arrival %d of the lost part, not due by 7s, is nobody's", j)
			}
		}
	}
	if len(got) != want {
		t.Fatalf("second reshare sends %d, want %d", len(got), want)
	}
}
func TestReshareVUsAndEnded(t *testing.T) {
	p, err := plan.Parse("p.yaml", []byte("name: p\nscenarios:\n  v:\n    executor: constant-vus\n    vus: 10\n    duration: 5s\n    requests: [{url: 'http://127.0.0.1:1/'}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	lost := []*surgev1.ScenarioShare{{Scenario: "v", Vus: 5}}
	split := reshareParts(p, lost, "a", 2, time.Second, 2)
	if split[0][0].GetVus()+split[1][0].GetVus() != 5 {
		t.Fatalf("VUs %v", split)
	}
	if ended := reshareParts(p, lost, "a", 2, 6*time.Second, 2); len(ended[0])+len(ended[1]) != 0 {
		t.Fatalf("reshared an ended scenario: %v", ended)
	}
}
