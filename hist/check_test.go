package hist

import (
	"errors"
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
)

// AddCheck keeps the checks sorted by name and the counters in step.
func TestAddCheck(t *testing.T) {
	sr := NewSeries()
	for _, c := range []struct {
		name string
		ok   bool
	}{{"status", true}, {"body_contains", false}, {"status", false}, {"json_path.$.id", true}, {"status", true}} {
		if c.ok {
			sr.AddCheck(c.name, 1, 0)
		} else {
			sr.AddCheck(c.name, 0, 1)
		}
	}
	want := []Check{{"body_contains", 0, 1}, {"json_path.$.id", 1, 0}, {"status", 2, 1}}
	if !slices.Equal(sr.Checks, want) || sr.Counters.ChecksPassed != 3 || sr.Counters.ChecksFailed != 2 {
		t.Fatalf("checks %v, counters %+v; want %v, 3 passed, 2 failed", sr.Checks, sr.Counters, want)
	}
}

// Checks of several agents' snapshots merge by name, exactly, through the
// wire and through Set.Merge; a snapshot whose checks do not add up to its
// counters is refused and changes nothing.
func TestChecksMergeExactly(t *testing.T) {
	k := Key{Scenario: "s", Request: "r", Status: "2xx"}
	agent := func(status, body int64) []*surgev1.Series {
		s := NewSet()
		sr := s.Get(k)
		sr.Counters.Requests = 10
		sr.AddCheck("status", status, 10-status)
		sr.AddCheck("body_contains", body, 10-body)
		return s.ToProto()
	}
	whole := NewSet()
	for _, a := range [][2]int64{{10, 7}, {9, 0}, {3, 10}} {
		if _, err := whole.ValidateAndMergeProto(agent(a[0], a[1]), 4); err != nil {
			t.Fatal(err)
		}
	}
	want := []Check{{"body_contains", 17, 13}, {"status", 22, 8}}
	if got := whole.Lookup(k); !slices.Equal(got.Checks, want) || got.Counters.ChecksPassed != 39 || got.Counters.ChecksFailed != 21 {
		t.Fatalf("merged checks %v, counters %+v; want %v, 39 passed, 21 failed", got.Checks, got.Counters, want)
	}
	twice := NewSet()
	twice.Merge(whole)
	twice.Merge(whole)
	if got := twice.Lookup(k).Checks; !slices.Equal(got, []Check{{"body_contains", 34, 26}, {"status", 44, 16}}) {
		t.Fatalf("Set.Merge twice: %v", got)
	}

	for name, spoil := range map[string]func(c []*surgev1.CheckStats, p *surgev1.Series){
		"sum":  func(c []*surgev1.CheckStats, _ *surgev1.Series) { c[0].Passes-- },
		"more": func(c []*surgev1.CheckStats, _ *surgev1.Series) { c[1].Fails += 100 },
		"negative": func(c []*surgev1.CheckStats, p *surgev1.Series) {
			c[0].Fails, p.Counters.ChecksFailed = -1, p.Counters.ChecksFailed-4
		},
		"order":    func(c []*surgev1.CheckStats, _ *surgev1.Series) { c[0].Name, c[1].Name = c[1].Name, c[0].Name },
		"repeated": func(c []*surgev1.CheckStats, _ *surgev1.Series) { c[1].Name = c[0].Name },
		"unnamed":  func(c []*surgev1.CheckStats, _ *surgev1.Series) { c[0].Name = "" },
		"too many": func(_ []*surgev1.CheckStats, p *surgev1.Series) {
			for i := range MaxChecks {
				p.Checks = append(p.Checks, &surgev1.CheckStats{Name: "z" + string(rune('a'+i))})
			}
		},
	} {
		ps := agent(4, 6)
		spoil(ps[0].Checks, ps[0])
		before := proto.Clone(&surgev1.Snapshot{Series: whole.ToProto()})
		if _, err := whole.ValidateAndMergeProto(ps, 4); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: merged with %v, want ErrInvalid", name, err)
		}
		if err := ValidateProto(ps, 4); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: ValidateProto: %v, want ErrInvalid", name, err)
		}
		if after := (&surgev1.Snapshot{Series: whole.ToProto()}); !proto.Equal(before, after) {
			t.Errorf("%s: the refused snapshot changed the set", name)
		}
	}
}
