package sink

import (
	"maps"
	"math"
	"slices"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// DefaultNativeSchema is the native histograms' schema: each power of two
// is split into 2^5 buckets, so a bucket spans a factor of 2^(1/32), and a
// quantile read from it is within 2.2% of the exact value.
const DefaultNativeSchema = 5

// nativeHist is a cumulative integer native histogram of seconds.
type nativeHist struct {
	schema  int32
	count   uint64
	sum     float64
	zero    uint64 // values of exactly 0
	buckets map[int32]uint64
}

func newNativeHist(schema int32) *nativeHist {
	return &nativeHist{schema: schema, buckets: map[int32]uint64{}}
}

// addHDR adds a histogram of microseconds: each HDR bucket's count goes to
// the native bucket of its highest equivalent value (the value surge's own
// percentiles report), so a native quantile lies in the bucket of surge's.
func (n *nativeHist) addHDR(h *hdrhistogram.Histogram) {
	for _, bar := range h.Distribution() {
		if bar.Count == 0 {
			continue
		}
		c := uint64(bar.Count)
		v := float64(bar.To) / 1e6
		n.count += c
		n.sum += v * float64(bar.Count)
		if bar.To <= 0 {
			n.zero += c
			continue
		}
		n.buckets[nativeIndex(v, n.schema)] += c
	}
}

// nativeIndex is the bucket of v > 0: bucket i holds (b^(i-1), b^i] where
// b = 2^(2^-schema).
func nativeIndex(v float64, schema int32) int32 {
	scale := math.Exp2(float64(schema))
	i := int32(math.Ceil(math.Log2(v) * scale))
	upper := func(i int32) float64 { return math.Exp2(float64(i) / scale) }
	for upper(i-1) >= v {
		i--
	}
	for upper(i) < v {
		i++
	}
	return i
}

// sorted returns the populated buckets' indexes in order and their counts.
func (n *nativeHist) sorted() ([]int32, []uint64) {
	idx := slices.Sorted(maps.Keys(n.buckets))
	counts := make([]uint64, len(idx))
	for i, k := range idx {
		counts[i] = n.buckets[k]
	}
	return idx, counts
}

// classicHist is a cumulative classic histogram: counts per upper bound
// (seconds, sorted), the +Inf bucket being count.
type classicHist struct {
	bounds []float64
	counts []uint64 // not cumulative: values in (bounds[i-1], bounds[i]]
	count  uint64
	sum    float64
}

func newClassicHist(bounds []float64) *classicHist {
	return &classicHist{bounds: bounds, counts: make([]uint64, len(bounds))}
}

// addHDR adds a histogram of microseconds, each value at its HDR bucket's
// highest equivalent value.
func (c *classicHist) addHDR(h *hdrhistogram.Histogram) {
	for _, bar := range h.Distribution() {
		if bar.Count == 0 {
			continue
		}
		v := float64(bar.To) / 1e6
		c.count += uint64(bar.Count)
		c.sum += v * float64(bar.Count)
		if i, _ := slices.BinarySearch(c.bounds, v); i < len(c.bounds) {
			c.counts[i] += uint64(bar.Count)
		}
	}
}
