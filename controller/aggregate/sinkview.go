package aggregate

import surgev1 "github.com/surgeload/surge/gen/surge/v1"

// IntervalSeries returns interval i's merged series per region, encoded (the
// caller owns the result), and false when the interval is unknown or was
// released (older than Retain emitted intervals).
func (r *Run) IntervalSeries(i int64) (map[string][]*surgev1.Series, bool) {
	if i < r.releasedBelow {
		return nil, false
	}
	iv := r.intervals[i]
	if iv == nil {
		return nil, false
	}
	out := make(map[string][]*surgev1.Series, len(iv.sets))
	for region, set := range iv.sets {
		out[region] = set.EncodeProto(&r.scratch.enc)
		if iv.emitted {
			// Only late snapshots merge into it from now on: give the
			// merge buffers (92 KB per histogram) to the run's pool, for
			// the next interval's sets, until one does.
			set.Compact()
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
