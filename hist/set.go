package hist

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"math"
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

	// pend holds wire counts a Set merged but has not folded into the
	// histograms yet; nil when the series never took a wire merge.
	pend *pending
	// pool gives the histograms and merge buffers created for the series
	// (nil: allocate): its set's.
	pool *Pool
}

// numHists is how many histograms a series has: latency, service, then
// the phases in wire order.
const numHists = 2 + int(NumPhases)

// hist returns histogram j (see numHists), nil when absent.
func (s *Series) hist(j int) *hdrhistogram.Histogram {
	switch j {
	case 0:
		return s.Latency
	case 1:
		return s.Service
	}
	return s.Phases[j-2]
}

// ensureHist returns histogram j, creating it if it is absent.
func (s *Series) ensureHist(j int) (h *hdrhistogram.Histogram, created bool) {
	if h := s.hist(j); h != nil {
		return h, false
	}
	h = s.pool.Get()
	switch j {
	case 0:
		s.Latency = h
	case 1:
		s.Service = h
	default:
		s.Phases[j-2] = h
	}
	return h, true
}

// histProto returns wire series p's histogram j (see numHists).
func histProto(p *surgev1.Series, j int) *surgev1.Histogram {
	switch j {
	case 0:
		return p.GetLatency()
	case 1:
		return p.GetService()
	}
	return PhaseProto(p, Phase(j-2))
}

// histName names histogram j in errors.
func histName(j int) string {
	switch j {
	case 0:
		return "latency"
	case 1:
		return "service"
	}
	return Phase(j - 2).String()
}

// pending is a series' wire counts not yet in its histograms. Adding a
// wire histogram's (index, count) pairs into a dense array of surge's own
// costs a fraction of recording each bucket into an hdrhistogram-go
// Histogram, which does not expose its counts (RecordValues maps a value
// back to the index the wire already carries). A read of the series folds
// the pending counts in, once for however many merges came before it.
type pending [numHists]*accum

// accum is one histogram's pending counts.
type accum struct {
	c *counts
	// lo and hi bound the indexes that may be non-zero; total is their
	// sum (0: nothing pending, lo and hi are stale).
	lo, hi int
	total  int64
	// With one add since the last fold (single), first is a copy of its
	// sparse bytes: folding walks them instead of scanning lo..hi, which
	// keeps a set read after every merge (a run with one agent) as cheap
	// as recording the pairs directly.
	first  []byte
	single bool
}

// add checks wire histogram p and adds its counts to a; on error a is as
// it was. h is the histogram a folds into: counts that would overflow its
// total are dropped, not added. The caller made room (want within
// maxPending - a.total) or, for a larger want, validated p: such counts
// are recorded into h directly.
func (a *accum) add(h *hdrhistogram.Histogram, p *surgev1.Histogram, m *Merger) (dropped int64, err error) {
	if err := checkHeader(p); err != nil {
		return 0, err
	}
	want := p.GetTotal()
	if want < 0 || want > math.MaxInt64-h.TotalCount()-a.total {
		// Not representable: check the counts, add nothing.
		if err := checkSparse(p, nil); err != nil {
			return 0, err
		}
		return want, nil
	}
	if want > maxPending-a.total {
		return m.MergeProto(h, p)
	}
	lo, hi, err := addSparse(a.c, p.GetSparse(), want)
	if err != nil {
		return 0, err
	}
	if lo > hi {
		return 0, nil
	}
	if a.total == 0 {
		a.lo, a.hi = lo, hi
		a.first, a.single = append(a.first[:0], p.GetSparse()...), true
	} else {
		a.lo, a.hi = min(a.lo, lo), max(a.hi, hi)
		a.single = false
	}
	a.total += want
	return 0, nil
}

// forEach calls f with every index that may hold a pending count, in
// increasing order.
func (a *accum) forEach(f func(i int)) {
	if !a.single {
		for i := a.lo; i <= a.hi; i++ {
			f(i)
		}
		return
	}
	b := a.first
	idx := -1
	for i := 0; i < len(b); {
		gap := uint64(b[i])
		if gap < 0x80 {
			i++
		} else {
			gap, i = uvarintSlow(b, i)
		}
		if b[i] < 0x80 {
			i++
		} else {
			_, i = uvarintSlow(b, i)
		}
		if idx < 0 {
			idx = int(gap)
		} else {
			idx += int(gap)
		}
		f(idx)
	}
}

