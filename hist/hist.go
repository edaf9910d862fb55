// Package hist holds surge's latency histograms and series: HdrHistograms of
// microseconds (1 µs to 1 h, 3 significant digits), their sparse wire form,
// their standard V2 encoding, and sets of series keyed by scenario, flow,
// request and status. The agent records into a Set; the controller merges
// Sets exactly. Percentiles are only ever read from merged histograms.
package hist

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/HdrHistogram/hdrhistogram-go"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
)

// The one histogram geometry surge uses everywhere: values in microseconds.
const (
	Lowest  int64 = 1
	Highest int64 = 3_600_000_000 // one hour
	SigFigs       = 3

	// Geometry derived from the constants above (checked by a test against
	// hdrhistogram-go): 2048 sub-buckets, 22 buckets.
	subBucketHalfCountMagnitude = 10
	subBucketHalfCount          = 1 << subBucketHalfCountMagnitude
	countsLen                   = 23 * subBucketHalfCount

	// MaxSparseBytes bounds one encoded histogram on the wire: two varints of
	// at most 10 bytes for every possible index.
	MaxSparseBytes = countsLen * 20
)

// New returns an empty histogram with surge's geometry.
func New() *hdrhistogram.Histogram {
	return hdrhistogram.New(Lowest, Highest, SigFigs)
}

// Clamp bounds v to the trackable range. Values below 1 µs are recorded as
// 1 µs; values above one hour as one hour.
func Clamp(v int64) int64 {
	if v < Lowest {
		return Lowest
	}
	if v > Highest {
		return Highest
	}
	return v
}

// valueAt is the lowest value that maps to flat counts index idx; recording
// it lands in idx again.
func valueAt(idx int) int64 {
	bucket := (idx >> subBucketHalfCountMagnitude) - 1
	sub := (idx & (subBucketHalfCount - 1)) + subBucketHalfCount
	if bucket < 0 {
		sub -= subBucketHalfCount
		bucket = 0
	}
	return int64(sub) << uint(bucket)
}

// ToProto encodes h in the sparse wire form. A nil or empty h gives nil.
func ToProto(h *hdrhistogram.Histogram) *surgev1.Histogram {
	if h == nil || h.TotalCount() == 0 {
		return nil
	}
	counts := h.Export().Counts
	buf := make([]byte, 0, 64)
	prev := 0
	first := true
	for i, c := range counts {
		if c == 0 {
			continue
		}
		gap := i - prev
		if first {
			gap, first = i, false
		}
		buf = binary.AppendUvarint(buf, uint64(gap))
		buf = binary.AppendUvarint(buf, uint64(c))
		prev = i
	}
	return &surgev1.Histogram{
		Lowest:  Lowest,
		Highest: Highest,
		SigFigs: SigFigs,
		Sparse:  buf,
		Total:   h.TotalCount(),
	}
}

// ErrInvalid marks a wire histogram that failed validation.
var ErrInvalid = errors.New("invalid histogram")

// forEach decodes p's sparse counts, checking geometry, bounds and total, and
// calls fn for every (value, count). fn is not called at all when p is
// invalid.
func forEach(p *surgev1.Histogram, fn func(value, count int64)) error {
	if p == nil {
		return nil
	}
	if p.GetLowest() != Lowest || p.GetHighest() != Highest || p.GetSigFigs() != SigFigs {
		return fmt.Errorf("%w: geometry %d..%d/%d, want %d..%d/%d", ErrInvalid,
			p.GetLowest(), p.GetHighest(), p.GetSigFigs(), Lowest, Highest, SigFigs)
	}
	if len(p.GetSparse()) > MaxSparseBytes {
		return fmt.Errorf("%w: %d sparse bytes, at most %d", ErrInvalid, len(p.GetSparse()), MaxSparseBytes)
	}
	// Two passes: validate everything, then apply, so a bad histogram is
	// never half merged.
	var total int64
	if err := decodeSparse(p.GetSparse(), func(idx int, c int64) error {
		if c > math.MaxInt64-total {
			return fmt.Errorf("%w: counts overflow", ErrInvalid)
		}
		total += c
		return nil
	}); err != nil {
		return err
	}
	if total != p.GetTotal() {
		return fmt.Errorf("%w: counts sum to %d, total says %d", ErrInvalid, total, p.GetTotal())
	}
	return decodeSparse(p.GetSparse(), func(idx int, c int64) error {
		fn(valueAt(idx), c)
		return nil
	})
}

