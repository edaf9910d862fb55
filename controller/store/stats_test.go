package store

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
	"github.com/surgeload/surge/hist"
)

func wsStats(opened int64) []*surgev1.WebSocketStats {
	h := hist.New()
	_ = h.RecordValue(1234)
	return []*surgev1.WebSocketStats{{Scenario: "s", Flow: "f", Step: "ws", SessionsOpened: opened, SessionsActive: 2,
		MessagesOut: 9, RoundTrip: hist.ToProto(h)}}
}

func scenStats(opened int64) []*surgev1.ScenarioStats {
	return []*surgev1.ScenarioStats{{Scenario: "s", Completed: 5, ConnsOpened: opened, ConnsClosed: 1, ConnsOpen: opened - 1}}
}

// Scenario and WebSocket stats are stored with a run and with its
// intervals, and read back exactly.
func TestStatsRoundTrip(t *testing.T) {
	s := openTemp(t)
	t0 := time.Unix(1_700_000_000, 0)
	run := &Run{Info: Info{ID: "r", Status: "finished", StartedAt: t0},
		Series:     map[string][]*surgev1.Series{"us": seriesOf(3)},
		Scenarios:  map[string][]*surgev1.ScenarioStats{"us": scenStats(4), "eu": scenStats(7)},
		WebSockets: map[string][]*surgev1.WebSocketStats{"eu": wsStats(3)},
	}
	if err := s.Put(run); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get("r")
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Scenarios) != 2 || !proto.Equal(got.Scenarios["eu"][0], run.Scenarios["eu"][0]) ||
		len(got.WebSockets) != 1 || !proto.Equal(got.WebSockets["eu"][0], run.WebSockets["eu"][0]) ||
		len(got.Series["us"]) != 1 {
		t.Fatalf("read back %v / %v / %v", got.Scenarios, got.WebSockets, got.Series)
	}

	rec := IntervalRecord{Index: 4, Start: t0, EmittedAt: t0.Add(time.Second),
		Regions:    map[string][]*surgev1.Series{"us": seriesOf(2)},
		Scenarios:  map[string][]*surgev1.ScenarioStats{"us": scenStats(2)},
		WebSockets: map[string][]*surgev1.WebSocketStats{"us": wsStats(1), "eu": wsStats(5)},
	}
	if err := s.PutInterval("r", rec); err != nil {
		t.Fatal(err)
	}
	recs, err := s.Intervals("r")
	if err != nil || len(recs) != 1 {
		t.Fatalf("intervals %v, %v", recs, err)
	}
	r := recs[0]
	if !proto.Equal(r.Scenarios["us"][0], rec.Scenarios["us"][0]) || len(r.WebSockets) != 2 ||
		!proto.Equal(r.WebSockets["eu"][0], rec.WebSockets["eu"][0]) {
		t.Fatalf("interval read back %v / %v", r.Scenarios, r.WebSockets)
	}
}

// Runs and intervals stored before scenario and WebSocket stats existed
// still load, with those absent.
func TestStatsAbsentInOldRecords(t *testing.T) {
	s := openTemp(t)
	t0 := time.Unix(1_700_000_000, 0)
	if err := s.Put(&Run{Info: Info{ID: "old", Status: "finished", StartedAt: t0},
		Series: map[string][]*surgev1.Series{"us": seriesOf(3)}}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get("old")
	if err != nil {
		t.Fatal(err)
	}
	if got.Scenarios != nil || got.WebSockets != nil || len(got.Series["us"]) != 1 {
		t.Fatalf("old run: %v %v %v", got.Scenarios, got.WebSockets, got.Series)
	}

	// The record layout before: index, start, emitted, then the series.
	var old bytes.Buffer
	old.Write(binary.AppendVarint(nil, 3))
	old.Write(binary.AppendVarint(nil, t0.UnixNano()))
	old.Write(binary.AppendVarint(nil, t0.Add(time.Second).UnixNano()))
	if err := encodeSection(&old, map[string][]*surgev1.Series{"us": seriesOf(5)}); err != nil {
		t.Fatal(err)
	}
	rec, err := decodeInterval(old.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if rec.Index != 3 || len(rec.Regions["us"]) != 1 || rec.Scenarios != nil || rec.WebSockets != nil {
		t.Fatalf("old interval: %+v", rec)
	}
	// A truncated new section is an error, not silently absent.
	newer, err := encodeInterval(IntervalRecord{Index: 3, Regions: rec.Regions, Scenarios: map[string][]*surgev1.ScenarioStats{"us": scenStats(3)}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := decodeInterval(newer[:len(newer)-3]); err == nil {
		t.Fatal("truncated record decoded")
	}
}
