package hist

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"math/rand/v2"
	"testing"

	"google.golang.org/protobuf/proto"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
	"github.com/surgeload/surge/internal/cputime"
)

// cpuPerOp reports the process CPU time (user + system, GC included) per
// iteration as cpu-ns/op when stop is called: on a shared machine wall
// time per op also counts the time other processes held the core.
func cpuPerOp(b *testing.B) (stop func()) {
	b.Helper()
	start := cputime.Process()
	return func() {
		if d := cputime.Process() - start; d > 0 && b.N > 0 {
			b.ReportMetric(float64(d.Nanoseconds())/float64(b.N), "cpu-ns/op")
		}
	}
}

func BenchmarkRecord(b *testing.B) {
	h := New()
	r := rand.New(rand.NewPCG(1, 1))
	vals := make([]int64, 4096)
	for i := range vals {
		vals[i] = 500 + r.Int64N(50_000)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_ = h.RecordValue(vals[i&4095])
	}
}

// snapshotSeries is a typical agent interval: 10 series of 1,000 latencies.
func snapshotSeries(b *testing.B) []*surgev1.Series {
	b.Helper()
	r := rand.New(rand.NewPCG(2, 2))
	s := NewSet()
	for k := 0; k < 10; k++ {
		sr := s.Get(Key{Scenario: "s", Request: string(rune('a' + k)), Status: "2xx"})
		for i := 0; i < 1000; i++ {
			sr.Counters.Requests++
			_ = sr.Latency.RecordValue(500 + r.Int64N(50_000))
			_ = sr.Service.RecordValue(400 + r.Int64N(40_000))
		}
	}
	return s.ToProto()
}

func BenchmarkSnapshotEncode(b *testing.B) {
	r := rand.New(rand.NewPCG(3, 3))
	s := NewSet()
	for k := 0; k < 10; k++ {
		sr := s.Get(Key{Scenario: "s", Request: string(rune('a' + k)), Status: "2xx"})
		for i := 0; i < 1000; i++ {
			_ = sr.Latency.RecordValue(500 + r.Int64N(50_000))
			_ = sr.Service.RecordValue(400 + r.Int64N(40_000))
		}
	}
	b.ReportAllocs()
	var size int
	for i := 0; i < b.N; i++ {
		m, err := proto.Marshal(&surgev1.Snapshot{Series: s.ToProto()})
		if err != nil {
			b.Fatal(err)
		}
		size = len(m)
	}
	b.ReportMetric(float64(size), "bytes/snapshot")
}

