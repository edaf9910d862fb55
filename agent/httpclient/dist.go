package httpclient

import (
	"math/rand/v2"
	"time"

	"github.com/surgeload/surge/plan"
)

// sampleDist draws a duration from d: constant, uniform [min, max], normal
// (truncated at 0) or exponential with the given mean. It is the
// executor's SampleDist (agent/executor), which this package cannot import.
func sampleDist(d *plan.Dist, rng *rand.Rand) time.Duration {
	switch {
	case d == nil:
		return 0
	case len(d.Uniform) == 2:
		lo, hi := d.Uniform[0].D(), d.Uniform[1].D()
		if hi <= lo {
			return lo
		}
		return lo + time.Duration(rng.Int64N(int64(hi-lo)+1))
	case d.Normal != nil:
		x := float64(d.Normal.Mean.D()) + rng.NormFloat64()*float64(d.Normal.StdDev.D())
		return time.Duration(max(x, 0))
	case d.Exponential > 0:
		return time.Duration(rng.ExpFloat64() * float64(d.Exponential.D()))
	}
	return d.Constant.D()
}
