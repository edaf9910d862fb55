package hist_test

import (
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/HdrHistogram/hdrhistogram-go"
	"google.golang.org/protobuf/proto"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
	"github.com/surgeload/surge/hist"
)

// fuzzMaxSeries bounds the series of one fuzzed snapshot, as the
// controller's limit does.
const fuzzMaxSeries = 256

// baseSet is a set with some data in it, so a merge that changes anything
// shows.
func baseSet(t testing.TB) *hist.Set {
	s := hist.NewSet()
	sr := s.Get(hist.Key{Scenario: "s", Request: "GET /", Status: "2xx"})
	for _, v := range []int64{1, 900, 1500, 250_000, hist.Highest} {
		if err := sr.Latency.RecordValue(v); err != nil {
			t.Fatal(err)
		}
		if err := sr.Service.RecordValue(v / 2); err != nil {
			t.Fatal(err)
		}
	}
	sr.Counters = hist.Counters{Requests: 5, Failures: 1, BytesIn: 100, BytesOut: 50}
	return s
}

// phaseSnapshot is baseSet plus a second series with every phase recorded.
func phaseSnapshot(t testing.TB) *surgev1.Snapshot {
	s := baseSet(t)
	sr := s.Get(hist.Key{Scenario: "s", Request: "GET /", Status: "5xx"})
	sr.Counters = hist.Counters{Requests: 3, Failures: 3, Retries: 2}
	for _, v := range []int64{40, 2_000, 90_000} {
		_ = sr.Latency.RecordValue(v)
		_ = sr.Service.RecordValue(v)
		for p := range hist.NumPhases {
			sr.RecordPhase(p, v/int64(p+2))
		}
	}
	snap := wire(s)
	snap.RunId, snap.AgentId, snap.Seq, snap.Interval = "run", "a2", 4, 7
	return snap
}

func wire(s *hist.Set) *surgev1.Snapshot { return &surgev1.Snapshot{Series: s.ToProto()} }

