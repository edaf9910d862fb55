package judge

import (
	"fmt"
	"math"
	"slices"
)

// Classes of a judged metric.
const (
	Pass = "pass"
	High = "high"
	Low  = "low"
)

// Rule says how one metric is judged, as Kayenta's canary config does
// (and a judge config file's metrics: entries).
type Rule struct {
	// Confidence is the test's level: a difference counts only when the
	// p-value is below 1 - Confidence and the shift's interval at this
	// level excludes zero. Default 0.98; a config sets it for all.
	Confidence float64 `yaml:"-"`
	// AllowedIncrease and AllowedDecrease are the relative shifts (of A's
	// median) allowed either way: 0.05 lets B be 5% slower.
	AllowedIncrease float64 `yaml:"allowed_increase"`
	AllowedDecrease float64 `yaml:"allowed_decrease"`
	// Direction is which change fails: "increase" (latency: default),
	// "decrease" or "either".
	Direction string `yaml:"direction"`
	// Critical: when it does not pass, the judgement fails.
	Critical bool `yaml:"critical"`
}

// DefaultConfidence is Kayenta's default confidence level.
const DefaultConfidence = 0.98

// Verdict is one metric's judgement.
type Verdict struct {
	Class string
	Test  Test
	// Median is A's median; Relative the shift relative to it.
	Median, Relative float64
	// Reason says why, in a line.
	Reason string
}

// FromValues is the distribution of a series of values (one per interval).
func FromValues(vs []float64) Dist {
	s := slices.Clone(vs)
	slices.Sort(s)
	var d Dist
	for _, v := range s {
		if n := len(d); n > 0 && d[n-1].V == v {
			d[n-1].N++
		} else {
			d = append(d, Bin{V: v, N: 1})
		}
	}
	return d
}

// Classify judges b against a by rule r.
func Classify(a, b Dist, r Rule) Verdict {
	if r.Confidence == 0 {
		r.Confidence = DefaultConfidence
	}
	t := MannWhitney(a, b, r.Confidence)
	v := Verdict{Class: Pass, Test: t, Median: median(a)}
	switch {
	case v.Median != 0:
		v.Relative = t.Shift / math.Abs(v.Median)
	case t.Shift != 0: // from nothing (an error rate of 0): beyond any allowance
		v.Relative = math.Copysign(math.Inf(1), t.Shift)
	}
	alpha := 1 - r.Confidence
	switch {
	case t.P >= alpha || t.Lo <= 0 && t.Hi >= 0:
		v.Reason = fmt.Sprintf("no significant difference (p %.3g)", t.P)
	case t.Shift > 0 && r.Direction != "decrease" && v.Relative > r.AllowedIncrease:
		v.Class = High
		v.Reason = fmt.Sprintf("B higher by %+.1f%% of A's median, %.1f%% allowed (p %.3g)", 100*v.Relative, 100*r.AllowedIncrease, t.P)
	case t.Shift < 0 && r.Direction != "" && r.Direction != "increase" && -v.Relative > r.AllowedDecrease:
		v.Class = Low
		v.Reason = fmt.Sprintf("B lower by %+.1f%% of A's median, %.1f%% allowed (p %.3g)", 100*v.Relative, 100*r.AllowedDecrease, t.P)
	default:
		v.Reason = fmt.Sprintf("shift %+.1f%% of A's median: allowed, or in a direction that passes (p %.3g)", 100*v.Relative, t.P)
	}
	return v
}

// median is d's lower median.
func median(d Dist) float64 {
	half, acc := float64(d.Count())/2, 0.0
	for _, b := range d {
		if acc += float64(b.N); acc >= half {
			return b.V
		}
	}
	return math.NaN()
}

// Score is Kayenta's: the share of metrics that pass, 0–100.
func Score(vs []Verdict) float64 {
	if len(vs) == 0 {
		return 100
	}
	n := 0
	for _, v := range vs {
		if v.Class == Pass {
			n++
		}
	}
	return 100 * float64(n) / float64(len(vs))
}

// Outcome of a score against the pass and marginal bounds (Kayenta's
// defaults 95 and 75).
func Outcome(score, pass, marginal float64) string {
	switch {
	case score >= pass:
		return "pass"
	case score >= marginal:
		return "marginal"
	}
	return "fail"
}
