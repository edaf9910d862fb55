package hist

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/HdrHistogram/hdrhistogram-go"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
)

// Key names a series within one agent's or one region's measurements.
type Key struct {
	Scenario string
	Flow     string
	Request  string
	// Status is a status class ("1xx".."5xx") or an error kind ("timeout",
	// "refused", "reset", "tls", "dns", "protocol", "blocked", "other").
	Status string
}

// ErrorName is the name failures of a series with status st go by in
// summaries, thresholds and comparisons: "http_4xx" and "http_5xx" for
// those status classes, "" for the classes that are not errors ("1xx",
// "2xx", "3xx"), and the error kind itself otherwise ("timeout", "refused",
// "reset", "tls", "dns", "protocol", "blocked", "other").
func ErrorName(st string) string {
	switch st {
	case "4xx", "5xx":
		return "http_" + st
	case "1xx", "2xx", "3xx":
		return ""
	}
	return st
}

func compareKeys(a, b Key) int {
	return cmp.Or(
		cmp.Compare(a.Scenario, b.Scenario),
		cmp.Compare(a.Flow, b.Flow),
		cmp.Compare(a.Request, b.Request),
		cmp.Compare(a.Status, b.Status),
	)
}

// Counters are per-series sums.
type Counters struct {
	Requests     int64
	Failures     int64
	Retries      int64
	BytesIn      int64
	BytesOut     int64
	ChecksPassed int64
	ChecksFailed int64
}

// Add adds o into c.
func (c *Counters) Add(o Counters) {
	c.Requests += o.Requests
	c.Failures += o.Failures
	c.Retries += o.Retries
	c.BytesIn += o.BytesIn
	c.BytesOut += o.BytesOut
	c.ChecksPassed += o.ChecksPassed
	c.ChecksFailed += o.ChecksFailed
}

func countersFromProto(p *surgev1.Counters) Counters {
	return Counters{
		Requests:     p.GetRequests(),
		Failures:     p.GetFailures(),
		Retries:      p.GetRetries(),
		BytesIn:      p.GetBytesIn(),
		BytesOut:     p.GetBytesOut(),
		ChecksPassed: p.GetChecksPassed(),
		ChecksFailed: p.GetChecksFailed(),
	}
}

func (c Counters) proto() *surgev1.Counters {
	return &surgev1.Counters{
		Requests:     c.Requests,
		Failures:     c.Failures,
		Retries:      c.Retries,
		BytesIn:      c.BytesIn,
		BytesOut:     c.BytesOut,
		ChecksPassed: c.ChecksPassed,
		ChecksFailed: c.ChecksFailed,
	}
}

func (c Counters) valid() error {
	for _, v := range []int64{c.Requests, c.Failures, c.Retries, c.BytesIn, c.BytesOut, c.ChecksPassed, c.ChecksFailed} {
		if v < 0 {
			return fmt.Errorf("%w: negative counter", ErrInvalid)
		}
	}
	if c.Failures > c.Requests {
		return fmt.Errorf("%w: %d failures of %d requests", ErrInvalid, c.Failures, c.Requests)
	}
	return nil
}

// Series is one key's counters and histograms.
type Series struct {
	Counters Counters
	// Latency from the intended send time (open model) or the send (closed).
	Latency *hdrhistogram.Histogram
	// Service time from the actual send.
	Service *hdrhistogram.Histogram
	// Phases are the HTTP phase and attempt histograms, nil until a value
	// is recorded (most requests reuse a connection and have no dns,
	// connect or tls phase; attempts exist only when a scenario retries).
	Phases [NumPhases]*hdrhistogram.Histogram
}

// Phase names one of a series' optional histograms.
type Phase int

// The phases, in wire order.
const (
	PhaseDNS Phase = iota
	PhaseConnect
	PhaseTLS
	PhaseTTFB
	PhaseAttempt
	NumPhases
)

// String is the phase's metric name, as in http_req_<name>.
func (p Phase) String() string {
	switch p {
	case PhaseDNS:
		return "dns"
	case PhaseConnect:
		return "connect"
	case PhaseTLS:
		return "tls"
	case PhaseTTFB:
		return "ttfb"
	case PhaseAttempt:
		return "attempt"
	}
	return fmt.Sprintf("phase(%d)", int(p))
}

// PhaseProto returns wire series p's histogram of phase ph, nil when absent.
func PhaseProto(p *surgev1.Series, ph Phase) *surgev1.Histogram {
	switch ph {
	case PhaseDNS:
		return p.GetDns()
	case PhaseConnect:
		return p.GetConnect()
	case PhaseTLS:
		return p.GetTls()
	case PhaseTTFB:
		return p.GetTtfb()
	case PhaseAttempt:
		return p.GetAttempt()
	}
	return nil
}