// fold records a's counts into h and clears them.
func (a *accum) fold(h *hdrhistogram.Histogram) {
	if a.total == 0 {
		return
	}
	c := a.c
	if a.single {
		a.forEach(func(i int) {
			// Cannot fail: add kept h's total representable.
			_ = h.RecordValues(valueAt(i), int64(c[i]))
			c[i] = 0
		})
	} else {
		for i := a.lo; i <= a.hi; i++ {
			if n := c[i]; n != 0 {
				_ = h.RecordValues(valueAt(i), int64(n))
				c[i] = 0
			}
		}
	}
	a.total = 0
}

// encodeFold is Encoder.ToProto of h once a is folded into it, for an
// empty h: it encodes the sparse form straight from a's counts while
// folding them, without scanning h.
func (a *accum) encodeFold(e *Encoder, h *hdrhistogram.Histogram) *surgev1.Histogram {
	if a.single { // the one wire form added is the encoding
		sparse := slices.Clone(a.first)
		a.fold(h)
		return &surgev1.Histogram{Lowest: Lowest, Highest: Highest, SigFigs: SigFigs, Sparse: sparse, Total: h.TotalCount()}
	}
	buf := e.buf[:0]
	c := a.c
	prev := -1
	for i := a.lo; i <= a.hi; i++ {
		n := c[i]
		if n == 0 {
			continue
		}
		gap := i - prev
		if prev < 0 {
			gap = i
		}
		buf = binary.AppendUvarint(buf, uint64(gap))
		buf = binary.AppendUvarint(buf, uint64(n))
		prev = i
		_ = h.RecordValues(valueAt(i), int64(n))
		c[i] = 0
	}
	a.total = 0
	e.buf = buf
	return &surgev1.Histogram{Lowest: Lowest, Highest: Highest, SigFigs: SigFigs, Sparse: slices.Clone(buf), Total: h.TotalCount()}
}

// accum returns histogram j's pending counts, allocating them on first use.
func (s *Series) accum(j int) *accum {
	if s.pend == nil {
		s.pend = new(pending)
	}
	a := s.pend[j]
	if a == nil {
		a = s.pool.getAccum()
		s.pend[j] = a
	}
	return a
}

// fold records every pending wire count into the histograms.
func (s *Series) fold() {
	if s.pend == nil {
		return
	}
	for j, a := range s.pend {
		if a != nil {
			a.fold(s.hist(j))
		}
	}
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
		s.Phases[p] = s.pool.Get()
	}
	_ = s.Phases[p].RecordValue(Clamp(us))
}

// Merge adds o into s exactly; it returns the values the histograms dropped.
func (s *Series) Merge(o *Series) (dropped int64) {
	dropped = s.merge(o)
	s.fold()
	return dropped
}

// merge is Merge leaving o's pending wire counts pending in s, for a
// series of a Set (which folds them when it is read).
func (s *Series) merge(o *Series) (dropped int64) {
	s.Counters.Add(o.Counters)
	for j := range numHists {
		oh := o.hist(j)
		if oh == nil {
			continue
		}
		h, _ := s.ensureHist(j)
		if oh.TotalCount() > 0 {
			dropped += h.Merge(oh)
		}
		if o.pend != nil && o.pend[j] != nil && o.pend[j].total > 0 {
			// o's pending wire counts join s's pending ones, as dense
			// counts: no histogram is walked or recorded into here.
			dropped += s.addPending(j, h, o.pend[j])
		}
	}
	return dropped
}

// addPending adds pending counts oa into histogram j's (h), making room
// or dropping them as accum.add does.
func (s *Series) addPending(j int, h *hdrhistogram.Histogram, oa *accum) (dropped int64) {
	a := s.accum(j)
	if oa.total > math.MaxInt64-h.TotalCount()-a.total {
		return oa.total
	}
	if oa.total > maxPending-a.total {
		a.fold(h) // oa.total <= maxPending: now it fits
	}
	c, oc := a.c, oa.c
	for i := oa.lo; i <= oa.hi; i++ {
		c[i] += oc[i]
	}
	if a.total == 0 {
		a.lo, a.hi = oa.lo, oa.hi
	} else {
		a.lo, a.hi = min(a.lo, oa.lo), max(a.hi, oa.hi)
	}
	a.total += oa.total
	a.single = false
	return 0
}

