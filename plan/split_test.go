package plan

import (
	"fmt"
	"math/big"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"
)

var regionNames = []string{"ap-south", "eu-west", "us-east", "us-west"}

func randWeight(rng *rand.Rand) float64 {
	switch rng.IntN(3) {
	case 0:
		return float64(1 + rng.IntN(5))
	case 1:
		return float64(1+rng.IntN(9)) / 10 // 0.1 … 0.9, inexact in binary
	}
	return 0.001 + rng.Float64()*3
}

func randRegions(rng *rand.Rand) map[string]Region {
	if rng.IntN(3) == 0 {
		return nil
	}
	m := map[string]Region{}
	for _, r := range regionNames {
		if rng.IntN(2) == 0 {
			m[r] = Region{Weight: randWeight(rng)}
		}
	}
	if len(m) == 0 {
		m[regionNames[rng.IntN(len(regionNames))]] = Region{Weight: randWeight(rng)}
	}
	return m
}

func randStages(rng *rand.Rand, vus bool) []Stage {
	st := make([]Stage, 1+rng.IntN(5))
	for i := range st {
		target := rng.Float64() * 300
		if vus || rng.IntN(2) == 0 {
			target = float64(rng.IntN(40))
		}
		st[i] = Stage{Duration: sec(float64(1 + rng.IntN(30))), Target: target}
	}
	return st
}

func randPlan(t *testing.T, rng *rand.Rand) *Plan {
	t.Helper()
	p := &Plan{Name: "rand", Regions: randRegions(rng), Scenarios: map[string]*Scenario{}}
	for i := range 1 + rng.IntN(4) {
		s := &Scenario{Requests: []Request{{URL: "http://h/"}}, StartTime: sec(float64(rng.IntN(3) * 10))}
		switch rng.IntN(4) {
		case 0:
			s.Executor, s.Rate, s.Duration = ConstantArrivalRate, 0.5+rng.Float64()*200, sec(float64(1+rng.IntN(60)))
			if rng.IntN(2) == 0 {
				s.TimeUnit = sec(float64(1 + rng.IntN(60)))
			}
		case 1:
			s.Executor, s.StartRate, s.Stages = RampingArrivalRate, float64(rng.IntN(50)), randStages(rng, false)
		case 2:
			s.Executor, s.VUs, s.Duration = ConstantVUs, int64(1+rng.IntN(50)), sec(10)
		case 3:
			s.Executor, s.StartVUs, s.Stages = RampingVUs, int64(rng.IntN(10)), randStages(rng, true)
		}
		if s.IsArrivalRate() && rng.IntN(2) == 0 {
			s.PreAllocatedVUs = int64(1 + rng.IntN(20))
			s.MaxVUs = s.PreAllocatedVUs + int64(rng.IntN(50))
		}
		if rng.IntN(4) == 0 {
			s.Regions = randRegions(rng)
		}
		p.Scenarios[fmt.Sprintf("s%d", i)] = s
	}
	if err := check(p, "rand", nil); err != nil {
		t.Fatalf("random plan is invalid: %v", err)
	}
	return p
}

func randAgents(rng *rand.Rand) []AgentInfo {
	agents := make([]AgentInfo, 1+rng.IntN(12))
	capRegion := map[string]bool{}
	for _, r := range regionNames {
		capRegion[r] = rng.IntN(3) == 0
	}
	for i := range agents {
		r := regionNames[rng.IntN(len(regionNames))]
		agents[i] = AgentInfo{ID: fmt.Sprintf("agent-%02d", rng.IntN(100)*100+i), Region: r}
		if capRegion[r] {
			agents[i].MaxRate = float64(50 + rng.IntN(500))
		}
		if rng.IntN(4) == 0 {
			agents[i].MaxVUs = int64(50 + rng.IntN(500))
		}
	}
	return agents
}

// renderShares prints shares exactly, for determinism checks.
func renderShares(shares []Share) string {
	var b strings.Builder
	for _, sh := range shares {
		fmt.Fprintf(&b, "%s@%s\n", sh.AgentID, sh.Region)
		for _, ss := range sh.Scenarios {
			fmt.Fprintf(&b, "  %s [%s,%s) a=%d/%d pre=%d max=%d vus=%d st=%v\n", ss.Scenario,
				ss.From.RatString(), ss.To.RatString(), ss.Arrivals, ss.TotalArrivals, ss.PreAllocVUs, ss.MaxVUs, ss.VUs, ss.StageTargets)
		}
	}
	return b.String()
}