// seedSnapshots are valid and broken encoded snapshots.
func seedSnapshots(t testing.TB) [][]byte {
	good := wire(baseSet(t))
	good.RunId, good.AgentId, good.Seq, good.Interval = "run", "a1", 3, 7
	two := proto.Clone(good).(*surgev1.Snapshot)
	two.Series = append(two.Series, proto.Clone(good.Series[0]).(*surgev1.Series))
	two.Series[1].Key.Status = "timeout"

	negative := proto.Clone(good).(*surgev1.Snapshot)
	negative.Series[0].Counters.Requests = -1
	tooManyFailures := proto.Clone(good).(*surgev1.Snapshot)
	tooManyFailures.Series[0].Counters.Failures = 99
	badGeometry := proto.Clone(good).(*surgev1.Snapshot)
	badGeometry.Series[0].Latency.SigFigs = 5
	badSparse := proto.Clone(good).(*surgev1.Snapshot)
	badSparse.Series[0].Service.Sparse = append(badSparse.Series[0].Service.Sparse, 0xff, 0xff)
	noKey := proto.Clone(good).(*surgev1.Snapshot)
	noKey.Series[0].Key = nil
	// a valid first series and an invalid second: nothing may be merged
	half := proto.Clone(two).(*surgev1.Snapshot)
	half.Series[1].Latency.Sparse = []byte{0x80}

	// phase histograms: present on one series only, and broken ones
	phased := phaseSnapshot(t)
	badPhaseTotal := proto.Clone(phased).(*surgev1.Snapshot)
	badPhaseTotal.Series[1].Ttfb.Total++
	badPhaseSparse := proto.Clone(phased).(*surgev1.Snapshot)
	badPhaseSparse.Series[1].Attempt.Sparse = append(badPhaseSparse.Series[1].Attempt.Sparse, 0x80)
	badPhaseGeometry := proto.Clone(phased).(*surgev1.Snapshot)
	badPhaseGeometry.Series[1].Dns.Highest = 7

	// realistic sizes, so the eight-pairs-at-a-time path runs, and breaks
	// inside it: a zero gap, a zero count, a continuation byte
	big := bigSnapshot()
	zeroGap := proto.Clone(big).(*surgev1.Snapshot)
	zeroGap.Series[1].Latency.Sparse[301] = 0
	zeroCount := proto.Clone(big).(*surgev1.Snapshot)
	zeroCount.Series[0].Service.Sparse[200] = 0
	continued := proto.Clone(big).(*surgev1.Snapshot)
	continued.Series[1].Service.Sparse[150] |= 0x80

	var out [][]byte
	for _, m := range []*surgev1.Snapshot{good, two, negative, tooManyFailures, badGeometry, badSparse, noKey, half, {},
		phased, badPhaseTotal, badPhaseSparse, badPhaseGeometry, big, zeroGap, zeroCount, continued} {
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return append(out, nil, []byte{0x32, 0x02, 0x0a, 0x00})
}

// bigSnapshot has two series of 1,000 latencies spread over 0.5-50 ms,
// encoded mostly as one-byte gaps and counts.
func bigSnapshot() *surgev1.Snapshot {
	r := rand.New(rand.NewPCG(9, 9))
	s := hist.NewSet()
	for k := range 2 {
		sr := s.Get(hist.Key{Scenario: "s", Request: string(rune('a' + k)), Status: "2xx"})
		sr.Counters.Requests = 1000
		for range 1000 {
			_ = sr.Latency.RecordValue(500 + r.Int64N(50_000))
			_ = sr.Service.RecordValue(400 + r.Int64N(2_000))
		}
	}
	return wire(s)
}

// reference merges validated wire series into s through the plain
// decoder (FromProto) and Series.Merge, not the set's own wire path.
func reference(t *testing.T, s *hist.Set, ps []*surgev1.Series) {
	t.Helper()
	dec := func(p *surgev1.Histogram) *hdrhistogram.Histogram {
		h, err := hist.FromProto(p)
		if err != nil {
			t.Fatalf("FromProto of validated input: %v", err)
		}
		return h
	}
	for _, p := range ps {
		k := p.GetKey()
		o := &hist.Series{Latency: dec(p.GetLatency()), Service: dec(p.GetService())}
		for ph := range hist.NumPhases {
			if w := hist.PhaseProto(p, ph); w != nil {
				o.Phases[ph] = dec(w)
			}
		}
		c := p.GetCounters()
		o.Counters = hist.Counters{Requests: c.GetRequests(), Failures: c.GetFailures(), Retries: c.GetRetries(),
			BytesIn: c.GetBytesIn(), BytesOut: c.GetBytesOut(), ChecksPassed: c.GetChecksPassed(), ChecksFailed: c.GetChecksFailed()}
		s.Get(hist.Key{Scenario: k.GetScenario(), Flow: k.GetFlow(), Request: k.GetRequest(), Status: k.GetStatus()}).Merge(o)
	}
}

// FuzzMergeProto: arbitrary bytes decode the same through
// UnmarshalSnapshot as through protobuf (or fail in both), with every
// histogram's bytes aliasing the input; decoded, they never make
// validation or merging panic; input ValidateProto refuses is refused by
// ValidateAndMergeProto too and changes nothing; input it accepts merges
// without error, the same through either path.
func FuzzMergeProto(f *testing.F) {
	for _, b := range seedSnapshots(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		// The controller's decoder first: it must agree with protobuf's.
		var pb, snap surgev1.Snapshot
		rerr := proto.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(b, &pb)
		serr := hist.UnmarshalSnapshot(b, &snap)
		if (rerr == nil) != (serr == nil) {
			t.Fatalf("protobuf: %v, UnmarshalSnapshot: %v", rerr, serr)
		}
		if rerr != nil {
			return
		}
		if !proto.Equal(&pb, &snap) {
			t.Fatal("UnmarshalSnapshot decoded differently from protobuf")
		}
		checkAliases(t, b, &snap)
		before := wire(baseSet(t))
		verr := hist.ValidateProto(snap.GetSeries(), fuzzMaxSeries)

		whole := baseSet(t)
		_, werr := whole.ValidateAndMergeProto(snap.GetSeries(), fuzzMaxSeries)
		if (verr == nil) != (werr == nil) {
			t.Fatalf("ValidateProto: %v, ValidateAndMergeProto: %v", verr, werr)
		}
		if verr != nil {
			if !errors.Is(verr, hist.ErrInvalid) || !errors.Is(werr, hist.ErrInvalid) {
				t.Fatalf("errors do not wrap ErrInvalid: %v / %v", verr, werr)
			}
			if !proto.Equal(before, wire(whole)) {
				t.Fatalf("invalid input (%v) changed the set", werr)
			}
			return
		}
		piped := baseSet(t)
		if _, err := piped.MergeProto(snap.GetSeries()); err != nil {
			t.Fatalf("MergeProto of validated input: %v", err)
		}
		if !proto.Equal(wire(piped), wire(whole)) {
			t.Fatal("MergeProto and ValidateAndMergeProto merged the same input differently")
		}
		ref := baseSet(t)
		reference(t, ref, snap.GetSeries())
		if !proto.Equal(wire(ref), wire(whole)) {
			t.Fatal("ValidateAndMergeProto merged differently from FromProto + Series.Merge")
		}
	})
}