// Set is a set of series by key. It is not safe for concurrent use, reads
// included.
//
// Wire merges (MergeProto, ValidateAndMergeProto) add into per-histogram
// count arrays of the set's own (94 KB each, kept for the next merge
// until Release) and every read through the set (Get, Lookup, Total,
// Merge, ToProto) folds them into the series' histograms first. So a
// *Series shows the wire merges made before the call that returned it:
// after merging more, get it again.
type Set struct {
	m map[Key]*Series
	// pool gives the series' histograms and merge buffers (nil: allocate;
	// see NewPoolSet).
	pool *Pool
	// merger's scratch is reused by MergeProto and ValidateAndMergeProto
	// from snapshot to snapshot.
	merger Merger
}

// NewSet returns an empty set.
func NewSet() *Set { return &Set{m: make(map[Key]*Series)} }

// Get returns the series for k, creating it if needed.
func (s *Set) Get(k Key) *Series {
	sr, ok := s.m[k]
	if !ok {
		sr = s.newSeries()
		s.m[k] = sr
	} else if sr.pend != nil {
		sr.fold()
	}
	return sr
}

// newSeries returns an empty series of s, with histograms from its pool.
func (s *Set) newSeries() *Series {
	return &Series{Latency: s.pool.Get(), Service: s.pool.Get(), pool: s.pool}
}

// Lookup returns the series for k, or nil.
func (s *Set) Lookup(k Key) *Series {
	sr := s.m[k]
	if sr != nil && sr.pend != nil {
		sr.fold()
	}
	return sr
}

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

// Merge adds every series of o into s. Counts o merged from the wire and
// has not folded yet are added as they are, without folding them: merging
// a set that only took wire merges costs a pass over its count arrays.
func (s *Set) Merge(o *Set) (dropped int64) {
	for k, sr := range o.m {
		dropped += s.series(k, nil).merge(sr)
	}
	return dropped
}

// Total merges the series whose key satisfies keep (nil: all) into one.
func (s *Set) Total(keep func(Key) bool) *Series {
	t := NewSeries()
	for k, sr := range s.m {
		if keep == nil || keep(k) {
			t.merge(sr)
		}
	}
	t.fold()
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
			Latency:  sr.encode(e, 0),
			Service:  sr.encode(e, 1),
		}
		for ph := range NumPhases {
			// encode gives nil for an absent or empty one: absent
			setPhaseProto(p, ph, sr.encode(e, 2+int(ph)))
		}
		out = append(out, p)
	}
	return out
}

