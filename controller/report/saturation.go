package report

import (
	"strings"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
)

// Saturation is one interval in which one agent could not be trusted to
// generate the planned load, with the figures that flagged it.
type Saturation struct {
	Interval          int64    `json:"interval"`
	Agent             string   `json:"agent"`
	Region            string   `json:"region"`
	CPUPercent        float64  `json:"cpu_percent"`
	LatenessP99US     int64    `json:"send_lateness_p99_us"`
	DroppedIterations int64    `json:"dropped_iterations"`
	Reasons           []string `json:"reasons"`
}

// saturationFromProto converts the run's flags, never nil.
func saturationFromProto(fs []*surgev1.SaturationFlag) []Saturation {
	out := make([]Saturation, 0, len(fs))
	for _, f := range fs {
		out = append(out, Saturation{
			Interval:          f.GetInterval(),
			Agent:             f.GetAgentId(),
			Region:            f.GetRegion(),
			CPUPercent:        finite(f.GetCpuPercent()),
			LatenessP99US:     f.GetLatenessP99Us(),
			DroppedIterations: f.GetDroppedIterations(),
			Reasons:           append([]string{}, f.GetReasons()...),
		})
	}
	return out
}

// maxSaturationRows bounds the flags the text summary lists; the JSON
// summary has them all.
const maxSaturationRows = 20

// saturationText lists each flagged interval with its agent, region and
// reasons.
func saturationText(p *printer, fs []Saturation) {
	if len(fs) == 0 {
		return
	}
	p.printf("\nsaturation\n")
	tw := p.table()
	tw.printf("  INTERVAL\tAGENT\tREGION\tREASONS\n")
	for i, f := range fs {
		if i == maxSaturationRows {
			tw.printf("  …\t%d more\t\t(--json lists them all)\n", len(fs)-i)
			break
		}
		tw.printf("  %d\t%s\t%s\t%s\n", f.Interval, f.Agent, f.Region, strings.Join(f.Reasons, "; "))
	}
	tw.flush()
}
