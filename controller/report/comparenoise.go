package report

import (
	"math"
	"strings"

	"github.com/HdrHistogram/hdrhistogram-go"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
)

// quantileRange is the distribution-free 95% confidence interval of
// quantile q of h's values, in milliseconds: the order statistics of ranks
// n·q ∓ NoiseZ·√(n·q·(1−q)) (the binomial count of values below the true
// quantile, in its normal approximation). The high end is +Inf when that
// rank is beyond the last value.
func quantileRange(h *hdrhistogram.Histogram, q float64) [2]float64 {
	n := float64(h.TotalCount())
	half := NoiseZ * math.Sqrt(n*q*(1-q))
	lo, hi := math.Floor(n*q-half), math.Ceil(n*q+half)
	at := func(rank float64) float64 {
		rank = max(rank, 1)
		return float64(h.ValueAtQuantile(100*rank/n)) / 1000
	}
	r := [2]float64{at(lo), math.Inf(1)}
	if hi <= n {
		r[1] = at(hi)
	}
	return r
}

// beyond is the share of values above a percentile metric, in thousandths
// (p99: 10); false for other metrics.
func beyond(metric string) (int64, bool) {
	switch strings.TrimSuffix(metric, ExpectedSuffix) {
	case "p50_ms":
		return 500, true
	case "p95_ms":
		return 50, true
	case "p99_ms":
		return 10, true
	case "p999_ms":
		return 1, true
	}
	return 0, false
}

// thin reports whether n latency values are too few to estimate metric, a
// percentile: fewer than TailMinValues lie beyond it.
func thin(metric string, n int64) bool {
	b, ok := beyond(metric)
	return ok && n*b < TailMinValues*1000
}

// ExpectedSuffix marks a percentile of expected responses only (status
// 1xx-3xx, not failures), as k6's tag: "p95_ms{expected_response:true}".
const ExpectedSuffix = "{expected_response:true}"

// sampleCount is how many latency values metric, a percentile, is read
// from.
func (v metricValues) sampleCount(metric string) int64 {
	if strings.HasSuffix(metric, ExpectedSuffix) {
		return v.expSamples
	}
	return v.samples
}

// isRate reports whether metric is a share of requests (error_rate and
// error_rate.NAME).
func isRate(metric string) bool { return strings.HasPrefix(metric, "error_rate") }

// wilson is the 95% Wilson score interval of the proportion x/n.
func wilson(x, n int64) [2]float64 {
	p, fn, z2 := float64(x)/float64(n), float64(n), NoiseZ*NoiseZ
	center := (p + z2/(2*fn)) / (1 + z2/fn)
	half := NoiseZ * math.Sqrt(p*(1-p)/fn+z2/(4*fn*fn)) / (1 + z2/fn)
	return [2]float64{max(center-half, 0), min(center+half, 1)}
}

// sideRange is one side's 95% confidence interval of a percentile or a
// rate, [v, v] for exact figures; false for other metrics or without data.
func sideRange(metric string, s metricValues, v float64) ([2]float64, bool) {
	_, pct := beyond(metric)
	switch {
	case !pct && !isRate(metric):
		return [2]float64{}, false
	case s.exact:
		return [2]float64{v, v}, true
	case isRate(metric):
		return wilson(s.counts[metric], s.requests), s.requests > 0
	}
	r, ok := s.ranges[metric]
	return r, ok
}

// setNoise sets d's confidence intervals and whether the difference is
// within noise: for a percentile, the two sides' intervals overlap; for a
// rate, Newcombe's interval of the difference of two proportions (built
// from both sides' Wilson intervals) holds 0.
func setNoise(d *surgev1.MetricDiff, a, b metricValues) {
	ar, aok := sideRange(d.Metric, a, d.A)
	br, bok := sideRange(d.Metric, b, d.B)
	if !aok || !bok {
		return
	}
	d.ALow, d.AHigh, d.BLow, d.BHigh = ar[0], ar[1], br[0], br[1]
	if !isRate(d.Metric) {
		d.Noise = ar[0] <= br[1] && br[0] <= ar[1]
		return
	}
	diff := d.B - d.A
	lo := diff - math.Hypot(d.B-br[0], ar[1]-d.A)
	hi := diff + math.Hypot(br[1]-d.B, d.A-ar[0])
	d.Noise = lo <= 0 && 0 <= hi
}
