package hist

import (
	"fmt"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
)

// ValidateProto checks wire series without merging them: keys present,
// counters and checks sane, histograms valid, and no more than maxSeries
// series.
func ValidateProto(ps []*surgev1.Series, maxSeries int) error {
	if len(ps) > maxSeries {
		return fmt.Errorf("%w: %d series, at most %d", ErrInvalid, len(ps), maxSeries)
	}
	for i, p := range ps {
		if err := checkKeyCounters(i, p); err != nil {
			return err
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
		sr := s.series(keyFromProto(p.GetKey()), nil)
		for j := range numHists {
			d, err := sr.addWire(j, histProto(p, j), m, nil)
			if err != nil {
				return dropped, fmt.Errorf("series %d %s: %w", i, histName(j), err)
			}
			dropped += d
		}
		sr.Counters.Add(countersFromProto(p.GetCounters()))
		sr.addChecksProto(p.GetChecks())
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
		if err := checkKeyCounters(i, p); err != nil {
			return 0, err
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
		sr := s.series(keyFromProto(p.GetKey()), u)
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
		sr := s.m[keyFromProto(p.GetKey())]
		sr.Counters.Add(countersFromProto(p.GetCounters()))
		sr.addChecksProto(p.GetChecks())
	}
	return dropped, nil
}

// checkKeyCounters checks series i's key, counters and checks, what needs
// no decoding.
func checkKeyCounters(i int, p *surgev1.Series) error {
	if p.GetKey() == nil {
		return fmt.Errorf("series %d: %w: no key", i, ErrInvalid)
	}
	if err := countersFromProto(p.GetCounters()).valid(); err != nil {
		return fmt.Errorf("series %d: %w", i, err)
	}
	if err := validChecks(p); err != nil {
		return fmt.Errorf("series %d: %w", i, err)
	}
	return nil
}
