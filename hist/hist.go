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
	"math/bits"
	"slices"

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

// indexOf is the flat counts index HdrHistogram gives value v (0 ≤ v ≤
// Highest) with surge's geometry (unit magnitude 0, 2048 sub-buckets); the
// inverse of valueAt on each bucket's lowest value.
func indexOf(v int64) int {
	const subBucketMask = 2*subBucketHalfCount - 1
	bucket := bits.Len64(uint64(v)|subBucketMask) - (subBucketHalfCountMagnitude + 1)
	sub := int(v >> uint(bucket))
	return (bucket+1)<<subBucketHalfCountMagnitude + sub - subBucketHalfCount
}

// Encoder encodes histograms in the sparse wire form, reusing its scratch
// space from one histogram to the next: after the first few calls it
// allocates only the encoded bytes. The zero value is ready to use; an
// Encoder is not safe for concurrent use.
type Encoder struct {
	// packed gathers h's populated buckets in one scan of its counts,
	// without copying the dense array (as Export would: 184 KB).
	packed *hdrhistogram.PackedHistogram
	buf    []byte
}

// ToProto encodes h in the sparse wire form. A nil or empty h gives nil.
func (e *Encoder) ToProto(h *hdrhistogram.Histogram) *surgev1.Histogram {
	if h == nil || h.TotalCount() == 0 {
		return nil
	}
	if e.packed == nil {
		e.packed = hdrhistogram.NewPacked(Lowest, Highest, SigFigs)
	}
	e.packed.Reset()
	e.packed.MergeFrom(h)
	buf := e.buf[:0]
	prev := 0
	first := true
	for v, c := range e.packed.ForEachBucket {
		i := indexOf(v)
		gap := i - prev
		if first {
			gap, first = i, false
		}
		buf = binary.AppendUvarint(buf, uint64(gap))
		buf = binary.AppendUvarint(buf, uint64(c))
		prev = i
	}
	e.buf = buf
	return &surgev1.Histogram{
		Lowest:  Lowest,
		Highest: Highest,
		SigFigs: SigFigs,
		Sparse:  slices.Clone(buf),
		Total:   h.TotalCount(),
	}
}

// ToProto encodes h in the sparse wire form. A nil or empty h gives nil. To
// encode many histograms, reuse an Encoder.
func ToProto(h *hdrhistogram.Histogram) *surgev1.Histogram {
	var e Encoder
	return e.ToProto(h)
}

// ErrInvalid marks a wire histogram that failed validation.
var ErrInvalid = errors.New("invalid histogram")

// checkHeader checks p's geometry and size.
func checkHeader(p *surgev1.Histogram) error {
	if p.GetLowest() != Lowest || p.GetHighest() != Highest || p.GetSigFigs() != SigFigs {
		return fmt.Errorf("%w: geometry %d..%d/%d, want %d..%d/%d", ErrInvalid,
			p.GetLowest(), p.GetHighest(), p.GetSigFigs(), Lowest, Highest, SigFigs)
	}
	if len(p.GetSparse()) > MaxSparseBytes {
		return fmt.Errorf("%w: %d sparse bytes, at most %d", ErrInvalid, len(p.GetSparse()), MaxSparseBytes)
	}
	return nil
}

// uvarintSlow reads a multi-byte varint at b[i:]; next < 0 on a bad one.
// The one-byte case, most of a sparse histogram, is inlined by callers.
//
//go:noinline
func uvarintSlow(b []byte, i int) (v uint64, next int) {
	v, n := binary.Uvarint(b[i:])
	if n <= 0 {
		return 0, -1
	}
	return v, i + n
}

// pair is one populated bucket of a decoded sparse histogram.
type pair struct {
	idx   int32
	count int64
}

// checkSparse checks p's sparse counts: indexes in range and increasing,
// counts positive, their sum equal to p's total. With gather not nil, it
// also appends every (index, count) to *gather; on error *gather holds a
// prefix, which callers discard.
func checkSparse(p *surgev1.Histogram, gather *[]pair) error {
	b := p.GetSparse()
	idx := -1
	var total int64
	for i := 0; i < len(b); {
		gap := uint64(b[i])
		if gap < 0x80 {
			i++
		} else if gap, i = uvarintSlow(b, i); i < 0 {
			return fmt.Errorf("%w: bad index varint", ErrInvalid)
		}
		if i >= len(b) {
			return fmt.Errorf("%w: bad count varint", ErrInvalid)
		}
		c := uint64(b[i])
		if c < 0x80 {
			i++
		} else if c, i = uvarintSlow(b, i); i < 0 {
			return fmt.Errorf("%w: bad count varint", ErrInvalid)
		}
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
		if int64(c) > math.MaxInt64-total {
			return fmt.Errorf("%w: counts overflow", ErrInvalid)
		}
		total += int64(c)
		if gather != nil {
			*gather = append(*gather, pair{idx: int32(idx), count: int64(c)})
		}
	}
	if total != p.GetTotal() {
		return fmt.Errorf("%w: counts sum to %d, total says %d", ErrInvalid, total, p.GetTotal())
	}
	return nil
}