func decodeSparse(b []byte, fn func(idx int, c int64) error) error {
	idx := -1
	for len(b) > 0 {
		gap, n := binary.Uvarint(b)
		if n <= 0 {
			return fmt.Errorf("%w: bad index varint", ErrInvalid)
		}
		b = b[n:]
		c, m := binary.Uvarint(b)
		if m <= 0 {
			return fmt.Errorf("%w: bad count varint", ErrInvalid)
		}
		b = b[m:]
		if idx < 0 {
			if gap >= countsLen {
				return fmt.Errorf("%w: index %d out of range", ErrInvalid, gap)
			}
			idx = int(gap)
		} else {
			if gap == 0 || gap >= uint64(countsLen-idx) {
				return fmt.Errorf("%w: index gap %d out of range", ErrInvalid, gap)
			}
			idx += int(gap)
		}
		if c == 0 || c > math.MaxInt64 {
			return fmt.Errorf("%w: count %d at index %d", ErrInvalid, c, idx)
		}
		if err := fn(idx, int64(c)); err != nil {
			return err
		}
	}
	return nil
}

// Validate checks a wire histogram without merging it.
func Validate(p *surgev1.Histogram) error {
	return forEach(p, func(int64, int64) {})
}

// MergeProto adds the wire histogram p into dst exactly. It validates p
// first; an invalid p changes nothing. dropped counts values dst could not
// hold (none with surge's geometry).
func MergeProto(dst *hdrhistogram.Histogram, p *surgev1.Histogram) (dropped int64, err error) {
	err = forEach(p, func(v, c int64) {
		if dst.RecordValues(v, c) != nil {
			dropped += c
		}
	})
	return dropped, err
}

// FromProto decodes a wire histogram into a new histogram.
func FromProto(p *surgev1.Histogram) (*hdrhistogram.Histogram, error) {
	h := New()
	if _, err := MergeProto(h, p); err != nil {
		return nil, err
	}
	return h, nil
}

// EncodeV2 is the standard HdrHistogram V2 compressed encoding of h, readable
// by every HdrHistogram implementation.
func EncodeV2(h *hdrhistogram.Histogram) ([]byte, error) {
	b, err := h.Encode(hdrhistogram.V2CompressedEncodingCookieBase)
	if err != nil {
		return nil, fmt.Errorf("hist: encode v2: %w", err)
	}
	return b, nil
}

// DecodeV2 decodes a V2 (compressed) histogram.
func DecodeV2(b []byte) (*hdrhistogram.Histogram, error) {
	h, err := hdrhistogram.Decode(b)
	if err != nil {
		return nil, fmt.Errorf("hist: decode v2: %w", err)
	}
	return h, nil
}

// Summarize reads the standard percentiles of h, in microseconds.
func Summarize(h *hdrhistogram.Histogram) *surgev1.LatencyStats {
	if h == nil || h.TotalCount() == 0 {
		return &surgev1.LatencyStats{}
	}
	return &surgev1.LatencyStats{
		P50:  h.ValueAtQuantile(50),
		P90:  h.ValueAtQuantile(90),
		P95:  h.ValueAtQuantile(95),
		P99:  h.ValueAtQuantile(99),
		P999: h.ValueAtQuantile(99.9),
		Max:  h.Max(),
		Min:  h.Min(),
		Mean: h.Mean(),
	}
}
