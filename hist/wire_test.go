package hist_test

import (
	"errors"
	"testing"
	"unsafe"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
	"github.com/surgeload/surge/hist"
)

// checkAliases fails t unless every histogram of s keeps its sparse bytes
// inside b, with no capacity past them (an append must copy, not write
// into the next field).
func checkAliases(t *testing.T, b []byte, s *surgev1.Snapshot) {
	t.Helper()
	if len(b) == 0 {
		return
	}
	lo := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	hi := lo + uintptr(len(b))
	for i, sr := range s.GetSeries() {
		for _, h := range []*surgev1.Histogram{sr.GetLatency(), sr.GetService(), sr.GetDns(), sr.GetConnect(), sr.GetTls(), sr.GetTtfb(), sr.GetAttempt()} {
			sp := h.GetSparse()
			if len(sp) == 0 {
				continue
			}
			p := uintptr(unsafe.Pointer(unsafe.SliceData(sp)))
			if p < lo || p+uintptr(len(sp)) > hi {
				t.Fatalf("series %d: sparse bytes are a copy, not the input's", i)
			}
			if cap(sp) != len(sp) {
				t.Fatalf("series %d: sparse bytes have capacity %d past their length %d", i, cap(sp), len(sp))
			}
		}
	}
}

// fullSnapshot has every field of a Snapshot set, the series' every
// histogram included.
func fullSnapshot(t *testing.T) *surgev1.Snapshot {
	t.Helper()
	s := phaseSnapshot(t)
	s.RunId, s.AgentId, s.Seq, s.Epoch, s.Interval, s.Final, s.SeqFirst, s.EndUnixNs = "run-1", "agent-ä", 7, 3, -2, true, 5, 1767225600123456789
	lat := s.GetSeries()[0].GetLatency()
	s.Scenarios = []*surgev1.ScenarioStats{{Scenario: "s", Scheduled: 10, Dropped: 1, TargetRate: 2.5, Lateness: lat}}
	s.Websockets = []*surgev1.WebSocketStats{{Scenario: "s", Step: "ws", MessagesIn: 4, RoundTrip: lat}}
	s.Agent = &surgev1.AgentStats{CpuPercent: 12.5, RssBytes: 1 << 20, Goroutines: 9, ConnsOpen: 3}
	s.Series[0].Checks = []*surgev1.CheckStats{{Name: "json_path.$.ä", Passes: 3, Fails: 1}, {Name: "status", Passes: 4}}
	return s
}

func TestUnmarshalSnapshotMatchesProtobuf(t *testing.T) {
	want := fullSnapshot(t)
	b, err := proto.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	var got surgev1.Snapshot
	got.RunId = "stale" // reset first
	if err := hist.UnmarshalSnapshot(b, &got); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(want, &got) {
		t.Fatalf("decoded %v, want %v", &got, want)
	}
	checkAliases(t, b, &got)
	full := false
	for _, sr := range got.GetSeries() {
		full = full || sr.GetDns() != nil && sr.GetConnect() != nil && sr.GetTls() != nil && sr.GetTtfb() != nil && sr.GetAttempt() != nil
	}
	if !full {
		t.Fatal("the test snapshot lacks a series with every histogram")
	}
}

func TestUnmarshalSnapshotWireRules(t *testing.T) {
	key := func(scenario string) []byte {
		return protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), scenario)
	}
	status := protowire.AppendString(protowire.AppendTag(nil, 4, protowire.BytesType), "2xx")
	series := func(fields ...[]byte) []byte {
		var b []byte
		for _, f := range fields {
			b = append(b, f...)
		}
		return b
	}
	msg := func(num protowire.Number, inner []byte) []byte {
		return protowire.AppendBytes(protowire.AppendTag(nil, num, protowire.BytesType), inner)
	}
	cases := []struct {
		name    string
		b       []byte
		invalid bool
	}{
		// A message field met twice merges: the key has both fields.
		{name: "key twice merges", b: msg(6, series(msg(1, key("a")), msg(1, status)))},
		// Unknown fields, and a known field with another wire type, are skipped.
		{name: "unknown field", b: append(msg(6, msg(1, key("a"))), protowire.AppendVarint(protowire.AppendTag(nil, 99, protowire.VarintType), 1)...)},
		{name: "seq as bytes", b: append(msg(3, []byte{1}), msg(6, msg(1, key("a")))...)},
		{name: "fixed64 unknown", b: protowire.AppendFixed64(protowire.AppendTag(nil, 12, protowire.Fixed64Type), 1)},
		{name: "invalid UTF-8", b: msg(6, msg(1, key("\xff"))), invalid: true},
		{name: "truncated", b: msg(6, msg(1, key("abc")))[:6], invalid: true},
		{name: "field number 0", b: []byte{0x02, 0x00}, invalid: true},
		{name: "field number too large", b: protowire.AppendVarint(protowire.AppendVarint(nil, uint64(protowire.MaxValidNumber+1)<<3), 0), invalid: true},
		{name: "end group", b: []byte{0x0c}, invalid: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var want, got surgev1.Snapshot
			werr := proto.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(tc.b, &want)
			gerr := hist.UnmarshalSnapshot(tc.b, &got)
			if (werr != nil) != tc.invalid || (gerr != nil) != tc.invalid {
				t.Fatalf("protobuf: %v, UnmarshalSnapshot: %v, want invalid %v", werr, gerr, tc.invalid)
			}
			if !tc.invalid && !proto.Equal(&want, &got) {
				t.Fatalf("decoded %v, protobuf %v", &got, &want)
			}
		})
	}
}

func TestUnmarshalSnapshotErrorsSayWhere(t *testing.T) {
	b, err := proto.Marshal(&surgev1.Snapshot{Series: []*surgev1.Series{{}, {Key: &surgev1.SeriesKey{Request: "x"}}}})
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-1] = 0xff // the second series' request
	var s surgev1.Snapshot
	err = hist.UnmarshalSnapshot(b, &s)
	if err == nil || err.Error() != "series 1: request: invalid UTF-8" {
		t.Fatalf("err = %v, want the series and field named", err)
	}
	if errors.Is(err, hist.ErrInvalid) {
		t.Fatal("a wire-form error is not a histogram validation error")
	}
}