// counts is a dense counts array in HdrHistogram's flat layout for
// surge's geometry: what a wire histogram's pairs index into. Its counts
// are 32-bit, which halves the memory a merge walks through; callers keep
// the sum of what it holds within math.MaxInt32.
type counts = [countsLen]int32

// maxPending bounds the sum of counts one counts array holds.
const maxPending = math.MaxInt32

// Masks for reading eight sparse bytes at once: the high bit of each byte
// (a varint continuation) and one in each byte (to find a zero byte).
const (
	highBits = 0x8080808080808080
	oneBytes = 0x0101010101010101
)

// addSparse checks sparse counts b, which must sum to want, and adds them
// into c in the same pass. On error c is as it was. lo and hi are the
// lowest and highest index added (lo > hi for an empty b). want plus what
// c holds must be at most maxPending (a count that does not fit is only
// ever added by invalid input, which is taken back).
//
// Most pairs are two one-byte varints, so it takes four or eight at a time
// from 8-byte loads with no high bit and no zero byte (a zero is invalid).
func addSparse(c *counts, b []byte, want int64) (lo, hi int, err error) {
	added, lo, hi, total, err := addSparsePrefix(c, b)
	if err == nil && total != want {
		added, err = len(b), fmt.Errorf("%w: counts sum to %d, total says %d", ErrInvalid, total, want)
	}
	if err != nil {
		subSparse(c, b[:added])
		return 0, 0, err
	}
	return lo, hi, nil
}

// addSparsePrefix is addSparse without the total check and without undo:
// on error, the pairs in b[:added] are in c. It is one function, unrolled
// by hand, because inlined helpers or a per-pair call make it slower.
func addSparsePrefix(c *counts, b []byte) (added, lo, hi int, total int64, err error) {
	idx := -1
	i := 0
	for i < len(b) {
		if idx >= 0 && len(b)-i >= 16 && idx < countsLen-8*0x7f && total <= math.MaxInt64-8*0x7f {
			w := binary.LittleEndian.Uint64(b[i:])
			v := binary.LittleEndian.Uint64(b[i+8:])
			if (w|v)&highBits == 0 && ((w-oneBytes)|(v-oneBytes))&highBits == 0 {
				c0, c1, c2, c3 := int64(w>>8&0x7f), int64(w>>24&0x7f), int64(w>>40&0x7f), int64(w>>56)
				c4, c5, c6, c7 := int64(v>>8&0x7f), int64(v>>24&0x7f), int64(v>>40&0x7f), int64(v>>56)
				idx += int(w & 0x7f)
				c[idx] += int32(c0)
				idx += int(w >> 16 & 0x7f)
				c[idx] += int32(c1)
				idx += int(w >> 32 & 0x7f)
				c[idx] += int32(c2)
				idx += int(w >> 48 & 0x7f)
				c[idx] += int32(c3)
				idx += int(v & 0x7f)
				c[idx] += int32(c4)
				idx += int(v >> 16 & 0x7f)
				c[idx] += int32(c5)
				idx += int(v >> 32 & 0x7f)
				c[idx] += int32(c6)
				idx += int(v >> 48 & 0x7f)
				c[idx] += int32(c7)
				total += c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7
				i += 16
				continue
			}
		}
		if idx >= 0 && len(b)-i >= 8 && idx < countsLen-4*0x7f && total <= math.MaxInt64-4*0x7f {
			w := binary.LittleEndian.Uint64(b[i:])
			if w&highBits == 0 && (w-oneBytes)&highBits == 0 {
				c0, c1, c2, c3 := int64(w>>8&0x7f), int64(w>>24&0x7f), int64(w>>40&0x7f), int64(w>>56)
				idx += int(w & 0x7f)
				c[idx] += int32(c0)
				idx += int(w >> 16 & 0x7f)
				c[idx] += int32(c1)
				idx += int(w >> 32 & 0x7f)
				c[idx] += int32(c2)
				idx += int(w >> 48 & 0x7f)
				c[idx] += int32(c3)
				total += c0 + c1 + c2 + c3
				i += 8
				continue
			}
		}
		added = i
		gap := uint64(b[i])
		if gap < 0x80 {
			i++
		} else if gap, i = uvarintSlow(b, i); i < 0 {
			return added, 0, 0, 0, fmt.Errorf("%w: bad index varint", ErrInvalid)
		}
		if i >= len(b) {
			return added, 0, 0, 0, fmt.Errorf("%w: bad count varint", ErrInvalid)
		}
		n := uint64(b[i])
		if n < 0x80 {
			i++
		} else if n, i = uvarintSlow(b, i); i < 0 {
			return added, 0, 0, 0, fmt.Errorf("%w: bad count varint", ErrInvalid)
		}
		if idx < 0 {
			if gap >= countsLen {
				return added, 0, 0, 0, fmt.Errorf("%w: index %d out of range", ErrInvalid, gap)
			}
			idx = int(gap)
			lo = idx
		} else {
			if gap == 0 || gap >= uint64(countsLen-idx) {
				return added, 0, 0, 0, fmt.Errorf("%w: index gap %d out of range", ErrInvalid, gap)
			}
			idx += int(gap)
		}
		if n == 0 || n > math.MaxInt64 {
			return added, 0, 0, 0, fmt.Errorf("%w: count %d at index %d", ErrInvalid, n, idx)
		}
		if int64(n) > math.MaxInt64-total {
			return added, 0, 0, 0, fmt.Errorf("%w: counts overflow", ErrInvalid)
		}
		total += int64(n)
		c[idx] += int32(n)
	}
	if idx < 0 {
		return len(b), 1, 0, 0, nil
	}
	return len(b), lo, idx, total, nil
}

