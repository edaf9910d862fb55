package store

import (
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
	"github.com/surgeload/surge/hist"
)

func TestPutGetListInterrupted(t *testing.T) {
	path := filepath.Join(t.TempDir(), "runs.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	set := hist.NewSet()
	sr := set.Get(hist.Key{Scenario: "s", Status: "2xx"})
	for v := int64(1); v < 1000; v += 7 {
		_ = sr.Latency.RecordValue(v)
	}
	sr.Counters.Requests = 143
	t0 := time.Unix(1_700_000_000, 0)
	done := &Run{
		Info:     Info{ID: "20261126-120000-aaaa", PlanName: "p", Status: "finished", Verdict: "pass", StartedAt: t0},
		PlanYAML: []byte("name: p\n"),
		Summary:  &surgev1.RunSummary{RunId: "20261126-120000-aaaa", Status: "finished", Verdict: "pass", All: &surgev1.Stats{Requests: 143}},
		Series:   map[string][]*surgev1.Series{"us-east": set.ToProto()},
	}
	running := &Run{
		Info:    Info{ID: "20261126-130000-bbbb", PlanName: "q", Status: StatusRunning, StartedAt: t0.Add(time.Hour)},
		Summary: &surgev1.RunSummary{RunId: "20261126-130000-bbbb", Status: StatusRunning},
	}
	for _, r := range []*Run{done, running} {
		if err := s.Put(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err = Open(path); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ids, err := s.MarkInterrupted()
	if err != nil || len(ids) != 1 || ids[0] != running.ID {
		t.Fatalf("MarkInterrupted = %v, %v", ids, err)
	}
	list, err := s.List()
	if err != nil || len(list) != 2 || list[0].ID != running.ID || list[0].Status != StatusInterrupted || list[1].Verdict != "pass" {
		t.Fatalf("List = %+v, %v", list, err)
	}
	got, err := s.Get(done.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(got.Summary, done.Summary) || string(got.PlanYAML) != "name: p\n" || len(got.Series["us-east"]) != 1 ||
		!proto.Equal(got.Series["us-east"][0], done.Series["us-east"][0]) {
		t.Fatalf("Get = %+v", got)
	}
	if r, _ := s.Get(running.ID); r.Summary.GetStatus() != StatusInterrupted {
		t.Fatalf("interrupted summary status %q", r.Summary.GetStatus())
	}
	if _, err := s.Get("nope"); err == nil {
		t.Fatal("Get(nope) succeeded")
	}
}
