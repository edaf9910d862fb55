package aggregate

import (
	"fmt"
	"time"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
	"github.com/surgeload/surge/hist"
)

// Defaults of generator-honesty bounds.
const (
	// DefaultSaturationCPU is the agent CPU percentage above which an
	// interval is flagged.
	DefaultSaturationCPU = 90.0
	// DefaultSaturationLateness is the send-lateness p99 above which an
	// interval is flagged.
	DefaultSaturationLateness = 10 * time.Millisecond
	// maxSaturationFlags bounds the flags a run keeps.
	maxSaturationFlags = 10_000
)

// saturation checks one snapshot for generator saturation: CPU over the
// bound, send lateness p99 over the bound, dropped iterations.
func (r *Run) saturation(s *surgev1.Snapshot, region string) *surgev1.SaturationFlag {
	cpuMax := r.cfg.SaturationCPU
	if cpuMax <= 0 {
		cpuMax = DefaultSaturationCPU
	}
	lateMax := r.cfg.SaturationLateness
	if lateMax <= 0 {
		lateMax = DefaultSaturationLateness
	}
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
	if f.DroppedIterations > 0 {
		f.Reasons = append(f.Reasons, fmt.Sprintf("%d dropped iterations", f.DroppedIterations))
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
	return fmt.Sprintf("generator saturated in %d interval(s) (agent CPU > 90%%, send lateness p99 over its bound, or dropped iterations): the load applied may be below the plan and the verdict is less trustworthy; see saturation", n)
}
