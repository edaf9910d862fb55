package hist

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// phaseSet is a set whose series hold some phases and not others, as an
// agent's do: a series on kept-alive connections has no dns, connect or tls.
func phaseSet(r *rand.Rand) *Set {
	s := NewSet()
	for k := range 4 {
		sr := s.Get(Key{Scenario: "s", Request: string(rune('a' + k)), Status: "2xx"})
		n := 200 + r.IntN(300)
		sr.Counters.Requests = int64(n)
		sr.Counters.Retries = int64(k)
		for range n {
			_ = sr.Latency.RecordValue(1 + r.Int64N(100_000))
			_ = sr.Service.RecordValue(1 + r.Int64N(100_000))
			sr.RecordPhase(PhaseTTFB, 1+r.Int64N(50_000))
		}
		if k%2 == 0 { // new connections on even series only
			for range 10 {
				sr.RecordPhase(PhaseDNS, 1+r.Int64N(2_000))
				sr.RecordPhase(PhaseConnect, 1+r.Int64N(5_000))
			}
		}
		if k == 3 {
			sr.RecordPhase(PhaseTLS, 7_000)
			for range n + k {
				sr.RecordPhase(PhaseAttempt, 1+r.Int64N(100_000))
			}
		}
	}
	return s
}

func samePhases(t *testing.T, what string, want, got *Series) {
	t.Helper()
	for p := range NumPhases {
		w, g := want.Phases[p], got.Phases[p]
		if w == nil || w.TotalCount() == 0 {
			if g != nil && g.TotalCount() != 0 {
				t.Errorf("%s: phase %s present (%d values), want absent", what, p, g.TotalCount())
			}
			continue
		}
		if g == nil || !g.Equals(w) {
			t.Errorf("%s: phase %s differs", what, p)
		}
	}
}

// Phases travel on the wire exactly and stay absent when empty.
func TestPhasesRoundTrip(t *testing.T) {
	src := phaseSet(rand.New(rand.NewPCG(11, 12)))
	ps := src.ToProto()
	if err := ValidateProto(ps, 10); err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		odd := p.GetKey().GetRequest() == "b" || p.GetKey().GetRequest() == "d"
		if odd && (p.GetDns() != nil || p.GetConnect() != nil) {
			t.Errorf("%s: dns/connect sent without values", p.GetKey().GetRequest())
		}
		if p.GetTtfb() == nil {
			t.Errorf("%s: no ttfb", p.GetKey().GetRequest())
		}
		if (p.GetAttempt() != nil) != (p.GetKey().GetRequest() == "d") {
			t.Errorf("%s: attempt present %v", p.GetKey().GetRequest(), p.GetAttempt() != nil)
		}
	}
	for name, merge := range map[string]func(*Set) error{
		"MergeProto": func(s *Set) error { _, err := s.MergeProto(ps); return err },
		"ValidateAndMergeProto": func(s *Set) error {
			_, err := s.ValidateAndMergeProto(ps, 10)
			return err
		},
	} {
		got := NewSet()
		if err := merge(got); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, k := range src.Keys() {
			samePhases(t, name+" "+k.Request, src.Lookup(k), got.Lookup(k))
			if g := got.Lookup(k); g.Counters != src.Lookup(k).Counters {
				t.Errorf("%s %s: counters %+v, want %+v", name, k.Request, g.Counters, src.Lookup(k).Counters)
			}
		}
		if odd := got.Lookup(Key{Scenario: "s", Request: "b", Status: "2xx"}); odd.Phases[PhaseDNS] != nil || odd.Phases[PhaseTLS] != nil {
			t.Errorf("%s: absent phases allocated", name)
		}
	}
}

// Merging wire phases from several agents equals recording every value
// into one histogram: exact, never averaged.
func TestPhasesMergeExact(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	want := map[Phase]*hdrhistogram.Histogram{}
	for p := range NumPhases {
		want[p] = New()
	}
	viaMerge, viaOnePass := NewSet(), NewSet()
	viaSeries := NewSeries()
	for range 5 { // five agents
		agent := phaseSet(r)
		for _, k := range agent.Keys() {
			sr := agent.Lookup(k)
			for p, h := range sr.Phases {
				if h != nil {
					want[Phase(p)].Merge(h)
				}
			}
			viaSeries.Merge(sr)
		}
		ps := agent.ToProto()
		if _, err := viaMerge.MergeProto(ps); err != nil {
			t.Fatal(err)
		}
		if _, err := viaOnePass.ValidateAndMergeProto(ps, 10); err != nil {
			t.Fatal(err)
		}
	}
	for name, tot := range map[string]*Series{
		"MergeProto":            viaMerge.Total(nil),
		"ValidateAndMergeProto": viaOnePass.Total(nil),
		"Series.Merge":          viaSeries,
	} {
		for p := range NumPhases {
			if g := tot.Phases[p]; g == nil || !g.Equals(want[p]) {
				t.Errorf("%s: phase %s is not the exact merge", name, p)
			}
		}
	}
	t.Logf("merged from 5 agents: ttfb %d values p99 %d µs, dns %d, tls %d, attempt %d",
		want[PhaseTTFB].TotalCount(), want[PhaseTTFB].ValueAtQuantile(99), want[PhaseDNS].TotalCount(),
		want[PhaseTLS].TotalCount(), want[PhaseAttempt].TotalCount())
}

// A bad phase histogram rejects the whole snapshot, through either path,
// and names the phase.
func TestPhasesValidated(t *testing.T) {
	src := phaseSet(rand.New(rand.NewPCG(15, 16)))
	for p := range NumPhases {
		ps := src.ToProto()
		last := ps[len(ps)-1] // "d" has every phase but dns/connect
		if PhaseProto(last, p) == nil {
			last = ps[0] // "a" has dns and connect
		}
		h := PhaseProto(last, p)
		if h == nil {
			t.Fatalf("no %s to break", p)
		}
		h.Total++
		if err := ValidateProto(ps, 10); err == nil {
			t.Errorf("%s: bad total accepted", p)
		}
		s := NewSet()
		_, err := s.ValidateAndMergeProto(ps, 10)
		if err == nil {
			t.Errorf("%s: bad total merged", p)
		} else if want := p.String(); !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %q does not name the phase", p, err)
		}
		if s.Len() != 0 {
			t.Errorf("%s: half merged", p)
		}
		h.Total--
		h.SigFigs = 2
		if err := ValidateProto(ps, 10); err == nil {
			t.Errorf("%s: bad geometry accepted", p)
		}
	}
}
