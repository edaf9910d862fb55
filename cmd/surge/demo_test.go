package main

import (
	"strings"
	"testing"
	"time"

	"github.com/surgeload/surge/plan"
)

func TestScalePlan(t *testing.T) {
	src, err := demoPlan("127.0.0.1:4242", 6*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	p, err := plan.Parse("demo.yaml", src)
	if err != nil {
		t.Fatal(err)
	}
	for _, tg := range p.Scenarios["browse"].Targets() {
		if !strings.HasPrefix(tg.URL, "http://127.0.0.1:4242/") {
			t.Errorf("target base not replaced: %s\n%s", tg.URL, src)
		}
	}
	if got := p.TotalDuration(); got < 6*time.Second-10*time.Millisecond || got > 6*time.Second+10*time.Millisecond {
		t.Errorf("scaled total = %s, want about 6s", got)
	}

	scaled, err := scalePlan("p.yaml", []byte(goodPlan), 8*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	p, err = plan.Parse("p.yaml", scaled)
	if err != nil {
		t.Fatal(err)
	}
	u := p.Scenarios["users"]
	if p.TotalDuration() != 8*time.Second || u.StartTime.D() != 2*time.Second || u.Stages[1].Duration.D() != 4*time.Second ||
		p.Scenarios["steady"].Duration.D() != 4*time.Second {
		t.Errorf("scaled plan:\n%s", scaled)
	}

	if _, err := scalePlan("bad.yaml", []byte(badPlan), time.Second); err == nil {
		t.Error("scaling an invalid plan: want an error")
	}
}