// setPhaseProto sets wire series p's histogram of phase ph.
func setPhaseProto(p *surgev1.Series, ph Phase, h *surgev1.Histogram) {
	switch ph {
	case PhaseDNS:
		p.Dns = h
	case PhaseConnect:
		p.Connect = h
	case PhaseTLS:
		p.Tls = h
	case PhaseTTFB:
		p.Ttfb = h
	case PhaseAttempt:
		p.Attempt = h
	}
}

// NewSeries returns an empty series.
func NewSeries() *Series {
	return &Series{Latency: New(), Service: New()}
}

// RecordPhase records us microseconds into phase p, allocating its
// histogram on first use.
func (s *Series) RecordPhase(p Phase, us int64) {
	if s.Phases[p] == nil {
		s.Phases[p] = New()
	}
	_ = s.Phases[p].RecordValue(Clamp(us))
}

// Merge adds o into s exactly; it returns the values the histograms dropped.
func (s *Series) Merge(o *Series) (dropped int64) {
	s.Counters.Add(o.Counters)
	dropped += s.Latency.Merge(o.Latency)
	dropped += s.Service.Merge(o.Service)
	for p, h := range o.Phases {
		if h == nil {
			continue
		}
		if s.Phases[p] == nil {
			s.Phases[p] = New()
		}
		dropped += s.Phases[p].Merge(h)
	}
	return dropped
}

// Set is a set of series by key. It is not safe for concurrent use.
type Set struct {
	m map[Key]*Series
	// merger's scratch is reused by MergeProto and ValidateAndMergeProto
	// from snapshot to snapshot: 16 bytes per populated bucket of the
	// largest snapshot merged, small next to the dense histograms (184 KB
	// each) the set holds.
	merger Merger
}

// NewSet returns an empty set.
func NewSet() *Set { return &Set{m: make(map[Key]*Series)} }

// Get returns the series for k, creating it if needed.
func (s *Set) Get(k Key) *Series {
	sr, ok := s.m[k]
	if !ok {
		sr = NewSeries()
		s.m[k] = sr
	}
	return sr
}

// Lookup returns the series for k, or nil.
func (s *Set) Lookup(k Key) *Series { return s.m[k] }

// Len is the number of series.
func (s *Set) Len() int { return len(s.m) }

// Keys returns the keys sorted.
func (s *Set) Keys() []Key {
	keys := make([]Key, 0, len(s.m))
	for k := range s.m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, compareKeys)
	return keys
}

// Merge adds every series of o into s.
func (s *Set) Merge(o *Set) (dropped int64) {
	for k, sr := range o.m {
		dropped += s.Get(k).Merge(sr)
	}
	return dropped
}

// Total merges the series whose key satisfies keep (nil: all) into one.
func (s *Set) Total(keep func(Key) bool) *Series {
	t := NewSeries()
	for k, sr := range s.m {
		if keep == nil || keep(k) {
			t.Merge(sr)
		}
	}
	return t
}

// ToProto encodes the set, sorted by key.
func (s *Set) ToProto() []*surgev1.Series {
	var e Encoder
	return s.EncodeProto(&e)
}

// EncodeProto is ToProto with the caller's Encoder, whose scratch space is
// reused from one snapshot to the next.
func (s *Set) EncodeProto(e *Encoder) []*surgev1.Series {
	out := make([]*surgev1.Series, 0, len(s.m))
	for _, k := range s.Keys() {
		sr := s.m[k]
		p := &surgev1.Series{
			Key:      &surgev1.SeriesKey{Scenario: k.Scenario, Flow: k.Flow, Request: k.Request, Status: k.Status},
			Counters: sr.Counters.proto(),
			Latency:  e.ToProto(sr.Latency),
			Service:  e.ToProto(sr.Service),
		}
		for ph, h := range sr.Phases {
			if h != nil { // ToProto gives nil for an empty one: absent
				setPhaseProto(p, Phase(ph), e.ToProto(h))
			}
		}
		out = append(out, p)
	}
	return out
}

// ValidateProto checks wire series without merging them: keys present,
// counters sane, histograms valid, and no more than maxSeries series.
func ValidateProto(ps []*surgev1.Series, maxSeries int) error {
	if len(ps) > maxSeries {
		return fmt.Errorf("%w: %d series, at most %d", ErrInvalid, len(ps), maxSeries)
	}
	for i, p := range ps {
		if p.GetKey() == nil {
			return fmt.Errorf("series %d: %w: no key", i, ErrInvalid)
		}
		if err := countersFromProto(p.GetCounters()).valid(); err != nil {
			return fmt.Errorf("series %d: %w", i, err)
		}
		if err := Validate(p.GetLatency()); err != nil {
			return fmt.Errorf("series %d latency: %w", i, err)
		}
		if err := Validate(p.GetService()); err != nil {
			return fmt.Errorf("series %d service: %w", i, err)
		}
		for ph := range NumPhases {
			if err := Validate(PhaseProto(p, ph)); err != nil {
				return fmt.Errorf("series %d %s: %w", i, ph, err)
			}
		}
	}
	return nil
}

