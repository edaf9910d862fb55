package plan

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"sort"
	"strconv"
	"strings"
)

// AgentInfo is what Split knows of a live agent.
type AgentInfo struct {
	ID     string
	Region string
	// Capacity; zero means unlimited.
	MaxRate float64
	MaxVUs  int64
}

// Share is one agent's exact part of a plan.
type Share struct {
	AgentID   string
	Region    string
	Scenarios []ScenarioShare // one per scenario the agent takes part in, sorted by name
	// RPS is the agent's part of the plan's rps; 0: no cap.
	RPS int64
}

// ScenarioShare is one agent's part of one scenario; see proto ScenarioShare.
type ScenarioShare struct {
	Scenario      string
	From, To      *big.Rat // the agent's segment [From, To) of the scenario
	Arrivals      int64    // arrival-rate: this agent's arrivals; iteration executors: its iterations
	TotalArrivals int64    // arrival-rate: the scenario's total; iteration executors: total iterations
	PreAllocVUs   int64
	MaxVUs        int64
	VUs           int64   // constant-vus
	StageTargets  []int64 // ramping-vus: start_vus then one per stage
	// ArrivalFirst and ArrivalStride pick a takeover part's arrivals out
	// of Arrivals: first, first+stride, ... (0 and 0 for a whole share).
	ArrivalFirst, ArrivalStride int64
}

// Fraction is the agent's part of the scenario, To - From.
func (s ScenarioShare) Fraction() *big.Rat { return new(big.Rat).Sub(s.To, s.From) }

// SegmentFrom is From as the wire carries it ("1/3"); "" when unset.
func (s ScenarioShare) SegmentFrom() string {
	if s.From == nil {
		return ""
	}
	return s.From.String()
}

// Split divides a plan among agents: first by region weight (scenario
// regions override plan regions; none: all agents evenly), then evenly, or by
// declared MaxRate, across that region's agents. Integer quantities
// (arrivals, VUs per stage, pre-allocated and max VUs) sum exactly to the
// plan's by largest remainder; segments tile [0,1) exactly. Deterministic for
// the same input (agents are ordered by region then ID). Errors name the
// problem: a weighted region with no live agent, no agents at all, an agent
// whose capacity would be exceeded.
//
// Every agent gets a Share, in that order; an agent in no weighted region of
// a scenario has no ScenarioShare for it. An agent with arrivals gets at
// least one pre-allocated and one max VU: when a scenario has fewer
// pre-allocated (or max) VUs than such agents, those sums exceed the plan's
// by the shortfall; otherwise they are exact.
func Split(p *Plan, agents []AgentInfo) ([]Share, error) {
	if len(agents) == 0 {
		return nil, errors.New("split plan: no live agents: start one with `surge agent --id ID --region REGION --join GOSSIP_ADDR` (the controller's --gossip address, default 127.0.0.1:7946); `surge agents` lists those connected")
	}
	if err := p.uninlined(); err != nil {
		return nil, fmt.Errorf("split plan: %w", err)
	}
	sorted := make([]AgentInfo, len(agents))
	copy(sorted, agents)
	sort.Slice(sorted, func(i, j int) bool {
		if sorted[i].Region != sorted[j].Region {
			return sorted[i].Region < sorted[j].Region
		}
		return sorted[i].ID < sorted[j].ID
	})
	ids := map[string]bool{}
	for _, a := range sorted {
		if ids[a.ID] {
			return nil, fmt.Errorf("split plan: agent %q listed twice", a.ID)
		}
		ids[a.ID] = true
	}
	shares := make([]Share, len(sorted))
	for i, a := range sorted {
		shares[i] = Share{AgentID: a.ID, Region: a.Region}
	}
	for _, name := range p.ScenarioNames() {
		s := p.Scenarios[name]
		if s == nil {
			return nil, fmt.Errorf("split plan: scenario %q is empty", name)
		}
		regions := s.Regions
		if len(regions) == 0 {
			regions = p.Regions
		}
		fracs, err := agentFractions(regions, sorted)
		if err != nil {
			return nil, fmt.Errorf("split plan: scenario %q: %w", name, err)
		}
		if err := splitScenario(name, s, fracs, shares); err != nil {
			return nil, fmt.Errorf("split plan: %w", err)
		}
	}
	if err := checkCapacity(p, sorted, shares); err != nil {
		return nil, fmt.Errorf("split plan: %w", err)
	}
	splitRPS(p.RPS, len(p.Scenarios), shares)
	return shares, nil
}

