package executor

import (
	"hash/fnv"
	"math"
	"math/rand/v2"
	"sort"
	"sync"
	"time"

	"github.com/surgeload/surge/plan"
)

// NewPacer returns the pacer of s's arrival process for this agent's
// arrivals of total. Random processes (poisson, mmpp) draw from a PCG
// seeded with seed, so a run is reproducible (see Seed).
//
//   - uniform: SchedulePacer, exact: arrival j at TimeOfArrival((j+½)·N/A).
//   - poisson: exponential inter-arrivals at the schedule's rate (the
//     cumulative-rate transform of a unit-rate process); the count is
//     Poisson with mean A, not exactly A.
//   - on-off: the uniform schedule in warped time: the rate is factor×
//     during on and lowered during off so each cycle keeps the mean; the
//     count stays exact.
//   - mmpp: a Poisson process in time warped by a Markov-modulated rate
//     factor, normalised to a long-run mean of 1.
func NewPacer(s *plan.Scenario, arrivals, total int64, seed uint64) Pacer {
	base := NewSchedulePacer(s, arrivals, total)
	a := s.Arrivals
	switch a.Name() {
	case plan.ArrivalsPoisson:
		return newPoissonPacer(base, seed)
	case plan.ArrivalsOnOff:
		return countingWarpPacer{&WarpPacer{base: base, warp: newOnOffWarp(a.OnOff, s.Length())}, base}
	case plan.ArrivalsMMPP:
		return &WarpPacer{base: newPoissonPacer(base, seed), warp: newMMPPWarp(a.MMPP, seed^0x9e3779b97f4a7c15)}
	}
	return base
}

// Seed derives a scenario's seed from the run, the scenario and the
// agent's segment, so every agent draws a different, reproducible stream.
func Seed(runID, scenario, segmentFrom string) uint64 {
	h := fnv.New64a()
	for _, s := range []string{runID, scenario, segmentFrom} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return h.Sum64()
}

// PoissonPacer draws arrivals of a non-homogeneous Poisson process along
// the schedule: unit-rate exponential gaps u, mapped through the inverse of
// the agent's cumulative schedule.
type PoissonPacer struct {
	base *SchedulePacer
	rng  *rand.Rand
	u    float64 // cumulative unit-rate time of the last arrival
	next int64
}

var _ Pacer = (*PoissonPacer)(nil)

func newPoissonPacer(base *SchedulePacer, seed uint64) *PoissonPacer {
	return &PoissonPacer{base: base, rng: rand.New(rand.NewPCG(seed, seed>>1|1))}
}

// Next implements Pacer; n must be 0, 1, 2, ... in order.
func (p *PoissonPacer) Next(n int64) (time.Duration, bool) {
	if n != p.next || p.base.arrivals == 0 {
		return 0, true
	}
	p.u += p.rng.ExpFloat64()
	if p.u >= float64(p.base.arrivals) {
		return 0, true
	}
	p.next++
	return p.base.s.TimeOfArrival(p.u * float64(p.base.total) / float64(p.base.arrivals)), false
}

// Rate implements Pacer: the schedule's rate for this agent.
func (p *PoissonPacer) Rate(elapsed time.Duration) float64 { return p.base.Rate(elapsed) }

// warp maps schedule time to real time: M(t) = ∫ m over [0, t), with m the
// rate multiplier.
type warp interface {
	// inverse returns the real time t with M(t) = tau.
	inverse(tau time.Duration) time.Duration
	// at returns M(t) and m(t).
	at(t time.Duration) (time.Duration, float64)
}

// WarpPacer sends a base pacer's arrivals in warped time: an arrival the
// base schedules at tau is due at M⁻¹(tau), so the rate is the base rate
// times the multiplier m.
type WarpPacer struct {
	base Pacer
	warp warp
}

var _ Pacer = (*WarpPacer)(nil)

// Next implements Pacer.
func (p *WarpPacer) Next(n int64) (time.Duration, bool) {
	tau, stop := p.base.Next(n)
	if stop {
		return 0, true
	}
	return p.warp.inverse(tau), false
}

// Rate implements Pacer.
func (p *WarpPacer) Rate(elapsed time.Duration) float64 {
	m, f := p.warp.at(elapsed)
	return p.base.Rate(m) * f
}

// countingWarpPacer is a WarpPacer over a deterministic schedule, which
// can count the arrivals due.
type countingWarpPacer struct {
	*WarpPacer
	sp *SchedulePacer
}

var _ DueCounter = countingWarpPacer{}

// DueBy implements DueCounter.
func (p countingWarpPacer) DueBy(elapsed time.Duration) int64 {
	return int64(sort.Search(int(p.sp.arrivals), func(j int) bool {
		due, _ := p.Next(int64(j))
		return due > elapsed
	}))
}

