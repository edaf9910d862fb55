package hist

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/HdrHistogram/hdrhistogram-go"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
)

func TestGeometryMatchesLibrary(t *testing.T) {
	if got := len(New().Export().Counts); got != countsLen {
		t.Fatalf("countsLen = %d, library has %d", countsLen, got)
	}
}

func TestValueAtRoundTrips(t *testing.T) {
	h := New()
	for idx := 0; idx < countsLen; idx++ {
		if err := h.RecordValues(valueAt(idx), int64(idx+1)); err != nil {
			t.Fatalf("idx %d: record %d: %v", idx, valueAt(idx), err)
		}
	}
	for idx, c := range h.Export().Counts {
		if c != int64(idx+1) {
			t.Fatalf("index %d holds %d, want %d: valueAt does not invert the index", idx, c, idx+1)
		}
	}
}

func randomHist(r *rand.Rand, n int) (*hdrhistogram.Histogram, []int64) {
	h := New()
	vals := make([]int64, n)
	for i := range vals {
		// Log-uniform from 1 µs to about 1 h.
		v := Clamp(int64(1<<(r.IntN(32))) + r.Int64N(1000))
		vals[i] = v
		if err := h.RecordValue(v); err != nil {
			panic(err)
		}
	}
	return h, vals
}

func TestSparseRoundTripIsExact(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for trial := 0; trial < 50; trial++ {
		h, _ := randomHist(r, 1+r.IntN(5000))
		got, err := FromProto(ToProto(h))
		if err != nil {
			t.Fatal(err)
		}
		if !got.Equals(h) {
			t.Fatalf("trial %d: decoded histogram differs", trial)
		}
	}
	if ToProto(New()) != nil {
		t.Fatal("empty histogram should encode as nil")
	}
	if _, err := FromProto(nil); err != nil {
		t.Fatalf("nil decodes to empty: %v", err)
	}
}

// Merging encoded parts gives exactly the histogram of all raw values.
func TestMergeIsExact(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	all := New()
	merged := New()
	for part := 0; part < 7; part++ {
		h, vals := randomHist(r, 1000)
		for _, v := range vals {
			if err := all.RecordValue(v); err != nil {
				t.Fatal(err)
			}
		}
		if d, err := MergeProto(merged, ToProto(h)); err != nil || d != 0 {
			t.Fatalf("merge: dropped %d, %v", d, err)
		}
	}
	if !merged.Equals(all) {
		t.Fatal("merged differs from the histogram of all values")
	}
	for _, q := range []float64{50, 90, 99, 99.9, 100} {
		if merged.ValueAtQuantile(q) != all.ValueAtQuantile(q) {
			t.Fatalf("p%v differs", q)
		}
	}
}

func TestInvalidHistogramsAreRejectedUnmerged(t *testing.T) {
	h := New()
	_ = h.RecordValue(100)
	good := ToProto(h)
	cases := map[string]*surgev1.Histogram{
		"geometry":    {Lowest: 1, Highest: 1000, SigFigs: 3, Sparse: good.Sparse, Total: 1},
		"total":       {Lowest: Lowest, Highest: Highest, SigFigs: SigFigs, Sparse: good.Sparse, Total: 2},
		"truncated":   {Lowest: Lowest, Highest: Highest, SigFigs: SigFigs, Sparse: []byte{0x80}, Total: 1},
		"index range": {Lowest: Lowest, Highest: Highest, SigFigs: SigFigs, Sparse: []byte{0xff, 0xff, 0x03, 1}, Total: 1},
		"zero count":  {Lowest: Lowest, Highest: Highest, SigFigs: SigFigs, Sparse: []byte{5, 0}, Total: 0},
		"zero gap":    {Lowest: Lowest, Highest: Highest, SigFigs: SigFigs, Sparse: []byte{5, 1, 0, 1}, Total: 2},
		"oversize":    {Lowest: Lowest, Highest: Highest, SigFigs: SigFigs, Sparse: bytes.Repeat([]byte{1}, MaxSparseBytes+1)},
	}
	for name, p := range cases {
		t.Run(name, func(t *testing.T) {
			dst := New()
			if _, err := MergeProto(dst, p); err == nil {
				t.Fatal("accepted")
			}
			if dst.TotalCount() != 0 {
				t.Fatal("half merged")
			}
		})
	}
}

func TestV2RoundTrip(t *testing.T) {
	h, _ := randomHist(rand.New(rand.NewPCG(5, 6)), 2000)
	b, err := EncodeV2(h)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeV2(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.TotalCount() != h.TotalCount() || got.ValueAtQuantile(99) != h.ValueAtQuantile(99) {
		t.Fatal("v2 round trip differs")
	}
}

func TestSummarize(t *testing.T) {
	h := New()
	for i := int64(1); i <= 1000; i++ {
		_ = h.RecordValue(i)
	}
	s := Summarize(h)
	if s.P50 != 500 || s.Min != 1 || s.Max != 1000 || s.P99 != 990 {
		t.Fatalf("summary %+v", s)
	}
	if Summarize(New()).P99 != 0 {
		t.Fatal("empty summary")
	}
}

// addSparse accepts exactly what Validate accepts, adds exactly what the
// plain decoder records, and leaves the counts as they were on error,
// also for breaks inside its eight-pairs-at-a-time path.
func TestAddSparseMatchesPlainDecoder(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	c := new(counts)
	for trial := range 1500 {
		h := New()
		n := 1 + r.IntN(3000)
		for range n {
			v := 500 + r.Int64N(50_000) // mostly one-byte gaps and counts
			if trial%3 == 0 {
				v = Clamp(int64(1<<r.IntN(32)) + r.Int64N(1000)) // wide gaps
			}
			_ = h.RecordValues(v, 1+r.Int64N(1+int64(r.IntN(3))*100))
		}
		p := ToProto(h)
		switch r.IntN(6) { // break it, most of the time
		case 0:
			p.Sparse[r.IntN(len(p.Sparse))] = byte(r.IntN(256))
		case 1:
			p.Sparse[r.IntN(len(p.Sparse))] = 0
		case 2:
			p.Sparse = p.Sparse[:r.IntN(len(p.Sparse))]
		case 3:
			p.Total += int64(r.IntN(3)) - 1
		case 4:
			i := r.IntN(len(p.Sparse))
			p.Sparse = append(p.Sparse[:i:i], append([]byte{byte(r.IntN(256))}, p.Sparse[i:]...)...)
		}
		before := *c
		lo, hi, err := addSparse(c, p.Sparse, p.Total)
		verr := Validate(p)
		if (err == nil) != (verr == nil) {
			t.Fatalf("trial %d: addSparse: %v, Validate: %v", trial, err, verr)
		}
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("trial %d: %v does not wrap ErrInvalid", trial, err)
			}
			if *c != before {
				t.Fatalf("trial %d: rejected input (%v) changed the counts", trial, err)
			}
			continue
		}
		want := New()
		if _, err := MergeProto(want, p); err != nil {
			t.Fatal(err)
		}
		for i, n := range want.Export().Counts {
			if got := int64(c[i] - before[i]); got != n {
				t.Fatalf("trial %d: index %d gained %d, want %d", trial, i, got, n)
			}
			if n != 0 && (i < lo || i > hi) {
				t.Fatalf("trial %d: index %d outside [%d, %d]", trial, i, lo, hi)
			}
		}
	}
}
