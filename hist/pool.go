package hist

import (
	"github.com/HdrHistogram/hdrhistogram-go"
)

// Pool is a bounded free list of histograms and of the merge buffers a Set
// adds wire counts into, for sets that come and go: a controller's
// per-interval sets, released a few intervals after they were emitted,
// give their histograms to the sets of the intervals that follow instead
// of to the garbage collector (a histogram is 184 KB, a merge buffer 92 KB).
//
// Its owner creates it (there is no shared one) and uses it from one
// goroutine: a Pool is not safe for concurrent use. It keeps at most n
// histograms and n buffers (NewPool); what is given back beyond that is left to
// the garbage collector (counted in Stats), so a burst of series does not
// pin its memory for the rest of the run. A nil *Pool is valid: Get and
// the sets using it allocate, Put drops.
type Pool struct {
	hists  []*hdrhistogram.Histogram
	accums []*accum
	max    int
	stats  PoolStats
}

// PoolStats counts what a Pool handed out and took back.
type PoolStats struct {
	// Reused and Allocated count Gets (histograms and buffers) served
	// from the free list and by allocating.
	Reused, Allocated int64
	// Kept and Dropped count Puts kept for reuse and left to the garbage
	// collector (free list full, or not surge's geometry).
	Kept, Dropped int64
}

// NewPool returns an empty pool keeping at most n histograms and n merge
// buffers (n < 1: one of each).
func NewPool(n int) *Pool {
	return &Pool{max: max(n, 1)}
}

// Get returns an empty histogram with surge's geometry: a reused one
// (Reset when it was given back) or a new one.
func (p *Pool) Get() *hdrhistogram.Histogram {
	if p == nil {
		return New()
	}
	if h, ok := pop(&p.hists); ok {
		p.stats.Reused++
		return h
	}
	p.stats.Allocated++
	return New()
}

// Put resets h and keeps it for a later Get. The caller must not use h
// afterwards. A nil h, one of another geometry, or one already in the pool
// is not kept twice.
func (p *Pool) Put(h *hdrhistogram.Histogram) {
	if p == nil || h == nil {
		return
	}
	if len(p.hists) >= p.max || h.LowestTrackableValue() != Lowest || h.HighestTrackableValue() != Highest ||
		h.SignificantFigures() != SigFigs {
		p.stats.Dropped++
		return
	}
	for _, o := range p.hists { // at most max: a double Put would hand h out twice
		if o == h {
			return
		}
	}
	h.Reset()
	p.hists = append(p.hists, h)
	p.stats.Kept++
}

// getAccum returns an empty merge buffer: zero counts, nothing pending.
func (p *Pool) getAccum() *accum {
	if p == nil {
		return &accum{c: new(counts)}
	}
	if a, ok := pop(&p.accums); ok {
		p.stats.Reused++
		return a
	}
	p.stats.Allocated++
	return &accum{c: new(counts)}
}

// putAccum empties a and keeps it, with its counts and its copy of sparse
// bytes, for a later getAccum.
func (p *Pool) putAccum(a *accum) {
	if p == nil || a == nil {
		return
	}
	if len(p.accums) >= p.max {
		p.stats.Dropped++
		return
	}
	for _, o := range p.accums {
		if o == a {
			return
		}
	}
	clear(a.c[:]) // zero already when folded; a released set's need not be
	*a = accum{c: a.c, first: a.first[:0]}
	p.accums = append(p.accums, a)
	p.stats.Kept++
}

// Len returns how many histograms and merge buffers the pool holds.
func (p *Pool) Len() (hists, buffers int) {
	if p == nil {
		return 0, 0
	}
	return len(p.hists), len(p.accums)
}

// Stats returns what the pool handed out and took back so far.
func (p *Pool) Stats() PoolStats {
	if p == nil {
		return PoolStats{}
	}
	return p.stats
}

// NewPoolSet returns an empty set whose series take their histograms and
// merge buffers from p, and give them back to it on Release.
func NewPoolSet(p *Pool) *Set {
	return &Set{m: make(map[Key]*Series), pool: p}
}

// Release gives every histogram and merge buffer of s to its pool (see
// NewPoolSet; without one they are left to the garbage collector) and
// empties s, which stays usable. No *Series got from s, nor any of its
// histograms, may be used afterwards: they are reused by other sets.
func (s *Set) Release() {
	for _, sr := range s.m {
		sr.release(s.pool)
	}
	clear(s.m)
	s.merger.undo.reset()
}

// release gives sr's histograms and merge buffers to p and clears sr.
func (sr *Series) release(p *Pool) {
	for j := range numHists {
		p.Put(sr.hist(j))
	}
	if sr.pend != nil {
		for _, a := range sr.pend {
			p.putAccum(a)
		}
	}
	*sr = Series{}
}

// pop takes the last element of *s, clearing its slot so the backing array
// does not keep it; false when *s is empty.
func pop[T any](s *[]T) (T, bool) {
	var zero T
	n := len(*s)
	if n == 0 {
		return zero, false
	}
	v := (*s)[n-1]
	(*s)[n-1] = zero
	*s = (*s)[:n-1]
	return v, true
}
