package hist

import (
	"bytes"
	"math/rand/v2"
	"testing"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
)

// A set merged from the wire reads exactly like one built by recording:
// after one merge or many between reads, through Lookup, Get, Total and
// ToProto.
func TestWireMergesFoldOnRead(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	got, want := NewSet(), NewSet()
	for round := range 12 {
		src := phaseSet(r)
		if _, err := got.ValidateAndMergeProto(src.ToProto(), 10); err != nil {
			t.Fatal(err)
		}
		want.Merge(src)
		if round%3 == 2 {
			continue // several merges before the next read
		}
		switch round % 4 {
		case 0:
			for _, k := range want.Keys() {
				w, g := want.Lookup(k), got.Lookup(k)
				if !g.Latency.Equals(w.Latency) || !g.Service.Equals(w.Service) || g.Counters != w.Counters {
					t.Fatalf("round %d: series %v differs", round, k)
				}
				samePhases(t, "lookup", w, g)
			}
		case 1:
			if w, g := want.Total(nil), got.Total(nil); !g.Latency.Equals(w.Latency) || !g.Service.Equals(w.Service) {
				t.Fatalf("round %d: totals differ", round)
			}
		}
		wp, gp := want.ToProto(), got.ToProto()
		for i := range wp {
			if !bytes.Equal(wp[i].GetLatency().GetSparse(), gp[i].GetLatency().GetSparse()) ||
				!bytes.Equal(wp[i].GetTtfb().GetSparse(), gp[i].GetTtfb().GetSparse()) ||
				wp[i].GetService().GetTotal() != gp[i].GetService().GetTotal() {
				t.Fatalf("round %d: series %d encodes differently", round, i)
			}
		}
	}
	// Encoding a set that only took wire merges comes from the pending
	// counts (one merge, and several).
	for _, merges := range []int{1, 3} {
		src := phaseSet(r)
		s, ref := NewSet(), NewSet()
		for range merges {
			if _, err := s.ValidateAndMergeProto(src.ToProto(), 10); err != nil {
				t.Fatal(err)
			}
			ref.Merge(src)
		}
		wp, gp := ref.ToProto(), s.ToProto()
		for i := range wp {
			for j := range numHists {
				w, g := histProto(wp[i], j), histProto(gp[i], j)
				if !bytes.Equal(w.GetSparse(), g.GetSparse()) || w.GetTotal() != g.GetTotal() {
					t.Fatalf("%d merges: series %d %s encodes differently", merges, i, histName(j))
				}
			}
		}
		samePhases(t, "after encode", ref.Lookup(Key{Scenario: "s", Request: "d", Status: "2xx"}), s.Lookup(Key{Scenario: "s", Request: "d", Status: "2xx"}))
	}
}

// Set.Merge takes another set's pending wire counts as they are, and the
// result reads exactly; the other set still reads the same.
func TestSetMergeTakesPendingCounts(t *testing.T) {
	r := rand.New(rand.NewPCG(31, 32))
	same := func(what string, want, got *Set) {
		t.Helper()
		if got.Len() != want.Len() {
			t.Fatalf("%s: %d series, want %d", what, got.Len(), want.Len())
		}
		for _, k := range want.Keys() {
			w, g := want.Lookup(k), got.Lookup(k)
			if !g.Latency.Equals(w.Latency) || !g.Service.Equals(w.Service) || g.Counters != w.Counters {
				t.Fatalf("%s: series %v differs", what, k)
			}
			samePhases(t, what, w, g)
		}
	}
	a, ref := NewSet(), NewSet()
	for range 3 {
		src := phaseSet(r)
		if _, err := a.ValidateAndMergeProto(src.ToProto(), 10); err != nil {
			t.Fatal(err)
		}
		ref.Merge(src)
	}
	b := NewSet()
	b.Merge(a) // a holds pending counts only
	same("merged from pending", ref, b)
	same("source after the merge", ref, a)
	// a now read (folded) plus new pending counts on top; into b again
	src := phaseSet(r)
	if _, err := a.ValidateAndMergeProto(src.ToProto(), 10); err != nil {
		t.Fatal(err)
	}
	ref.Merge(src)
	c := NewSet()
	c.Merge(a)
	same("merged from histograms and pending", ref, c)
	if tot, want := c.Total(nil), ref.Total(nil); !tot.Latency.Equals(want.Latency) {
		t.Fatal("totals differ")
	}

	// Pending counts that pass 2^31 together are folded first.
	h := New()
	_ = h.RecordValues(1_000, 1_500_000_000)
	mid := []*surgev1.Series{{Key: &surgev1.SeriesKey{Scenario: "s"}, Counters: &surgev1.Counters{}, Latency: ToProto(h)}}
	x, y := NewSet(), NewSet()
	for _, s := range []*Set{x, y} {
		if _, err := s.ValidateAndMergeProto(mid, 1); err != nil {
			t.Fatal(err)
		}
	}
	y.Merge(x)
	if got := y.Lookup(Key{Scenario: "s"}).Latency.TotalCount(); got != 3_000_000_000 {
		t.Fatalf("merged %d values, want 3e9", got)
	}
}
