// Package judge compares two distributions the way canary judges do
// (Kayenta's NetflixACAJudge): a Mann–Whitney U test with a Hodges–Lehmann
// estimate of the shift and its confidence interval, computed exactly on
// histograms (every value of a bucket is its bucket's value, so equal
// buckets are ties) rather than on samples.
package judge

import (
	"math"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Bin is one distinct value and how many times it occurs.
type Bin struct {
	V float64
	N int64
}

// Dist is a distribution: bins sorted by value, counts > 0.
type Dist []Bin

// FromHist is h's distribution, each bucket at its highest equivalent
// value (the value surge's percentiles report).
func FromHist(h *hdrhistogram.Histogram) Dist {
	var d Dist
	for _, b := range h.Distribution() {
		if b.Count > 0 {
			d = append(d, Bin{V: float64(b.To), N: b.Count})
		}
	}
	return d
}

// Count is the number of values in d.
func (d Dist) Count() int64 {
	var n int64
	for _, b := range d {
		n += b.N
	}
	return n
}

// Test is the outcome of a Mann–Whitney U test of b against a.
type Test struct {
	// U is b's statistic: the pairs (a_i, b_j) with b_j > a_i, ties
	// counting a half (R's wilcox.test(b, a)$statistic, W).
	U float64
	// Z is the normal approximation's score, with the tie and continuity
	// corrections; P its two-sided p-value.
	Z, P float64
	// Shift is the Hodges–Lehmann estimate of b's shift from a (the median
	// of every difference b_j - a_i); Lo and Hi its confidence interval.
	Shift, Lo, Hi float64
}

// MannWhitney tests b against a, with a confidence interval on the shift
// at level conf (such as 0.95). Both must hold values.
func MannWhitney(a, b Dist, conf float64) Test {
	n, m := float64(a.Count()), float64(b.Count())
	var t Test
	var ties float64 // sum of t^3 - t over the tied groups of both
	i := 0
	var below float64 // values of a below b's current bin
	for _, bb := range b {
		for i < len(a) && a[i].V < bb.V {
			below += float64(a[i].N)
			i++
		}
		eq := 0.0
		if i < len(a) && a[i].V == bb.V {
			eq = float64(a[i].N)
		}
		t.U += float64(bb.N) * (below + eq/2)
	}
	for _, g := range groups(a, b) {
		ties += g*g*g - g
	}
	N := n + m
	sigma := math.Sqrt(n * m / 12 * ((N + 1) - ties/(N*(N-1))))
	d := t.U - n*m/2
	corr := 0.0
	if d != 0 {
		corr = math.Copysign(0.5, d)
	}
	if sigma > 0 {
		t.Z = (d - corr) / sigma
		t.P = math.Erfc(math.Abs(t.Z) / math.Sqrt2)
	} else {
		t.P = 1
	}
	t.Shift = kthDiff(a, b, n*m/2)
	zq := normalQuantile(1 - (1-conf)/2)
	k := math.Floor(n*m/2 - zq*sigma)
	t.Lo = kthDiff(a, b, max(k, 1))
	t.Hi = kthDiff(a, b, n*m-max(k, 1)+1)
	return t
}

// groups are the sizes of the tied groups of a and b together.
func groups(a, b Dist) []float64 {
	var out []float64
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j == len(b) || i < len(a) && a[i].V < b[j].V:
			out = append(out, float64(a[i].N))
			i++
		case i == len(a) || b[j].V < a[i].V:
			out = append(out, float64(b[j].N))
			j++
		default:
			out = append(out, float64(a[i].N+b[j].N))
			i, j = i+1, j+1
		}
	}
	return out
}

// pairsAtMost counts the pairs with b_j - a_i <= x.
func pairsAtMost(a, b Dist, x float64) float64 {
	var c, left float64
	n := float64(a.Count())
	i := 0
	for _, bb := range b { // a_i >= b_j - x: as b_j grows, fewer a qualify
		for i < len(a) && a[i].V < bb.V-x {
			left += float64(a[i].N)
			i++
		}
		c += float64(bb.N) * (n - left)
	}
	return c
}

// kthDiff is the k-th smallest difference b_j - a_i (k from 1): the
// smallest difference with at least k pairs at or below it, found by
// bisection on the count and snapped to the difference itself.
func kthDiff(a, b Dist, k float64) float64 {
	lo := b[0].V - a[len(a)-1].V
	if pairsAtMost(a, b, lo) >= k {
		return lo
	}
	hi := b[len(b)-1].V - a[0].V // pairsAtMost(lo) < k <= pairsAtMost(hi)
	for range 200 {
		mid := lo + (hi-lo)/2
		if mid == lo || mid == hi {
			break
		}
		if pairsAtMost(a, b, mid) >= k {
			hi = mid
		} else {
			lo = mid
		}
	}
	return snap(a, b, hi)
}

// snap is the largest difference b_j - a_i at or below x.
func snap(a, b Dist, x float64) float64 {
	best := math.Inf(-1)
	i := 0
	for _, bb := range b { // the smallest a_i >= b_j - x gives b_j's largest difference <= x
		for i < len(a) && a[i].V < bb.V-x {
			i++
		}
		if i < len(a) {
			best = max(best, bb.V-a[i].V)
		}
	}
	return best
}

// normalQuantile is the standard normal's p-quantile (0 < p < 1), by
// bisection on erfc: accurate to the float's precision.
func normalQuantile(p float64) float64 {
	lo, hi := -40.0, 40.0
	for range 200 {
		mid := (lo + hi) / 2
		if 0.5*math.Erfc(-mid/math.Sqrt2) < p {
			lo = mid
		} else {
			hi = mid
		}
	}
	return (lo + hi) / 2
}
