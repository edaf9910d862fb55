package aggregate

import (
	"github.com/HdrHistogram/hdrhistogram-go"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
)

// setLive fills a region's progress with what is open at interval iv's end
// (connections and WebSocket sessions, summed over its agents' latest
// reports), the VUs busy then and the most busy at any interval's end so
// far, and the send lateness p99 of its open-model arrivals over the run so
// far. It returns the region's lateness histogram (nil when it has
// none; Run scratch, valid until the next call) for the run-wide figure.
func (r *Run) setLive(rp *surgev1.RegionProgress, iv *interval) *hdrhistogram.Histogram {
	rp.ConnsOpen = iv.connSums[peakKey{region: rp.Region}]
	rp.WsOpen = iv.wsSums[wsPeakKey{region: rp.Region}]
	rp.Vus, rp.VusMax = iv.vuSums[peakKey{region: rp.Region}], r.peakVUs[peakKey{region: rp.Region}]
	var late *hdrhistogram.Histogram
	for k, t := range r.scen {
		if k.region != rp.Region || t.lateness == nil {
			continue
		}
		if late == nil {
			late = reset(&r.scratch.late)
		}
		late.Merge(t.lateness)
	}
	if late != nil {
		rp.SendLatenessP99Us = late.ValueAtQuantile(99)
	}
	return late
}