// onOffWarp is a square-wave multiplier: hi for on, lo for off, with
// hi·on + lo·off = on+off, scaled by k so that M(length) = length.
type onOffWarp struct {
	on, cycle float64 // seconds
	hi, lo    float64
}

func newOnOffWarp(o *plan.OnOff, length time.Duration) *onOffWarp {
	on, off := o.On.D().Seconds(), o.Off.D().Seconds()
	w := &onOffWarp{on: on, cycle: on + off, hi: o.Factor, lo: (on + off - o.Factor*on) / off}
	w.lo = max(w.lo, 0)
	if l := length.Seconds(); l > 0 {
		raw := w.rawM(l)
		if raw > 0 {
			k := l / raw
			w.hi, w.lo = w.hi*k, w.lo*k
		}
	}
	return w
}

func (w *onOffWarp) rawM(t float64) float64 {
	n := math.Floor(t / w.cycle)
	r := t - n*w.cycle
	m := n * (w.hi*w.on + w.lo*(w.cycle-w.on))
	if r < w.on {
		return m + w.hi*r
	}
	return m + w.hi*w.on + w.lo*(r-w.on)
}

func (w *onOffWarp) at(t time.Duration) (time.Duration, float64) {
	x := t.Seconds()
	f := w.lo
	if x-math.Floor(x/w.cycle)*w.cycle < w.on {
		f = w.hi
	}
	return secs(w.rawM(x)), f
}

func (w *onOffWarp) inverse(tau time.Duration) time.Duration {
	x := tau.Seconds()
	per := w.hi*w.on + w.lo*(w.cycle-w.on)
	n := math.Floor(x / per)
	r := x - n*per
	t := n * w.cycle
	if r < w.hi*w.on || w.lo == 0 {
		return secs(t + r/w.hi)
	}
	return secs(t + w.on + (r-w.hi*w.on)/w.lo)
}

// mmppWarp is a Markov-modulated multiplier, generated lazily: the state
// path is drawn as far as needed and kept (a few entries per dwell time).
type mmppWarp struct {
	mu      sync.Mutex
	rng     *rand.Rand
	factors []float64 // normalised
	dwells  []float64 // mean seconds
	// segs[i] starts at real time start[i] (and warped time mstart[i]) in
	// state state[i].
	start, mstart []float64
	state         []int
	cursor        int
}

func newMMPPWarp(m *plan.MMPP, seed uint64) *mmppWarp {
	w := &mmppWarp{rng: rand.New(rand.NewPCG(seed, seed>>1|1))}
	var fd, d float64
	for _, st := range m.States {
		fd += st.RateFactor * st.MeanDwell.D().Seconds()
		d += st.MeanDwell.D().Seconds()
	}
	for _, st := range m.States {
		w.factors = append(w.factors, st.RateFactor*d/fd)
		w.dwells = append(w.dwells, st.MeanDwell.D().Seconds())
	}
	w.start, w.mstart, w.state = []float64{0}, []float64{0}, []int{w.rng.IntN(len(w.factors))}
	return w
}

// extend draws the next state change.
func (w *mmppWarp) extend() {
	i := len(w.state) - 1
	s := w.state[i]
	d := w.rng.ExpFloat64() * w.dwells[s]
	next := w.rng.IntN(len(w.factors) - 1)
	if next >= s {
		next++
	}
	w.start = append(w.start, w.start[i]+d)
	w.mstart = append(w.mstart, w.mstart[i]+d*w.factors[s])
	w.state = append(w.state, next)
}

func (w *mmppWarp) at(t time.Duration) (time.Duration, float64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	x := t.Seconds()
	for w.start[len(w.start)-1] <= x {
		w.extend()
	}
	i := sort.SearchFloat64s(w.start, x)
	if i == len(w.start) || w.start[i] > x {
		i--
	}
	i = max(i, 0)
	f := w.factors[w.state[i]]
	return secs(w.mstart[i] + (x-w.start[i])*f), f
}

func (w *mmppWarp) inverse(tau time.Duration) time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	x := tau.Seconds()
	for {
		for w.cursor+1 >= len(w.start) {
			w.extend()
		}
		if w.mstart[w.cursor+1] > x {
			break
		}
		w.cursor++
	}
	i := w.cursor
	f := w.factors[w.state[i]]
	if f == 0 {
		return secs(w.start[i])
	}
	return secs(w.start[i] + (x-w.mstart[i])/f)
}

func secs(x float64) time.Duration { return time.Duration(math.Round(x * float64(time.Second))) }
