package hist

import (
	"slices"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
)

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
			Key:      k.proto(),
			Counters: sr.Counters.proto(),
			Latency:  sr.encode(e, 0),
			Service:  sr.encode(e, 1),
			Checks:   ChecksProto(sr.Checks),
		}
		for ph := range NumPhases {
			// encode gives nil for an absent or empty one: absent
			setPhaseProto(p, ph, sr.encode(e, 2+int(ph)))
		}
		out = append(out, p)
	}
	return out
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