// splitRPS gives each share its part of the plan's rps, by its mean
// fraction of the scenarios (an agent in none gets none), summing to rps
// exactly.
func splitRPS(rps int64, scenarios int, shares []Share) {
	if rps <= 0 || scenarios == 0 {
		return
	}
	fracs := make([]*big.Rat, len(shares))
	for i, sh := range shares {
		fracs[i] = new(big.Rat)
		for _, sc := range sh.Scenarios {
			fracs[i].Add(fracs[i], sc.Fraction())
		}
		fracs[i].Quo(fracs[i], big.NewRat(int64(scenarios), 1))
	}
	for i, n := range apportion(rps, fracs, nil) {
		shares[i].RPS = n
	}
}

// agentFractions gives each agent (sorted by region then ID) its exact part
// of a scenario; nil entries take no part.
func agentFractions(regions map[string]Region, agents []AgentInfo) ([]*big.Rat, error) {
	fracs := make([]*big.Rat, len(agents))
	if len(regions) == 0 {
		all := make([]int, len(agents))
		for i := range all {
			all[i] = i
		}
		spread(fracs, big.NewRat(1, 1), all, agents)
		return fracs, nil
	}
	total := new(big.Rat)
	for _, name := range sortedKeys(regions) {
		w := regions[name].Weight
		if !(w > 0) || math.IsInf(w, 0) {
			return nil, fmt.Errorf("region %q: weight must be a finite number > 0, got %v", name, w)
		}
		total.Add(total, decimalRat(w))
	}
	byRegion := map[string][]int{}
	for i, a := range agents {
		byRegion[a.Region] = append(byRegion[a.Region], i)
	}
	for _, name := range sortedKeys(regions) {
		idx := byRegion[name]
		if len(idx) == 0 {
			have := sortedKeys(byRegion)
			for i, r := range have {
				have[i] = strconv.Quote(r)
			}
			return nil, fmt.Errorf("region %q has weight %v but no live agent (agents are in: %s)",
				name, regions[name].Weight, strings.Join(have, ", "))
		}
		spread(fracs, new(big.Rat).Quo(decimalRat(regions[name].Weight), total), idx, agents)
	}
	return fracs, nil
}

// spread divides part among the agents idx: in proportion to MaxRate when
// every one of them declares it, else evenly.
func spread(fracs []*big.Rat, part *big.Rat, idx []int, agents []AgentInfo) {
	byRate := true
	capSum := new(big.Rat)
	for _, i := range idx {
		if !(agents[i].MaxRate > 0) || math.IsInf(agents[i].MaxRate, 0) {
			byRate = false
			break
		}
		capSum.Add(capSum, decimalRat(agents[i].MaxRate))
	}
	for _, i := range idx {
		f := new(big.Rat).Set(part)
		if byRate {
			f.Mul(f, decimalRat(agents[i].MaxRate))
			f.Quo(f, capSum)
		} else {
			f.Mul(f, big.NewRat(1, int64(len(idx))))
		}
		fracs[i] = f
	}
}

// decimalRat is the exact rational of x's shortest decimal text, so that a
// weight written 0.2 is 1/5 rather than the nearest binary fraction.
func decimalRat(x float64) *big.Rat {
	r, ok := new(big.Rat).SetString(strconv.FormatFloat(x, 'g', -1, 64))
	if !ok {
		return new(big.Rat).SetFloat64(x)
	}
	return r
}

// splitScenario appends each taking agent's ScenarioShare of s to shares.
func splitScenario(name string, s *Scenario, fracs []*big.Rat, shares []Share) error {
	var idx []int // agents taking part, in order
	var fs []*big.Rat
	for i, f := range fracs {
		if f != nil && f.Sign() > 0 {
			idx = append(idx, i)
			fs = append(fs, f)
		}
	}
	parts := make([]ScenarioShare, len(idx))
	from := new(big.Rat)
	for k, f := range fs {
		to := new(big.Rat).Add(from, f)
		parts[k] = ScenarioShare{Scenario: name, From: from, To: to}
		from = to
	}
	if from.Cmp(big.NewRat(1, 1)) != 0 {
		return fmt.Errorf("scenario %q: agent segments sum to %s, not 1", name, from.RatString())
	}
	kind := s.Kind()
	if kind == nil {
		return fmt.Errorf("scenario %q: unknown executor %q", name, s.Executor)
	}
	kind.split(s, fs, parts)
	for k, i := range idx {
		shares[i].Scenarios = append(shares[i].Scenarios, parts[k])
	}
	return nil
}

