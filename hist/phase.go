package hist

import (
	"fmt"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
)

// Phase names one of a series' optional histograms.
type Phase int

// The phases, in wire order.
const (
	PhaseDNS Phase = iota
	PhaseConnect
	PhaseTLS
	PhaseTTFB
	PhaseAttempt
	NumPhases
)

// String is the phase's metric name, as in http_req_<name>.
func (p Phase) String() string {
	switch p {
	case PhaseDNS:
		return "dns"
	case PhaseConnect:
		return "connect"
	case PhaseTLS:
		return "tls"
	case PhaseTTFB:
		return "ttfb"
	case PhaseAttempt:
		return "attempt"
	}
	return fmt.Sprintf("phase(%d)", int(p))
}

// PhaseProto returns wire series p's histogram of phase ph, nil when absent.
func PhaseProto(p *surgev1.Series, ph Phase) *surgev1.Histogram {
	switch ph {
	case PhaseDNS:
		return p.GetDns()
	case PhaseConnect:
		return p.GetConnect()
	case PhaseTLS:
		return p.GetTls()
	case PhaseTTFB:
		return p.GetTtfb()
	case PhaseAttempt:
		return p.GetAttempt()
	}
	return nil
}

// setPhaseProto sets wire series p's histogram of phase ph.
func setPhaseProto(p *surgev1.Series, ph Phase, h *surgev1.Histogram) {
	switch ph {
	case PhaseDNS:
		p.Dns = h
	case PhaseConnect:
		p.Connect = h
	case PhaseTLS:
		p.Tls = h
	case PhaseTTFB:
		p.Ttfb = h
	case PhaseAttempt:
		p.Attempt = h
	}
}
