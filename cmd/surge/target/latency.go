package target

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"time"
)

// Latency is a distribution of response delays.
type Latency struct {
	kind latencyKind
	a, b time.Duration // constant: a; uniform: [a, b]; normal: mean a, sd b; exp: mean a
}

type latencyKind int

const (
	constant latencyKind = iota
	uniform
	normal
	exponential
)

var errLatencySyntax = errors.New("want a duration or uniform(a,b), normal(mean,sd), exp(mean)")

// ParseLatency reads a latency distribution: a Go duration ("0", "10ms") for
// a constant delay, "uniform(5ms,20ms)", "normal(20ms,5ms)" (truncated at
// zero) or "exp(10ms)" (exponential with that mean). The empty string is 0.
func ParseLatency(s string) (Latency, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Latency{}, nil
	}
	name, rest, ok := strings.Cut(s, "(")
	if !ok {
		d, err := parseNonNegative(s)
		if err != nil {
			return Latency{}, err
		}
		return Latency{kind: constant, a: d}, nil
	}
	args, ok := strings.CutSuffix(rest, ")")
	if !ok {
		return Latency{}, errLatencySyntax
	}
	var ds []time.Duration
	for _, a := range strings.Split(args, ",") {
		d, err := parseNonNegative(a)
		if err != nil {
			return Latency{}, err
		}
		ds = append(ds, d)
	}
	switch name = strings.TrimSpace(name); {
	case name == "uniform" && len(ds) == 2:
		if ds[0] > ds[1] {
			return Latency{}, fmt.Errorf("uniform(a,b): a (%s) is greater than b (%s)", ds[0], ds[1])
		}
		return Latency{kind: uniform, a: ds[0], b: ds[1]}, nil
	case name == "normal" && len(ds) == 2:
		return Latency{kind: normal, a: ds[0], b: ds[1]}, nil
	case (name == "exp" || name == "exponential") && len(ds) == 1:
		return Latency{kind: exponential, a: ds[0]}, nil
	}
	return Latency{}, errLatencySyntax
}

func parseNonNegative(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "0" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, errLatencySyntax
	}
	if d < 0 {
		return 0, fmt.Errorf("negative duration %s", d)
	}
	return d, nil
}

// Draw returns one delay from the distribution; never negative.
func (l Latency) Draw() time.Duration {
	var d float64
	switch l.kind {
	case constant:
		return l.a
	case uniform:
		d = float64(l.a) + rand.Float64()*float64(l.b-l.a)
	case normal:
		d = float64(l.a) + rand.NormFloat64()*float64(l.b)
	case exponential:
		d = rand.ExpFloat64() * float64(l.a)
	}
	if d <= 0 || math.IsNaN(d) {
		return 0
	}
	if d > float64(math.MaxInt64) {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(d)
}

// String writes l in the syntax ParseLatency reads.
func (l Latency) String() string {
	switch l.kind {
	case uniform:
		return fmt.Sprintf("uniform(%s,%s)", l.a, l.b)
	case normal:
		return fmt.Sprintf("normal(%s,%s)", l.a, l.b)
	case exponential:
		return fmt.Sprintf("exp(%s)", l.a)
	}
	return l.a.String()
}