// subSparse takes back the pairs addSparsePrefix added from b.
func subSparse(c *counts, b []byte) {
	idx := -1
	for i := 0; i < len(b); {
		gap := uint64(b[i])
		if gap < 0x80 {
			i++
		} else {
			gap, i = uvarintSlow(b, i)
		}
		n := uint64(b[i])
		if n < 0x80 {
			i++
		} else {
			n, i = uvarintSlow(b, i)
		}
		if idx < 0 {
			idx = int(gap)
		} else {
			idx += int(gap)
		}
		c[idx] -= int32(n)
	}
}

// applySparse adds sparse counts that checkSparse accepted into dst. It
// returns the counts dst could not hold.
func applySparse(dst *hdrhistogram.Histogram, b []byte) (dropped int64) {
	idx := -1
	for i := 0; i < len(b); {
		gap := uint64(b[i])
		if gap < 0x80 {
			i++
		} else {
			gap, i = uvarintSlow(b, i)
		}
		c := uint64(b[i])
		if c < 0x80 {
			i++
		} else {
			c, i = uvarintSlow(b, i)
		}
		if idx < 0 {
			idx = int(gap)
		} else {
			idx += int(gap)
		}
		if dst.RecordValues(valueAt(idx), int64(c)) != nil {
			dropped += int64(c)
		}
	}
	return dropped
}

// Validate checks a wire histogram without merging it.
func Validate(p *surgev1.Histogram) error {
	if p == nil {
		return nil
	}
	if err := checkHeader(p); err != nil {
		return err
	}
	return checkSparse(p, nil)
}

// Merger merges wire histograms in one validating pass over their bytes,
// reusing its scratch space from one histogram to the next. The zero value
// is ready to use; a Merger is not safe for concurrent use.
type Merger struct {
	pairs []pair
	undo  undo // Set.ValidateAndMergeProto: what to take back on error
}

// MergeProto is the function MergeProto: p is validated first, an invalid
// p changes nothing, and dropped counts values dst could not hold.
func (m *Merger) MergeProto(dst *hdrhistogram.Histogram, p *surgev1.Histogram) (dropped int64, err error) {
	if p == nil {
		return 0, nil
	}
	if err := checkHeader(p); err != nil {
		return 0, err
	}
	m.pairs = m.pairs[:0]
	if err := checkSparse(p, &m.pairs); err != nil {
		return 0, err
	}
	for _, pr := range m.pairs {
		if dst.RecordValues(valueAt(int(pr.idx)), pr.count) != nil {
			dropped += pr.count
		}
	}
	return dropped, nil
}

// MergeProtoPacked is MergeProto into a PackedHistogram, whose memory
// follows its populated buckets: for a scratch histogram that is reset
// and refilled often (a dense one costs 184 KB to zero each time).
func (m *Merger) MergeProtoPacked(dst *hdrhistogram.PackedHistogram, p *surgev1.Histogram) (dropped int64, err error) {
	if p == nil {
		return 0, nil
	}
	if err := checkHeader(p); err != nil {
		return 0, err
	}
	m.pairs = m.pairs[:0]
	if err := checkSparse(p, &m.pairs); err != nil {
		return 0, err
	}
	for _, pr := range m.pairs {
		if dst.RecordValues(valueAt(int(pr.idx)), pr.count) != nil {
			dropped += pr.count
		}
	}
	return dropped, nil
}

// NewPacked returns an empty PackedHistogram with surge's geometry.
func NewPacked() *hdrhistogram.PackedHistogram {
	return hdrhistogram.NewPacked(Lowest, Highest, SigFigs)
}

// MergeProto adds the wire histogram p into dst exactly. It validates p
// first; an invalid p changes nothing. dropped counts values dst could not
// hold (none with surge's geometry). It allocates nothing.
func MergeProto(dst *hdrhistogram.Histogram, p *surgev1.Histogram) (dropped int64, err error) {
	if err := Validate(p); err != nil {
		return 0, err
	}
	if p == nil {
		return 0, nil
	}
	return applySparse(dst, p.GetSparse()), nil
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
		P50:   h.ValueAtQuantile(50),
		P90:   h.ValueAtQuantile(90),
		P95:   h.ValueAtQuantile(95),
		P99:   h.ValueAtQuantile(99),
		P999:  h.ValueAtQuantile(99.9),
		Max:   h.Max(),
		Min:   h.Min(),
		Mean:  h.Mean(),
		Count: h.TotalCount(),
	}
}