// within1 reports whether an integer part is within one of its exact quota.
func within1(got int64, total int64, f *big.Rat) bool {
	d := new(big.Rat).Sub(new(big.Rat).SetInt64(got), new(big.Rat).Mul(new(big.Rat).SetInt64(total), f))
	return d.Abs(d).Cmp(big.NewRat(1, 1)) < 0
}

func TestSplitProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(42, 7))
	var ok, capErr, regionErr int
	for iter := range 1500 {
		p := randPlan(t, rng)
		agents := randAgents(rng)
		shares, err := Split(p, agents)
		if err != nil {
			switch {
			case strings.Contains(err.Error(), "no live agent"):
				regionErr++
			case strings.Contains(err.Error(), "over its max"):
				capErr++
			default:
				t.Fatalf("iter %d: %v", iter, err)
			}
			continue
		}
		ok++
		checkShares(t, p, agents, shares)

		// Deterministic, whatever the order of the agents.
		shuffled := append([]AgentInfo(nil), agents...)
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		again, err := Split(p, shuffled)
		if err != nil {
			t.Fatal(err)
		}
		if a, b := renderShares(shares), renderShares(again); a != b {
			t.Fatalf("iter %d: split depends on agent order:\n%s\n%s", iter, a, b)
		}
	}
	t.Logf("%d splits, %d capacity errors, %d missing-region errors", ok, capErr, regionErr)
	if ok < 500 || capErr == 0 || regionErr == 0 {
		t.Fatalf("random cases do not cover enough: %d ok, %d capacity, %d region", ok, capErr, regionErr)
	}
}

func checkShares(t *testing.T, p *Plan, agents []AgentInfo, shares []Share) {
	t.Helper()
	if len(shares) != len(agents) {
		t.Fatalf("%d shares for %d agents", len(shares), len(agents))
	}
	for i := 1; i < len(shares); i++ {
		a, b := shares[i-1], shares[i]
		if a.Region > b.Region || a.Region == b.Region && a.AgentID >= b.AgentID {
			t.Fatalf("shares not sorted by region then ID: %s %s", a.AgentID, b.AgentID)
		}
	}
	for _, name := range p.ScenarioNames() {
		s := p.Scenarios[name]
		var parts []ScenarioShare
		var regions []string
		for _, sh := range shares {
			for _, ss := range sh.Scenarios {
				if ss.Scenario == name {
					parts = append(parts, ss)
					regions = append(regions, sh.Region)
				}
			}
		}
		// Segments tile [0, 1).
		at := new(big.Rat)
		for _, ss := range parts {
			if ss.From.Cmp(at) != 0 || ss.To.Cmp(ss.From) <= 0 {
				t.Fatalf("%s: segment [%s,%s) does not follow %s", name, ss.From, ss.To, at)
			}
			at = ss.To
		}
		if at.Cmp(big.NewRat(1, 1)) != 0 {
			t.Fatalf("%s: segments end at %s", name, at)
		}
		// Region shares are exactly weight / total weight.
		weights := s.Regions
		if len(weights) == 0 {
			weights = p.Regions
		}
		if len(weights) > 0 {
			total := new(big.Rat)
			for _, r := range weights {
				total.Add(total, decimalRat(r.Weight))
			}
			got := map[string]*big.Rat{}
			for k, ss := range parts {
				if got[regions[k]] == nil {
					got[regions[k]] = new(big.Rat)
				}
				got[regions[k]].Add(got[regions[k]], ss.Fraction())
			}
			if len(got) != len(weights) {
				t.Fatalf("%s: agents from %d regions take part, want %d", name, len(got), len(weights))
			}
			for r, w := range weights {
				want := new(big.Rat).Quo(decimalRat(w.Weight), total)
				if got[r] == nil || got[r].Cmp(want) != 0 {
					t.Fatalf("%s: region %s share %v, want %v", name, r, got[r], want)
				}
			}
		} else if len(parts) != len(agents) {
			t.Fatalf("%s: %d of %d agents take part without regions", name, len(parts), len(agents))
		}
		// Integer quantities sum exactly, each within one of its quota.
		var arrivals, pre, maxv, vus, withArrivals int64
		stages := make([]int64, len(s.Stages)+1)
		for _, ss := range parts {
			arrivals += ss.Arrivals
			pre += ss.PreAllocVUs
			maxv += ss.MaxVUs
			vus += ss.VUs
			f := ss.Fraction()
			if ss.Arrivals > 0 {
				withArrivals++
				if ss.PreAllocVUs < 1 {
					t.Fatalf("%s: agent with arrivals has no pre-allocated VU", name)
				}
			}
			if ss.MaxVUs < ss.PreAllocVUs {
				t.Fatalf("%s: max VUs %d < pre-allocated %d", name, ss.MaxVUs, ss.PreAllocVUs)
			}
			if !within1(ss.Arrivals, s.TotalArrivals(), f) || !within1(ss.VUs, s.VUs, f) {
				t.Fatalf("%s: part %+v is not within one of its quota", name, ss)
			}
			if s.Executor == RampingVUs {
				if len(ss.StageTargets) != len(stages) {
					t.Fatalf("%s: %d stage targets, want %d", name, len(ss.StageTargets), len(stages))
				}
				for j, v := range ss.StageTargets {
					stages[j] += v
				}
			}
		}
		if s.IsArrivalRate() {
			if arrivals != s.TotalArrivals() {
				t.Fatalf("%s: arrivals sum to %d, want %d", name, arrivals, s.TotalArrivals())
			}
			wantPre := max(s.PreAllocatedVUs, withArrivals)
			if pre != wantPre || maxv != pre+s.MaxVUs-s.PreAllocatedVUs {
				t.Fatalf("%s: pre/max VUs sum to %d/%d, want %d/%d", name, pre, maxv, wantPre, wantPre+s.MaxVUs-s.PreAllocatedVUs)
			}
		}
		if vus != s.VUs && s.Executor == ConstantVUs {
			t.Fatalf("%s: VUs sum to %d, want %d", name, vus, s.VUs)
		}
		if s.Executor == RampingVUs {
			for j, got := range stages {
				want := s.StartVUs
				if j > 0 {
					want = int64(s.Stages[j-1].Target)
				}
				if got != want {
					t.Fatalf("%s: stage %d VUs sum to %d, want %d", name, j, got, want)
				}
			}
		}
	}
	// No agent over its capacity: sample each agent's total rate and VUs.
	for i, a := range agents {
		_ = i
		var sh Share
		for _, x := range shares {
			if x.AgentID == a.ID {
				sh = x
			}
		}
		if a.MaxRate > 0 {
			for x := time.Duration(0); x <= p.TotalDuration(); x += 100 * time.Millisecond {
				var rate float64
				for _, ss := range sh.Scenarios {
					s := p.Scenarios[ss.Scenario]
					if ss.TotalArrivals > 0 {
						rate += s.RateAt(x-s.StartTime.D()) * float64(ss.Arrivals) / float64(ss.TotalArrivals)
					}
				}
				if rate > a.MaxRate*(1+1e-9) {
					t.Fatalf("agent %s sends %v/s at %s, over its max %v", a.ID, rate, x, a.MaxRate)
				}
			}
		}
		if a.MaxVUs > 0 {
			var sum int64
			for _, ss := range sh.Scenarios {
				sum += ss.MaxVUs + ss.VUs
				for _, v := range ss.StageTargets {
					if v > a.MaxVUs {
						t.Fatalf("agent %s runs %d VUs, over its max %d", a.ID, v, a.MaxVUs)
					}
				}
			}
			if sum > a.MaxVUs && len(sh.Scenarios) == 1 {
				t.Fatalf("agent %s runs %d VUs, over its max %d", a.ID, sum, a.MaxVUs)
			}
		}
	}
}