// BenchmarkDecodeValidateMerge is BenchmarkDecodeValidateAndMerge with
// validation and merge as separate passes over each histogram's bytes
// (ValidateProto, then MergeProto).
func BenchmarkDecodeValidateMerge(b *testing.B) {
	wire, err := proto.Marshal(&surgev1.Snapshot{Series: snapshotSeries(b)})
	if err != nil {
		b.Fatal(err)
	}
	dst := NewSet()
	b.ReportAllocs()
	b.ResetTimer()
	defer cpuPerOp(b)()
	for i := 0; i < b.N; i++ {
		var s surgev1.Snapshot
		if err := UnmarshalSnapshot(wire, &s); err != nil {
			b.Fatal(err)
		}
		if err := ValidateProto(s.GetSeries(), 1000); err != nil {
			b.Fatal(err)
		}
		if _, err := dst.MergeProto(s.GetSeries()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkToProto is one histogram of 1,000 values to the sparse form.
func BenchmarkToProto(b *testing.B) {
	r := rand.New(rand.NewPCG(4, 4))
	h := New()
	for i := 0; i < 1000; i++ {
		_ = h.RecordValue(500 + r.Int64N(50_000))
	}
	var e Encoder
	b.ReportAllocs()
	for b.Loop() {
		if e.ToProto(h) == nil {
			b.Fatal("nil")
		}
	}
}

// BenchmarkSnapshotGzip is the snapshot of BenchmarkSnapshotEncode
// compressed as gRPC's gzip compressor would: the wire size it would reach.
func BenchmarkSnapshotGzip(b *testing.B) {
	m, err := proto.Marshal(&surgev1.Snapshot{Series: snapshotSeries(b)})
	if err != nil {
		b.Fatal(err)
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	b.ReportAllocs()
	defer cpuPerOp(b)()
	for b.Loop() {
		buf.Reset()
		zw.Reset(&buf)
		_, _ = zw.Write(m)
		_ = zw.Close()
	}
	b.ReportMetric(float64(buf.Len()), "gzip-bytes/snapshot")
}

// BenchmarkFleetInterval is the controller's merge work for one 1-second
// interval of a fleet of 500 agents × 20 series (100 requests per series):
// decode, validate and merge 500 snapshots into one region set.
func BenchmarkFleetInterval(b *testing.B) {
	const agents, series, perSeries = 500, 20, 100
	r := rand.New(rand.NewPCG(5, 5))
	wires := make([][]byte, agents)
	for a := range wires {
		s := NewSet()
		for k := 0; k < series; k++ {
			sr := s.Get(Key{Scenario: "s", Request: string(rune('a' + k)), Status: "2xx"})
			for i := 0; i < perSeries; i++ {
				sr.Counters.Requests++
				_ = sr.Latency.RecordValue(500 + r.Int64N(50_000))
				_ = sr.Service.RecordValue(400 + r.Int64N(40_000))
			}
		}
		w, err := proto.Marshal(&surgev1.Snapshot{Series: s.ToProto()})
		if err != nil {
			b.Fatal(err)
		}
		wires[a] = w
	}
	b.ReportAllocs()
	defer cpuPerOp(b)()
	for b.Loop() {
		dst := NewSet()
		for _, w := range wires {
			var s surgev1.Snapshot
			if err := UnmarshalSnapshot(w, &s); err != nil {
				b.Fatal(err)
			}
			if err := ValidateProto(s.GetSeries(), 1000); err != nil {
				b.Fatal(err)
			}
			if _, err := dst.MergeProto(s.GetSeries()); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkDecodeValidateAndMerge is the controller's path per snapshot:
// its decoder (UnmarshalSnapshot) and Set.ValidateAndMergeProto, one pass
// over each histogram's bytes.
func BenchmarkDecodeValidateAndMerge(b *testing.B) {
	wire, err := proto.Marshal(&surgev1.Snapshot{Series: snapshotSeries(b)})
	if err != nil {
		b.Fatal(err)
	}
	dst := NewSet()
	b.ReportAllocs()
	defer cpuPerOp(b)()
	for b.Loop() {
		var s surgev1.Snapshot
		if err := UnmarshalSnapshot(wire, &s); err != nil {
			b.Fatal(err)
		}
		if _, err := dst.ValidateAndMergeProto(s.GetSeries(), 1000); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeValidateAndMergeRead is BenchmarkDecodeValidateAndMerge
// with the set read (every series looked up, which folds the merged
// counts into its histograms) after every merge, and after every 500th as
// a controller reads an interval's set once 500 agents reported it.
func BenchmarkDecodeValidateAndMergeRead(b *testing.B) {
	wire, err := proto.Marshal(&surgev1.Snapshot{Series: snapshotSeries(b)})
	if err != nil {
		b.Fatal(err)
	}
	for _, every := range []int{1, 500} {
		b.Run(fmt.Sprintf("every=%d", every), func(b *testing.B) {
			dst := NewSet()
			b.ReportAllocs()
			defer cpuPerOp(b)()
			n := 0
			for b.Loop() {
				var s surgev1.Snapshot
				if err := UnmarshalSnapshot(wire, &s); err != nil {
					b.Fatal(err)
				}
				if _, err := dst.ValidateAndMergeProto(s.GetSeries(), 1000); err != nil {
					b.Fatal(err)
				}
				if n++; n%every == 0 {
					for _, k := range dst.Keys() {
						_ = dst.Lookup(k)
					}
				}
			}
		})
	}
}

// BenchmarkUnmarshalSnapshot is the decoding alone of a 10-series
// snapshot: protobuf's, which copies every histogram's bytes, against
// UnmarshalSnapshot, which aliases them.
func BenchmarkUnmarshalSnapshot(b *testing.B) {
	wire, err := proto.Marshal(&surgev1.Snapshot{Series: snapshotSeries(b)})
	if err != nil {
		b.Fatal(err)
	}
	for _, dec := range []struct {
		name string
		f    func([]byte, *surgev1.Snapshot) error
	}{
		{"proto", func(w []byte, s *surgev1.Snapshot) error { return proto.Unmarshal(w, s) }},
		{"surge", UnmarshalSnapshot},
	} {
		b.Run("decoder="+dec.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(wire)))
			defer cpuPerOp(b)()
			for b.Loop() {
				var s surgev1.Snapshot
				if err := dec.f(wire, &s); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
