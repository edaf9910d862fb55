package hist

import (
	"encoding/binary"
	"math"
	"slices"

	"github.com/HdrHistogram/hdrhistogram-go"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
)

// pending is a series' wire counts not yet in its histograms: adding the
// wire's (index, count) pairs to a dense array is cheaper than recording
// each into a Histogram, and a read folds them in once for many merges.
type pending [numHists]*accum

// accum is one histogram's pending counts.
type accum struct {
	c *counts
	// lo and hi bound the indexes that may be non-zero; total is their
	// sum (0: nothing pending, lo and hi are stale).
	lo, hi int
	total  int64
	// With one add since the last fold (single), first copies its sparse
	// bytes, so a fold walks them instead of scanning lo..hi.
	first  []byte
	single bool
}

// add checks wire histogram p and adds its counts to a; on error a is as
// it was. h is the histogram a folds into: counts that would overflow its
// total are dropped, not added. The caller made room (want within
// maxPending - a.total) or, for a larger want, validated p: such counts
// are recorded into h directly.
func (a *accum) add(h *hdrhistogram.Histogram, p *surgev1.Histogram, m *Merger) (dropped int64, err error) {
	if err := checkHeader(p); err != nil {
		return 0, err
	}
	want := p.GetTotal()
	if want < 0 || want > math.MaxInt64-h.TotalCount()-a.total {
		// Not representable: check the counts, add nothing.
		if err := checkSparse(p, nil); err != nil {
			return 0, err
		}
		return want, nil
	}
	if want > maxPending-a.total {
		return m.MergeProto(h, p)
	}
	lo, hi, err := addSparse(a.c, p.GetSparse(), want)
	if err != nil {
		return 0, err
	}
	if lo > hi {
		return 0, nil
	}
	if a.total == 0 {
		a.lo, a.hi = lo, hi
		a.first, a.single = append(a.first[:0], p.GetSparse()...), true
	} else {
		a.lo, a.hi = min(a.lo, lo), max(a.hi, hi)
		a.single = false
	}
	a.total += want
	return 0, nil
}

// forEach calls f with every index that may hold a pending count, in
// increasing order.
func (a *accum) forEach(f func(i int)) {
	if !a.single {
		for i := a.lo; i <= a.hi; i++ {
			f(i)
		}
		return
	}
	b := a.first
	idx := -1
	for i := 0; i < len(b); {
		gap := uint64(b[i])
		if gap < 0x80 {
			i++
		} else {
			gap, i = uvarintSlow(b, i)
		}
		if b[i] < 0x80 {
			i++
		} else {
			_, i = uvarintSlow(b, i)
		}
		if idx < 0 {
			idx = int(gap)
		} else {
			idx += int(gap)
		}
		f(idx)
	}
}

// fold records a's counts into h and clears them.
func (a *accum) fold(h *hdrhistogram.Histogram) {
	if a.total == 0 {
		return
	}
	c := a.c
	if a.single {
		a.forEach(func(i int) {
			// Cannot fail: add kept h's total representable.
			_ = h.RecordValues(valueAt(i), int64(c[i]))
			c[i] = 0
		})
	} else {
		for i := a.lo; i <= a.hi; i++ {
			if n := c[i]; n != 0 {
				_ = h.RecordValues(valueAt(i), int64(n))
				c[i] = 0
			}
		}
	}
	a.total = 0
}

// encodeFold is Encoder.ToProto of h once a is folded into it, for an
// empty h: it encodes the sparse form straight from a's counts while
// folding them, without scanning h.
func (a *accum) encodeFold(e *Encoder, h *hdrhistogram.Histogram) *surgev1.Histogram {
	if a.single { // the one wire form added is the encoding
		sparse := slices.Clone(a.first)
		a.fold(h)
		return &surgev1.Histogram{Lowest: Lowest, Highest: Highest, SigFigs: SigFigs, Sparse: sparse, Total: h.TotalCount()}
	}
	buf := e.buf[:0]
	c := a.c
	prev := -1
	for i := a.lo; i <= a.hi; i++ {
		n := c[i]
		if n == 0 {
			continue
		}
		gap := i - prev
		if prev < 0 {
			gap = i
		}
		buf = binary.AppendUvarint(buf, uint64(gap))
		buf = binary.AppendUvarint(buf, uint64(n))
		prev = i
		_ = h.RecordValues(valueAt(i), int64(n))
		c[i] = 0
	}
	a.total = 0
	e.buf = buf
	return &surgev1.Histogram{Lowest: Lowest, Highest: Highest, SigFigs: SigFigs, Sparse: slices.Clone(buf), Total: h.TotalCount()}
}
