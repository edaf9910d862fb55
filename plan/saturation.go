package plan

import "time"

// Defaults of the saturation bounds.
const (
	// DefaultSaturationCPU is the agent CPU, percent of one core, above
	// which an interval is flagged.
	DefaultSaturationCPU = 90.0
	// DefaultSaturationLateness is the send-lateness p99 above which an
	// interval is flagged.
	DefaultSaturationLateness = Duration(10 * time.Millisecond)
)

// Saturation bounds generator honesty: an interval in which one agent's
// figures cross any bound is flagged as saturated, so the load it applied
// may be below the plan.
type Saturation struct {
	// CPU is the agent CPU, percent of one core (above 100 on several
	// cores); default 90.
	CPU float64 `yaml:"cpu,omitempty" json:"cpu,omitempty"`
	// SendLateness bounds the p99 of the interval's open-model send
	// lateness; default 10ms.
	SendLateness Duration `yaml:"send_lateness,omitempty" json:"send_lateness,omitempty"`
	// Dropped is how many dropped iterations an agent may have in one
	// interval before it is flagged; default 0.
	Dropped int64 `yaml:"dropped,omitempty" json:"dropped,omitempty"`
}

// checkSaturation validates the saturation bounds and fills the defaults.
func checkSaturation(l *errorList, p *Plan) {
	s := &p.Saturation
	switch {
	case s.CPU == 0:
		s.CPU = DefaultSaturationCPU
	case s.CPU < 0:
		l.add("saturation.cpu", "must be a percentage of one core above 0, got %g", s.CPU)
	}
	switch {
	case s.SendLateness == 0:
		s.SendLateness = DefaultSaturationLateness
	case s.SendLateness < 0:
		l.add("saturation.send_lateness", "must be positive, got %s", s.SendLateness)
	}
	if s.Dropped < 0 {
		l.add("saturation.dropped", "must be 0 or more, got %d", s.Dropped)
	}
}
