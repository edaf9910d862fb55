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
		out[region] = set.ToProto()
		if iv.emitted {
			// Only late snapshots merge into it from now on: free the
			// merge buffers (94 KB per histogram) until one does.
			set.Compact()
		}
	}
	return out, true
}

// Emitted reports whether interval i was emitted.
func (r *Run) Emitted(i int64) bool { return i < r.nextEmit }
