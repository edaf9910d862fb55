package aggregate

import (
	"slices"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
)

// IntervalSeries returns interval i's merged series per region, encoded,
// and false when the interval is unknown or was released (older than
// Retain emitted intervals). The map and slices are the caller's; the
// series are shared and must not be changed. An emitted interval keeps its
// series in this encoded form from then on, once the whole run has them:
// its sets' histograms go to the run's pool, for the next interval's sets,
// until a late snapshot unpacks its region again.
func (r *Run) IntervalSeries(i int64) (map[string][]*surgev1.Series, bool) {
	if i < r.releasedBelow {
		return nil, false
	}
	iv := r.intervals[i]
	if iv == nil {
		return nil, false
	}
	out := make(map[string][]*surgev1.Series, len(iv.sets)+len(iv.packed))
	for region, ss := range iv.packed {
		out[region] = slices.Clone(ss)
	}
	for region, set := range iv.sets {
		ss := set.EncodeProto(&r.scratch.enc)
		out[region] = ss
		if iv.emitted && iv.inWhole { // packed, it stays in the whole run
			if iv.packed == nil {
				iv.packed = make(map[string][]*surgev1.Series, len(iv.sets))
			}
			iv.packed[region] = slices.Clone(ss)
			set.Release()
			delete(iv.sets, region)
		}
	}
	return out, true
}

// Emitted reports whether interval i was emitted.
func (r *Run) Emitted(i int64) bool { return i < r.nextEmit }

// Retained reports whether interval i still keeps its histograms (it is
// not older than Retain emitted intervals), so a late snapshot merged into
// it shows in its series.
func (r *Run) Retained(i int64) bool { return i >= r.releasedBelow }

// ReleasedBy returns the bound below which intervals are released once
// interval i was emitted: Emit(i) releases the retained ones below it.
func (r *Run) ReleasedBy(i int64) int64 { return i + 1 - int64(r.cfg.Retain) }