func TestApportion(t *testing.T) {
	third := big.NewRat(1, 3)
	for _, c := range []struct {
		total int64
		fracs []*big.Rat
		floor []int64
		want  string
	}{
		{10, []*big.Rat{third, third, third}, nil, "[4 3 3]"},
		{2, []*big.Rat{third, third, third}, nil, "[1 1 0]"},
		{2, []*big.Rat{third, third, third}, []int64{1, 1, 1}, "[1 1 1]"},
		{5, []*big.Rat{big.NewRat(9, 10), big.NewRat(1, 20), big.NewRat(1, 20)}, []int64{1, 1, 1}, "[3 1 1]"},
		{7, []*big.Rat{big.NewRat(1, 2), big.NewRat(1, 4), big.NewRat(1, 4)}, nil, "[3 2 2]"},
	} {
		if got := fmt.Sprint(apportion(c.total, c.fracs, c.floor)); got != c.want {
			t.Errorf("apportion(%d, %v, %v) = %s, want %s", c.total, c.fracs, c.floor, got, c.want)
		}
	}
}

func TestSplitDemo(t *testing.T) {
	src, err := os.ReadFile("../examples/demo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p, err := Parse("demo.yaml", src)
	if err != nil {
		t.Fatal(err)
	}
	agents := []AgentInfo{
		{ID: "u1", Region: "us-east"}, {ID: "u2", Region: "us-east"},
		{ID: "e1", Region: "eu-west"}, {ID: "a1", Region: "ap-south"},
	}
	shares, err := Split(p, agents)
	if err != nil {
		t.Fatal(err)
	}
	checkShares(t, p, agents, shares)
	want := map[string]string{"a1": "1/5", "e1": "3/10", "u1": "1/4", "u2": "1/4"}
	for _, sh := range shares {
		if got := sh.Scenarios[0].Fraction().RatString(); got != want[sh.AgentID] {
			t.Errorf("%s: fraction %s, want %s", sh.AgentID, got, want[sh.AgentID])
		}
	}
}

func TestSplitByCapacity(t *testing.T) {
	p := &Plan{Name: "x", Scenarios: map[string]*Scenario{"s": {
		Executor: ConstantArrivalRate, Rate: 100, Duration: sec(10), Requests: []Request{{URL: "http://h/"}},
	}}}
	if err := check(p, "x", nil); err != nil {
		t.Fatal(err)
	}
	shares, err := Split(p, []AgentInfo{{ID: "big", MaxRate: 300}, {ID: "small", MaxRate: 100}})
	if err != nil {
		t.Fatal(err)
	}
	if got := shares[0].Scenarios[0].Arrivals; shares[0].AgentID != "big" || got != 750 {
		t.Fatalf("big agent gets %d arrivals, want 750", got)
	}
}

func TestSplitErrors(t *testing.T) {
	mk := func(regions map[string]Region, rate float64, vus int64) *Plan {
		p := &Plan{Name: "x", Regions: regions, Scenarios: map[string]*Scenario{
			"r": {Executor: ConstantArrivalRate, Rate: rate, Duration: sec(10), Requests: []Request{{URL: "http://h/"}}},
			"v": {Executor: ConstantVUs, VUs: vus, Duration: sec(10), Requests: []Request{{URL: "http://h/"}}},
		}}
		if err := check(p, "x", nil); err != nil {
			t.Fatal(err)
		}
		return p
	}
	two := map[string]Region{"us-east": {Weight: 1}, "mars": {Weight: 1}}
	for _, c := range []struct {
		name   string
		p      *Plan
		agents []AgentInfo
		want   string
	}{
		{"no agents", mk(nil, 10, 1), nil, "split plan: no live agents: start one with `surge agent --id ID --region REGION --join GOSSIP_ADDR`"},
		{"region without agent", mk(two, 10, 1), []AgentInfo{{ID: "a", Region: "us-east"}, {ID: "b", Region: "eu-west"}},
			`region "mars" has weight 1 but no live agent (agents are in: "eu-west", "us-east")`},
		{"rate over capacity", mk(nil, 100, 1), []AgentInfo{{ID: "a", MaxRate: 40}, {ID: "b"}}, `agent "a" (region "") would send 50 arrivals/s`},
		{"vus over capacity", mk(nil, 10, 100), []AgentInfo{{ID: "a"}, {ID: "b", MaxVUs: 40}}, `agent "b" (region "") would run`},
		{"duplicate agent", mk(nil, 10, 1), []AgentInfo{{ID: "a"}, {ID: "a", Region: "x"}}, `agent "a" listed twice`},
	} {
		_, err := Split(c.p, c.agents)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want %q", c.name, err, c.want)
		}
	}
}

