package plan

import (
	"strings"
	"testing"
)

func TestOnAgentLoss(t *testing.T) {
	const base = "name: x\nscenarios:\n  s:\n    executor: constant-vus\n    vus: 1\n    duration: 1s\n    requests: [{url: 'http://127.0.0.1:1/'}]\n"
	p, err := Parse("p.yaml", []byte(base))
	if err != nil {
		t.Fatal(err)
	}
	if p.OnAgentLoss != OnAgentLossReshare {
		t.Errorf("default on_agent_loss %q", p.OnAgentLoss)
	}
	p, err = Parse("p.yaml", []byte(base+"on_agent_loss: abort\ncontroller_loss_grace: 5s\n"))
	if err != nil || p.OnAgentLoss != OnAgentLossAbort || p.ControllerLossGrace.D().Seconds() != 5 {
		t.Errorf("abort: %v %+v", err, p)
	}
	_, err = Parse("p.yaml", []byte(base+"on_agent_loss: panic\n"))
	if err == nil || !strings.Contains(err.Error(), "on_agent_loss") || !strings.Contains(err.Error(), "p.yaml:8") {
		t.Errorf("bad value: %v", err)
	}
}
