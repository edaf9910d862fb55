package plan

// Values of Plan.OnAgentLoss.
const (
	OnAgentLossReshare  = "reshare"
	OnAgentLossContinue = "continue"
	OnAgentLossAbort    = "abort"
)

// checkFaults validates the plan's fault-handling keys and applies their
// defaults: on_agent_loss is reshare unless given; controller_loss_grace,
// when given, is positive.
func checkFaults(l *errorList, p *Plan) {
	switch p.OnAgentLoss {
	case "":
		p.OnAgentLoss = OnAgentLossReshare
	case OnAgentLossReshare, OnAgentLossContinue, OnAgentLossAbort:
	default:
		l.add("on_agent_loss", "must be reshare, continue or abort, got %q", p.OnAgentLoss)
	}
	if p.ControllerLossGrace < 0 {
		l.add("controller_loss_grace", "must be positive, got %s", p.ControllerLossGrace)
	}
}