// apportion divides total among fracs (which sum to 1) by largest
// remainder: each gets floor(total·f), and the units left over go to the
// largest remainders, earlier index first on ties. Then each k is raised to
// at least floor[k] (when floor is non-nil), taking the units back from
// those most above their quota (later index first on ties) while any is
// above its floor; only if none is left does the sum exceed total.
func apportion(total int64, fracs []*big.Rat, floor []int64) []int64 {
	n := len(fracs)
	out := make([]int64, n)
	if n == 0 || total <= 0 && floor == nil {
		return out
	}
	t := new(big.Rat).SetInt64(max(total, 0))
	quota := make([]*big.Rat, n)
	rems := make([]*big.Rat, n)
	var given int64
	q, r := new(big.Int), new(big.Int)
	for k, f := range fracs {
		quota[k] = new(big.Rat).Mul(t, f)
		q.QuoRem(quota[k].Num(), quota[k].Denom(), r)
		out[k] = q.Int64()
		given += out[k]
		rems[k] = new(big.Rat).Sub(quota[k], new(big.Rat).SetInt64(out[k]))
	}
	order := make([]int, n)
	for k := range order {
		order[k] = k
	}
	sort.SliceStable(order, func(a, b int) bool { return rems[order[a]].Cmp(rems[order[b]]) > 0 })
	for k := 0; given < total; k = (k + 1) % n {
		out[order[k]]++
		given++
	}
	if floor == nil {
		return out
	}
	var owed int64
	for k := range out {
		if out[k] < floor[k] {
			owed += floor[k] - out[k]
			out[k] = floor[k]
		}
	}
	for ; owed > 0; owed-- {
		best := -1
		var bestSurplus *big.Rat
		for k := range out {
			if out[k] <= floor[k] {
				continue
			}
			surplus := new(big.Rat).Sub(new(big.Rat).SetInt64(out[k]), quota[k])
			if best < 0 || surplus.Cmp(bestSurplus) >= 0 {
				best, bestSurplus = k, surplus
			}
		}
		if best < 0 {
			break
		}
		out[best]--
	}
	return out
}

// checkCapacity fails when an agent's planned rate, at any moment, or its
// VUs, over any overlap of scenarios, would exceed what it declared.
func checkCapacity(p *Plan, agents []AgentInfo, shares []Share) error {
	for i, a := range agents {
		sh := shares[i]
		if a.MaxRate > 0 {
			if peak, at := peakRate(p, sh); peak > a.MaxRate*(1+1e-9) {
				return fmt.Errorf("agent %q (region %q) would send %.4g arrivals/s at %.4gs, over its max rate %.4g/s",
					a.ID, a.Region, peak, at, a.MaxRate)
			}
		}
		if a.MaxVUs > 0 {
			if peak := peakVUs(p, sh); peak > a.MaxVUs {
				return fmt.Errorf("agent %q (region %q) would run %d VUs, over its max VUs %d",
					a.ID, a.Region, peak, a.MaxVUs)
			}
		}
	}
	return nil
}

// peakRate is the highest sum, over time, of the agent's arrival rates
// (each scenario's curve scaled by arrivals/total) and when it occurs. The
// sum is piecewise linear, so its peak is at a breakpoint of some scenario.
func peakRate(p *Plan, sh Share) (peak, at float64) {
	var times []float64
	for _, ss := range sh.Scenarios {
		s := p.Scenarios[ss.Scenario]
		if !s.IsArrivalRate() || ss.Arrivals == 0 {
			continue
		}
		off := s.StartTime.D().Seconds()
		for _, x := range s.breakpoints(nil) {
			times = append(times, off+x)
		}
	}
	for _, t := range times {
		var left, right float64
		for _, ss := range sh.Scenarios {
			s := p.Scenarios[ss.Scenario]
			if !s.IsArrivalRate() || ss.Arrivals == 0 || ss.TotalArrivals == 0 {
				continue
			}
			scale := float64(ss.Arrivals) / float64(ss.TotalArrivals)
			l, r := s.rateLimits(t - s.StartTime.D().Seconds())
			left += l * scale
			right += r * scale
		}
		if v := max(left, right); v > peak {
			peak, at = v, t
		}
	}
	return peak, at
}

// peakVUs is the most VUs the agent may run at once: each scenario holds
// its peak VUs from its start to its end plus graceful stop.
func peakVUs(p *Plan, sh Share) int64 {
	type window struct {
		start, end float64
		vus        int64
	}
	ws := make([]window, 0, len(sh.Scenarios))
	for _, ss := range sh.Scenarios {
		s := p.Scenarios[ss.Scenario]
		v := ss.VUs + ss.MaxVUs
		for _, t := range ss.StageTargets {
			v = max(v, t)
		}
		start := s.StartTime.D().Seconds()
		ws = append(ws, window{start, start + (s.Length() + s.GracefulStop.D()).Seconds(), v})
	}
	var peak int64
	for _, w := range ws {
		var sum int64
		for _, o := range ws {
			if o.start <= w.start && w.start < o.end || o.start == w.start {
				sum += o.vus
			}
		}
		peak = max(peak, sum)
	}
	return peak
}
