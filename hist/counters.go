package hist

import (
	"fmt"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
)

// Counters are per-series sums.
type Counters struct {
	Requests     int64
	Failures     int64
	Retries      int64
	BytesIn      int64
	BytesOut     int64
	ChecksPassed int64
	ChecksFailed int64
	// ExtractFailed counts responses an extraction found nothing in.
	ExtractFailed int64
}

// Add adds o into c.
func (c *Counters) Add(o Counters) {
	c.Requests += o.Requests
	c.Failures += o.Failures
	c.Retries += o.Retries
	c.BytesIn += o.BytesIn
	c.BytesOut += o.BytesOut
	c.ChecksPassed += o.ChecksPassed
	c.ChecksFailed += o.ChecksFailed
	c.ExtractFailed += o.ExtractFailed
}

func countersFromProto(p *surgev1.Counters) Counters {
	return Counters{
		Requests:      p.GetRequests(),
		Failures:      p.GetFailures(),
		Retries:       p.GetRetries(),
		BytesIn:       p.GetBytesIn(),
		BytesOut:      p.GetBytesOut(),
		ChecksPassed:  p.GetChecksPassed(),
		ChecksFailed:  p.GetChecksFailed(),
		ExtractFailed: p.GetExtractFailed(),
	}
}

func (c Counters) proto() *surgev1.Counters {
	return &surgev1.Counters{
		Requests:      c.Requests,
		Failures:      c.Failures,
		Retries:       c.Retries,
		BytesIn:       c.BytesIn,
		BytesOut:      c.BytesOut,
		ChecksPassed:  c.ChecksPassed,
		ChecksFailed:  c.ChecksFailed,
		ExtractFailed: c.ExtractFailed,
	}
}

func (c Counters) valid() error {
	for _, v := range []int64{c.Requests, c.Failures, c.Retries, c.BytesIn, c.BytesOut, c.ChecksPassed, c.ChecksFailed, c.ExtractFailed} {
		if v < 0 {
			return fmt.Errorf("%w: negative counter", ErrInvalid)
		}
	}
	if c.Failures > c.Requests {
		return fmt.Errorf("%w: %d failures of %d requests", ErrInvalid, c.Failures, c.Requests)
	}
	return nil
}
