package hist

import (
	"math"

	"github.com/HdrHistogram/hdrhistogram-go"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
)

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
	// Checks are the series' checks by name, sorted (see AddCheck); their
	// passes and fails add up to Counters.ChecksPassed and ChecksFailed.
	Checks []Check

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
	s.addChecks(o.Checks)
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
