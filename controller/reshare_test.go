package controller

import (
	"testing"
	"time"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
	"github.com/surgeload/surge/plan"
)

// The survivors' parts send exactly the arrivals the lost agent had not
// yet due at the reshare instant, each once; a second loss re-splits a
// takeover part just as exactly.
func TestReshareArrivalsExact(t *testing.T) {
	p, err := plan.Parse("p.yaml", []byte("name: p\nscenarios:\n  s:\n    executor: constant-arrival-rate\n    rate: 100\n    duration: 10s\n    pre_allocated_vus: 9\n    requests: [{url: 'http://127.0.0.1:1/'}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	sc := p.Scenarios["s"]
	lost := &surgev1.ScenarioShare{Scenario: "s", Arrivals: 333, TotalArrivals: 1000, PreAllocatedVus: 3}
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
			if seen[j] || arrivalDue(sc, j, 333, 1000) <= at {
				t.Fatalf("arrival %d twice or already due", j)
			}
			seen[j] = true
		}
	}
	var due int64
	for j := range int64(333) {
		if arrivalDue(sc, j, 333, 1000) <= at {
			due++
		}
	}
	if int64(len(seen)) != 333-due {
		t.Fatalf("survivors send %d, want %d", len(seen), 333-due)
	}
	// The second survivor is lost at 7s: its part goes to three others.
	again := reshareParts(p, split[1], "a3", 3, 7*time.Second, 3)
	var n int
	for _, parts := range again {
		for _, j := range indices(parts[0]) {
			if arrivalDue(sc, j, 333, 1000) <= 7*time.Second {
				t.Fatalf("arrival %d already due", j)
			}
			n++
		}
	}
	var want int
	for _, j := range indices(split[1][0]) {
		if arrivalDue(sc, j, 333, 1000) > 7*time.Second {
			want++
		}
	}
	if n != want {
		t.Fatalf("second reshare sends %d, want %d", n, want)
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