// encode folds histogram j's pending counts and encodes it. When all of
// its counts are pending (a set that only took wire merges), the sparse
// form comes straight from them.
func (s *Series) encode(e *Encoder, j int) *surgev1.Histogram {
	h := s.hist(j)
	if h == nil {
		return nil
	}
	if s.pend != nil {
		if a := s.pend[j]; a != nil && a.total > 0 {
			if h.TotalCount() == 0 {
				return a.encodeFold(e, h)
			}
			a.fold(h)
		}
	}
	return e.ToProto(h)
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
		for j := range numHists {
			if err := Validate(histProto(p, j)); err != nil {
				return fmt.Errorf("series %d %s: %w", i, histName(j), err)
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
		sr := s.series(Key{Scenario: k.GetScenario(), Flow: k.GetFlow(), Request: k.GetRequest(), Status: k.GetStatus()}, nil)
		for j := range numHists {
			d, err := sr.addWire(j, histProto(p, j), m, nil)
			if err != nil {
				return dropped, fmt.Errorf("series %d %s: %w", i, histName(j), err)
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
	// What needs no decoding first: keys, counters, histogram headers.
	huge := false
	for i, p := range ps {
		if p.GetKey() == nil {
			return 0, fmt.Errorf("series %d: %w: no key", i, ErrInvalid)
		}
		if err := countersFromProto(p.GetCounters()).valid(); err != nil {
			return 0, fmt.Errorf("series %d: %w", i, err)
		}
		for j := range numHists {
			if h := histProto(p, j); h != nil {
				if err := checkHeader(h); err != nil {
					return 0, fmt.Errorf("series %d %s: %w", i, histName(j), err)
				}
				huge = huge || h.GetTotal() > maxPending
			}
		}
	}
	if huge {
		// Histograms of over 2^31 values are recorded straight into their
		// histograms (see accum.add), which cannot be undone: check
		// everything first.
		if err := ValidateProto(ps, maxSeries); err != nil {
			return 0, err
		}
	}
	// Then the counts, checked while they are added; a bad one undoes
	// what this snapshot added.
	u := &s.merger.undo
	u.reset()
	for i, p := range ps {
		k := p.GetKey()
		sr := s.series(Key{Scenario: k.GetScenario(), Flow: k.GetFlow(), Request: k.GetRequest(), Status: k.GetStatus()}, u)
		for j := range numHists {
			d, err := sr.addWire(j, histProto(p, j), &s.merger, u)
			if err != nil {
				u.rollback(s)
				return 0, fmt.Errorf("series %d %s: %w", i, histName(j), err)
			}
			dropped += d
		}
	}
	for _, p := range ps {
		k := p.GetKey()
		s.m[Key{Scenario: k.GetScenario(), Flow: k.GetFlow(), Request: k.GetRequest(), Status: k.GetStatus()}].Counters.Add(countersFromProto(p.GetCounters()))
	}
	return dropped, nil
}

// series returns the series for k without folding it, creating it (and
// logging that in u, when not nil) if needed.
func (s *Set) series(k Key, u *undo) *Series {
	sr, ok := s.m[k]
	if !ok {
		sr = s.newSeries()
		s.m[k] = sr
		if u != nil {
			u.created = append(u.created, k)
		}
	}
	return sr
}

// addWire adds wire histogram p (nil: none) into histogram j, logging what
// it changed in u when not nil. On error nothing of p was added.
func (s *Series) addWire(j int, p *surgev1.Histogram, m *Merger, u *undo) (dropped int64, err error) {
	if p == nil {
		return 0, nil
	}
	h, created := s.ensureHist(j)
	a := s.accum(j)
	if p.GetTotal() > maxPending-a.total {
		a.fold(h) // make room; the fold is no change to undo
	}
	before := *a
	d, err := a.add(h, p, m)
	if err != nil {
		if created {
			s.dropHist(j)
		}
		return 0, err
	}
	if u != nil {
		u.added = append(u.added, undoAdd{s: s, j: j, before: before, sparse: p.GetSparse(), created: created,
			direct: a.total == before.total})
	}
	return d, nil
}

// dropHist removes phase histogram j again (latency and service always
// exist).
func (s *Series) dropHist(j int) {
	if j >= 2 {
		s.pool.Put(s.Phases[j-2])
		s.Phases[j-2] = nil
	}
}

// undo logs what one ValidateAndMergeProto changed, to take it back.
type undo struct {
	created []Key
	added   []undoAdd
}

type undoAdd struct {
	s       *Series
	j       int
	before  accum
	sparse  []byte
	created bool // the histogram was created for this add
	// direct: nothing went into the pending counts (the counts were
	// dropped, or recorded straight into a histogram of a snapshot that
	// was validated first, so that it is never rolled back).
	direct bool
}

func (u *undo) reset() {
	u.created = u.created[:0]
	clear(u.added) // no pointers into old snapshots kept
	u.added = u.added[:0]
}

// rollback takes back everything u logged, newest first.
func (u *undo) rollback(s *Set) {
	for i := len(u.added) - 1; i >= 0; i-- {
		x := u.added[i]
		a := x.s.pend[x.j]
		if !x.direct {
			subSparse(a.c, x.sparse)
		}
		*a = x.before
		if x.created {
			x.s.dropHist(x.j)
		}
	}
	for _, k := range u.created {
		if sr := s.m[k]; sr != nil {
			sr.release(s.pool)
		}
		delete(s.m, k)
	}
	u.reset()
}