// TestSplitRPS: the plan's rps is split exactly, by each agent's part of
// the load; an agent in no scenario gets none.
func TestSplitRPS(t *testing.T) {
	p, err := Parse("rps.yaml", []byte(`rps: 1000
regions:
  us-east: {weight: 2}
  eu-west: {weight: 1}
scenarios:
  a:
    executor: constant-vus
    vus: 6
    duration: 1s
    requests: [{url: http://127.0.0.1/}]
  b:
    executor: constant-vus
    vus: 3
    duration: 1s
    regions: {us-east: {weight: 1}}
    requests: [{url: http://127.0.0.1/}]
`))
	if err != nil {
		t.Fatal(err)
	}
	shares, err := Split(p, []AgentInfo{{ID: "u1", Region: "us-east"}, {ID: "u2", Region: "us-east"}, {ID: "e1", Region: "eu-west"}, {ID: "x", Region: "ap-south"}})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	var sum int64
	for _, sh := range shares {
		got[sh.AgentID] = sh.RPS
		sum += sh.RPS
	}
	// a: u1 1/3, u2 1/3, e1 1/3; b: u1 1/2, u2 1/2. Means: 5/12, 5/12, 1/6.
	if got["u1"]+got["u2"] != 833 || got["u1"] < 416 || got["u2"] < 416 || got["e1"] != 167 || got["x"] != 0 || sum != 1000 {
		t.Errorf("rps by agent %v (sum %d), want 417/416, 167, 0 summing to 1000", got, sum)
	}
}
