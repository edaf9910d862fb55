package hist

import (
	"math/rand/v2"
	"testing"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
)

// ValidateAndMergeProto merges exactly what ValidateProto + MergeProto
// merge, and nothing at all from a snapshot with one bad series.
func TestValidateAndMergeProto(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	src := NewSet()
	for k := 0; k < 5; k++ {
		sr := src.Get(Key{Scenario: "s", Request: string(rune('a' + k)), Status: "2xx"})
		h, _ := randomHist(r, 500)
		sr.Latency.Merge(h)
		if k != 2 { // one series without service times
			h, _ = randomHist(r, 300)
			sr.Service.Merge(h)
		}
		sr.Counters.Requests = 500
	}
	ps := src.ToProto()
	want, got := NewSet(), NewSet()
	for i := 0; i < 3; i++ { // several times: got's scratch is reused
		if err := ValidateProto(ps, 10); err != nil {
			t.Fatal(err)
		}
		if _, err := want.MergeProto(ps); err != nil {
			t.Fatal(err)
		}
		if d, err := got.ValidateAndMergeProto(ps, 10); err != nil || d != 0 {
			t.Fatalf("dropped %d, %v", d, err)
		}
	}
	if got.Len() != want.Len() {
		t.Fatalf("%d series, want %d", got.Len(), want.Len())
	}
	for _, k := range want.Keys() {
		w, g := want.Lookup(k), got.Lookup(k)
		if g == nil || !g.Latency.Equals(w.Latency) || !g.Service.Equals(w.Service) || g.Counters != w.Counters {
			t.Fatalf("series %v differs", k)
		}
	}

	bad := src.ToProto()
	bad[3].Latency.Total++
	empty := NewSet()
	if _, err := empty.ValidateAndMergeProto(bad, 10); err == nil {
		t.Fatal("bad snapshot accepted")
	}
	if empty.Len() != 0 {
		t.Fatal("bad snapshot half merged")
	}
	if _, err := empty.ValidateAndMergeProto(ps, 4); err == nil {
		t.Fatal("series limit not enforced")
	}
}

// Counts too large for the pending 32-bit counts are merged exactly: a
// histogram of over 2^31 values, and pending counts that would pass 2^31
// together.
func TestHugeCountsMergeExactly(t *testing.T) {
	h := New()
	_ = h.RecordValues(1_000, 3_000_000_000)
	_ = h.RecordValues(2_000, 5)
	big := &surgev1.Series{Key: &surgev1.SeriesKey{Scenario: "s"}, Counters: &surgev1.Counters{}, Latency: ToProto(h)}
	m := New()
	_ = m.RecordValues(1_000, 1_500_000_000)
	mid := &surgev1.Series{Key: &surgev1.SeriesKey{Scenario: "s"}, Counters: &surgev1.Counters{}, Latency: ToProto(m)}

	want := New()
	got := NewSet()
	for _, ps := range [][]*surgev1.Series{{mid}, {mid}, {big}, {mid, big}} {
		for _, p := range ps {
			if _, err := MergeProto(want, p.Latency); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := got.ValidateAndMergeProto(ps, 10); err != nil {
			t.Fatal(err)
		}
	}
	if g := got.Lookup(Key{Scenario: "s"}).Latency; !g.Equals(want) {
		t.Fatalf("merged %d values, want %d", g.TotalCount(), want.TotalCount())
	}
	// A huge histogram beside a bad one: nothing merged.
	bad := &surgev1.Series{Key: &surgev1.SeriesKey{Scenario: "t"}, Counters: &surgev1.Counters{}, Latency: ToProto(m)}
	bad.Latency.Total++
	empty := NewSet()
	if _, err := empty.ValidateAndMergeProto([]*surgev1.Series{big, bad}, 10); err == nil || empty.Len() != 0 {
		t.Fatalf("bad snapshot: %v, %d series", err, empty.Len())
	}
}
