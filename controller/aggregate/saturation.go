package aggregate

import (
	"fmt"
	"time"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
	"github.com/surgeload/surge/hist"
	"github.com/surgeload/surge/plan"
)

// maxSaturationFlags bounds the flags a run keeps.
const maxSaturationFlags = 10_000

// bounds is the run's saturation bounds, plan defaults where unset.
func (r *Run) bounds() plan.Saturation {
	b := r.cfg.Saturation
	if b.CPU <= 0 {
		b.CPU = plan.DefaultSaturationCPU
	}
	if b.SendLateness <= 0 {
		b.SendLateness = plan.DefaultSaturationLateness
	}
	return b
}

// saturation checks one snapshot for generator saturation: CPU over the
// bound, send lateness p99 over the bound, dropped iterations over the
// bound.
func (r *Run) saturation(s *surgev1.Snapshot, region string) *surgev1.SaturationFlag {
	b := r.bounds()
	cpuMax, lateMax := b.CPU, b.SendLateness.D()
	f := &surgev1.SaturationFlag{Interval: s.GetInterval(), AgentId: s.GetAgentId(), Region: region}
	if cpu := s.GetAgent().GetCpuPercent(); cpu > cpuMax {
		f.CpuPercent = cpu
		f.Reasons = append(f.Reasons, fmt.Sprintf("cpu %.0f%% > %.0f%%", cpu, cpuMax))
	}
	// A scratch histogram reused from snapshot to snapshot, packed: its
	// reset and merge cost follow the populated buckets, not 184 KB.
	if r.late == nil {
		r.late = hist.NewPacked()
	}
	late := r.late
	late.Reset()
	for _, sc := range s.GetScenarios() {
		f.DroppedIterations += sc.GetDropped()
		_, _ = r.merger.MergeProtoPacked(late, sc.GetLateness()) // validated with the snapshot
	}
	if late.TotalCount() > 0 {
		if p99 := late.ValueAtPercentile(99); time.Duration(p99)*time.Microsecond > lateMax {
			f.LatenessP99Us = p99
			f.Reasons = append(f.Reasons, fmt.Sprintf("send lateness p99 %s > %s", time.Duration(p99)*time.Microsecond, lateMax))
		}
	}
	if f.DroppedIterations > b.Dropped {
		f.Reasons = append(f.Reasons, fmt.Sprintf("%d dropped iterations > %d", f.DroppedIterations, b.Dropped))
	}
	if len(f.Reasons) == 0 {
		return nil
	}
	return f
}

// addSaturation records a flag, bounded.
func (r *Run) addSaturation(f *surgev1.SaturationFlag) {
	if f == nil {
		return
	}
	r.saturatedIntervals[f.GetInterval()] = true
	if len(r.saturationFlags) < maxSaturationFlags {
		r.saturationFlags = append(r.saturationFlags, f)
	}
}

// SaturationFlags returns the flags of interval i.
func (r *Run) SaturationFlags(i int64) []*surgev1.SaturationFlag {
	var out []*surgev1.SaturationFlag
	for _, f := range r.saturationFlags {
		if f.GetInterval() == i {
			out = append(out, f)
		}
	}
	return out
}

// SaturationNote is a note for the summary and verdict when any interval
// was flagged, else "".
func (r *Run) SaturationNote() string {
	n := len(r.saturatedIntervals)
	if n == 0 {
		return ""
	}
	b := r.bounds()
	return fmt.Sprintf("generator saturated in %d interval(s) (agent CPU > %g%%, send lateness p99 > %s or dropped iterations > %d; each is listed under saturation): the load applied may be below the plan and the verdict is less trustworthy", n, b.CPU, b.SendLateness, b.Dropped)
}
