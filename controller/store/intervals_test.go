package store

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
	"github.com/surgeload/surge/hist"
)

func openTemp(t *testing.T) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "runs.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func seriesOf(n int64) []*surgev1.Series {
	set := hist.NewSet()
	sr := set.Get(hist.Key{Scenario: "s", Request: "r", Status: "2xx"})
	for v := int64(1); v <= n; v++ {
		_ = sr.Latency.RecordValue(v * 10)
	}
	sr.Counters.Requests = n
	return set.ToProto()
}

func TestIntervalsRoundTripAndRewrite(t *testing.T) {
	s := openTemp(t)
	t0 := time.Unix(1_700_000_000, 0)
	for i := int64(2); i >= 0; i-- { // out of order: read back sorted
		rec := IntervalRecord{Index: i, Start: t0.Add(time.Duration(i) * time.Second), EmittedAt: t0.Add(time.Duration(i+1) * time.Second),
			Regions: map[string][]*surgev1.Series{"eu": seriesOf(i + 1), "us": seriesOf(2 * (i + 1))}}
		if err := s.PutInterval("run1", rec); err != nil {
			t.Fatal(err)
		}
	}
	// A rewrite replaces the series but keeps the first emission time.
	if err := s.PutInterval("run1", IntervalRecord{Index: 1, Start: t0.Add(time.Second), EmittedAt: t0.Add(time.Hour),
		Regions: map[string][]*surgev1.Series{"eu": seriesOf(7)}}); err != nil {
		t.Fatal(err)
	}
	// Put of the run itself must not touch its intervals.
	if err := s.Put(&Run{Info: Info{ID: "run1", Status: "finished", StartedAt: t0}}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Intervals("run1")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("got %d records, want 3", len(got))
	}
	for i, rec := range got {
		if rec.Index != int64(i) || !rec.Start.Equal(t0.Add(time.Duration(i)*time.Second)) {
			t.Errorf("record %d: index %d start %v", i, rec.Index, rec.Start)
		}
		if !rec.EmittedAt.Equal(t0.Add(time.Duration(i+1) * time.Second)) {
			t.Errorf("record %d: emitted %v", i, rec.EmittedAt)
		}
	}
	if n := len(got[1].Regions); n != 1 || !proto.Equal(got[1].Regions["eu"][0], seriesOf(7)[0]) {
		t.Errorf("rewritten record: %v", got[1].Regions)
	}
	if !proto.Equal(got[2].Regions["us"][0], seriesOf(6)[0]) {
		t.Errorf("record 2 us series differs")
	}
	none, err := s.Intervals("nope")
	if err != nil || len(none) != 0 {
		t.Errorf("unknown run: %v %v", none, err)
	}
}

func TestSpillFIFO(t *testing.T) {
	s := openTemp(t)
	for i := range 5 {
		if err := s.SpillAppend("q", []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	if n, _ := s.SpillLen("q"); n != 5 {
		t.Fatalf("len %d", n)
	}
	items, err := s.SpillPeek("q", 3)
	if err != nil || len(items) != 3 || string(items[0].Data) != "0" || string(items[2].Data) != "2" {
		t.Fatalf("peek %v %v", items, err)
	}
	if err := s.SpillDelete("q", items[2].Seq); err != nil {
		t.Fatal(err)
	}
	if err := s.SpillAppend("q", []byte("5")); err != nil {
		t.Fatal(err)
	}
	items, _ = s.SpillPeek("q", 10)
	var got string
	for _, it := range items {
		got += string(it.Data)
	}
	if got != "345" {
		t.Errorf("after delete: %q, want 345", got)
	}
	if n, _ := s.SpillLen("other"); n != 0 {
		t.Errorf("other queue len %d", n)
	}
}
