package hist

import (
	"math/rand/v2"
	"testing"

	"github.com/HdrHistogram/hdrhistogram-go"
	"google.golang.org/protobuf/proto"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
)

// assertEmpty fails unless h is exactly a new histogram's state.
func assertEmpty(t *testing.T, h *hdrhistogram.Histogram) {
	t.Helper()
	if h.TotalCount() != 0 || h.Min() != 0 || h.Max() != 0 || h.Mean() != 0 || h.ValueAtQuantile(99) != 0 {
		t.Fatalf("reused histogram not empty: total %d min %d max %d mean %v", h.TotalCount(), h.Min(), h.Max(), h.Mean())
	}
	if !h.Equals(New()) {
		t.Fatal("reused histogram differs from a new one")
	}
	if ToProto(h) != nil {
		t.Fatal("reused histogram encodes values")
	}
}

func TestPoolReusesExactlyEmpty(t *testing.T) {
	p := NewPool(4)
	h := p.Get()
	for v := range int64(5000) {
		_ = h.RecordValues(1+v*997, v+1)
	}
	h.SetTag("old")
	h.SetStartTimeMs(5)
	p.Put(h)
	g := p.Get()
	if g != h {
		t.Fatal("Get after Put did not reuse the histogram")
	}
	assertEmpty(t, g)
	if g.Tag() != "" || g.StartTimeMs() != 0 {
		t.Fatalf("reused histogram keeps tag %q start %d", g.Tag(), g.StartTimeMs())
	}

	// Merge buffers: a released set's pending counts are cleared.
	a := p.getAccum()
	if _, err := a.add(New(), ToProto(histOf(1, 50, 7000)), &Merger{}); err != nil {
		t.Fatal(err)
	}
	p.putAccum(a)
	b := p.getAccum()
	if b != a || b.total != 0 || b.single || len(b.first) != 0 {
		t.Fatalf("reused buffer %p (put %p): total %d single %v first %d", b, a, b.total, b.single, len(b.first))
	}
	for i, c := range b.c {
		if c != 0 {
			t.Fatalf("reused buffer holds %d at %d", c, i)
		}
	}
	if st := p.Stats(); st.Reused != 2 || st.Allocated != 2 || st.Kept != 2 || st.Dropped != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func histOf(lo, hi int64, n int) *hdrhistogram.Histogram {
	h := New()
	r := rand.New(rand.NewPCG(uint64(lo), uint64(hi)))
	for range n {
		_ = h.RecordValue(lo + r.Int64N(hi-lo+1))
	}
	return h
}

func TestPoolBounded(t *testing.T) {
	p := NewPool(2)
	a, b, c := New(), New(), New()
	p.Put(a)
	p.Put(a) // a double Put must not hand a out twice
	p.Put(b)
	p.Put(c) // full
	p.Put(hdrhistogram.New(1, 1000, 2))
	p.Put(nil)
	if n, _ := p.Len(); n != 2 {
		t.Fatalf("pool holds %d histograms, want 2", n)
	}
	if st := p.Stats(); st.Kept != 2 || st.Dropped != 2 {
		t.Fatalf("stats %+v, want 2 kept, 2 dropped", st)
	}
	if x, y := p.Get(), p.Get(); x == y {
		t.Fatal("one histogram handed out twice")
	}
	var nilPool *Pool
	nilPool.Put(New())
	if h := nilPool.Get(); h == nil || h.TotalCount() != 0 {
		t.Fatal("nil pool Get")
	}
}

// wireSnapshot is a random agent snapshot: a few series of latencies,
// service times and, for some, phases.
func wireSnapshot(r *rand.Rand) []*surgev1.Series {
	s := NewSet()
	for k := range 1 + r.IntN(4) {
		sr := s.Get(Key{Scenario: "s", Request: string(rune('a' + k)), Status: []string{"2xx", "5xx", "timeout"}[r.IntN(3)]})
		for range 1 + r.IntN(300) {
			sr.Counters.Requests++
			_ = sr.Latency.RecordValue(1 + r.Int64N(5_000_000))
			_ = sr.Service.RecordValue(1 + r.Int64N(50_000))
			if k%2 == 1 {
				sr.RecordPhase(PhaseTTFB, 1+r.Int64N(40_000))
			}
			if r.IntN(50) == 0 {
				sr.RecordPhase(PhaseConnect, 1+r.Int64N(4_000))
			}
		}
	}
	return s.ToProto()
}

// TestPoolSetMergesExactly merges the same snapshots into fresh sets and
// into pooled sets that reuse the histograms of released ones, with
// late merges, invalid snapshots (rolled back) and whole-set merges between:
// every interval's encoding and the running total must be identical.
func TestPoolSetMergesExactly(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	p := NewPool(64)
	freshTotal, poolTotal := NewSet(), NewSet()
	var retained []*Set
	for iv := range 40 {
		fresh, pooled := NewSet(), NewPoolSet(p)
		for range 1 + r.IntN(3) {
			ps := wireSnapshot(r)
			if r.IntN(5) == 0 { // a bad histogram last: what came before is rolled back
				bad := proto.Clone(ps[len(ps)-1]).(*surgev1.Series)
				bad.Latency.Total++
				bad.Key.Request = "new"
				bad2 := append(append([]*surgev1.Series{}, ps...), bad)
				if _, err := pooled.ValidateAndMergeProto(bad2, 100); err == nil {
					t.Fatal("invalid snapshot merged")
				}
			}
			if _, err := fresh.ValidateAndMergeProto(ps, 100); err != nil {
				t.Fatal(err)
			}
			if _, err := pooled.ValidateAndMergeProto(ps, 100); err != nil {
				t.Fatal(err)
			}
		}
		if iv%3 == 0 {
			ps := wireSnapshot(r) // a late one
			if _, err := fresh.MergeProto(ps); err != nil {
				t.Fatal(err)
			}
			if _, err := pooled.MergeProto(ps); err != nil {
				t.Fatal(err)
			}
		}
		freshTotal.Merge(fresh)
		poolTotal.Merge(pooled)
		want, got := fresh.ToProto(), pooled.ToProto()
		if len(want) != len(got) {
			t.Fatalf("interval %d: %d series, want %d", iv, len(got), len(want))
		}
		for i := range want {
			if !proto.Equal(want[i], got[i]) {
				t.Fatalf("interval %d series %d differs with reuse", iv, i)
			}
		}
		retained = append(retained, pooled)
		if len(retained) > 2 {
			retained[0].Release()
			if retained[0].Len() != 0 {
				t.Fatal("released set not empty")
			}
			retained = retained[1:]
		}
	}
	if st := p.Stats(); st.Reused == 0 {
		t.Fatalf("nothing reused: %+v", st)
	}
	want, got := freshTotal.ToProto(), poolTotal.ToProto()
	for i := range want {
		if !proto.Equal(want[i], got[i]) {
			t.Fatalf("total series %d differs with reuse", i)
		}
	}
	wt, gt := freshTotal.Total(nil), poolTotal.Total(nil)
	if !wt.Latency.Equals(gt.Latency) || wt.Counters != gt.Counters || wt.Latency.ValueAtQuantile(99.9) != gt.Latency.ValueAtQuantile(99.9) {
		t.Fatal("total differs with reuse")
	}
}

func BenchmarkPoolSetInterval(b *testing.B) {
	ps := snapshotSeries(b)
	for _, pooled := range []bool{false, true} {
		name := "fresh"
		if pooled {
			name = "pooled"
		}
		b.Run(name, func(b *testing.B) {
			var p *Pool
			if pooled {
				p = NewPool(64)
			}
			b.ReportAllocs()
			for b.Loop() {
				s := NewPoolSet(p)
				if _, err := s.ValidateAndMergeProto(ps, 100); err != nil {
					b.Fatal(err)
				}
				s.Release()
			}
		})
	}
}