// MergeProto merges wire series into s. Call ValidateProto first: an invalid
// series met here is reported and merging stops there.
func (s *Set) MergeProto(ps []*surgev1.Series) (dropped int64, err error) {
	return s.MergeProtoWith(&s.merger, ps)
}

// MergeProtoWith is MergeProto with the caller's Merger, whose scratch space
// is reused from one snapshot to the next.
func (s *Set) MergeProtoWith(m *Merger, ps []*surgev1.Series) (dropped int64, err error) {
	for i, p := range ps {
		k := p.GetKey()
		sr := s.Get(Key{Scenario: k.GetScenario(), Flow: k.GetFlow(), Request: k.GetRequest(), Status: k.GetStatus()})
		d, err := m.MergeProto(sr.Latency, p.GetLatency())
		if err != nil {
			return dropped, fmt.Errorf("series %d latency: %w", i, err)
		}
		dropped += d
		if d, err = m.MergeProto(sr.Service, p.GetService()); err != nil {
			return dropped, fmt.Errorf("series %d service: %w", i, err)
		}
		dropped += d
		for ph := range NumPhases {
			wp := PhaseProto(p, ph)
			if wp == nil {
				continue
			}
			if sr.Phases[ph] == nil {
				sr.Phases[ph] = New()
			}
			if d, err = m.MergeProto(sr.Phases[ph], wp); err != nil {
				return dropped, fmt.Errorf("series %d %s: %w", i, ph, err)
			}
			dropped += d
		}
		sr.Counters.Add(countersFromProto(p.GetCounters()))
	}
	return dropped, nil
}

// ValidateAndMergeProto checks ps as ValidateProto does and, only when all
// of it is valid, merges it as MergeProto does, reading each histogram's
// bytes once: a snapshot is merged whole or not at all. It is the one call
// a controller needs per snapshot.
func (s *Set) ValidateAndMergeProto(ps []*surgev1.Series, maxSeries int) (dropped int64, err error) {
	if len(ps) > maxSeries {
		return 0, fmt.Errorf("%w: %d series, at most %d", ErrInvalid, len(ps), maxSeries)
	}
	m := &s.merger
	m.pairs = m.pairs[:0]
	m.ends = m.ends[:0]
	gather := func(i int, what string, h *surgev1.Histogram) error {
		if h != nil {
			if err := checkHeader(h); err != nil {
				return fmt.Errorf("series %d %s: %w", i, what, err)
			}
			if err := checkSparse(h, &m.pairs); err != nil {
				return fmt.Errorf("series %d %s: %w", i, what, err)
			}
		}
		m.ends = append(m.ends, len(m.pairs))
		return nil
	}
	for i, p := range ps {
		if p.GetKey() == nil {
			return 0, fmt.Errorf("series %d: %w: no key", i, ErrInvalid)
		}
		if err := countersFromProto(p.GetCounters()).valid(); err != nil {
			return 0, fmt.Errorf("series %d: %w", i, err)
		}
		if err := gather(i, "latency", p.GetLatency()); err != nil {
			return 0, err
		}
		if err := gather(i, "service", p.GetService()); err != nil {
			return 0, err
		}
		for ph := range NumPhases {
			if err := gather(i, ph.String(), PhaseProto(p, ph)); err != nil {
				return 0, err
			}
		}
	}
	apply := func(dst *hdrhistogram.Histogram, pairs []pair) {
		for _, pr := range pairs {
			if dst.RecordValues(valueAt(int(pr.idx)), pr.count) != nil {
				dropped += pr.count
			}
		}
	}
	// Each series gathered histogramsPerSeries histograms, in the order
	// latency, service, then the phases.
	const histogramsPerSeries = 2 + int(NumPhases)
	start := 0
	for i, p := range ps {
		k := p.GetKey()
		sr := s.Get(Key{Scenario: k.GetScenario(), Flow: k.GetFlow(), Request: k.GetRequest(), Status: k.GetStatus()})
		ends := m.ends[histogramsPerSeries*i : histogramsPerSeries*(i+1)]
		apply(sr.Latency, m.pairs[start:ends[0]])
		apply(sr.Service, m.pairs[ends[0]:ends[1]])
		start = ends[1]
		for ph := range NumPhases {
			end := ends[2+int(ph)]
			if PhaseProto(p, ph) != nil {
				if sr.Phases[ph] == nil {
					sr.Phases[ph] = New()
				}
				apply(sr.Phases[ph], m.pairs[start:end])
			}
			start = end
		}
		sr.Counters.Add(countersFromProto(p.GetCounters()))
	}
	return dropped, nil
}
