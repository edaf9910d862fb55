package plan

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// Iteration executors split VUs by largest remainder and iterations with
// them, so the agents' sums are exactly the plan's for any agent count.
func TestSplitIterations(t *testing.T) {
	for _, tc := range []struct {
		executor   string
		vus, iters int64
	}{
		{SharedIterations, 4, 100}, {SharedIterations, 7, 1001}, {SharedIterations, 2, 3},
		{PerVUIterations, 5, 3}, {PerVUIterations, 1, 10},
	} {
		for agents := 1; agents <= 5; agents++ {
			t.Run(fmt.Sprintf("%s/%d-%d/%d", tc.executor, tc.vus, tc.iters, agents), func(t *testing.T) {
				p := &Plan{Name: "p", Scenarios: map[string]*Scenario{"s": {
					Executor: tc.executor, VUs: tc.vus, Iterations: tc.iters, MaxDuration: Duration(time.Minute),
					Requests: []Request{{URL: "http://h/"}},
				}}}
				var infos []AgentInfo
				for i := range agents {
					infos = append(infos, AgentInfo{ID: fmt.Sprint("a", i)})
				}
				shares, err := Split(p, infos)
				if err != nil {
					t.Fatal(err)
				}
				var vus, iters int64
				for _, sh := range shares {
					for _, ss := range sh.Scenarios {
						vus += ss.VUs
						iters += ss.Arrivals
						if ss.Arrivals > 0 && ss.VUs == 0 {
							t.Errorf("agent %s: %d iterations without a VU", sh.AgentID, ss.Arrivals)
						}
						if tc.executor == PerVUIterations && ss.Arrivals != ss.VUs*tc.iters {
							t.Errorf("agent %s: %d iterations for %d VUs", sh.AgentID, ss.Arrivals, ss.VUs)
						}
					}
				}
				want := p.Scenarios["s"].TotalIterations()
				if vus != tc.vus || iters != want {
					t.Errorf("sums: %d VUs, %d iterations; want %d, %d", vus, iters, tc.vus, want)
				}
			})
		}
	}
}

func TestTemplateParse(t *testing.T) {
	parts, err := ParseTemplate(`/u/{{ rand_int 1 9 }}?t={{now_ms}}&k={{env "KEY"}}`)
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != 6 || parts[1].Func != "rand_int" || parts[5].Args[0] != "KEY" {
		t.Errorf("parts = %+v", parts)
	}
	for _, bad := range []string{"{{", "{{}}", "{{rand_int 3 1}}", "{{env KEY}}", "{{vu 1}}", "{{x}}"} {
		if _, err := ParseTemplate(bad); err == nil {
			t.Errorf("ParseTemplate(%q): no error", bad)
		}
	}
}

func TestStatusListMatch(t *testing.T) {
	s := StatusList{"200", "3xx"}
	for code, want := range map[int]bool{200: true, 201: false, 301: true, 404: false} {
		if s.MatchStatus(code) != want {
			t.Errorf("MatchStatus(%d) = %v", code, !want)
		}
	}
}

// A flows key that fails to decode is one problem, not also "no requests";
// a scenario that gives neither still says so.
func TestBadFlowsIsOneError(t *testing.T) {
	head := "name: x\nscenarios:\n  s:\n    executor: constant-vus\n    vus: 1\n    duration: 1s\n"
	_, err := Parse("x.yaml", []byte(head+"    flows:\n      - steps: [{url: 'http://127.0.0.1:1/'}]\n"))
	if err == nil || !strings.Contains(err.Error(), "x.yaml:8:7: scenarios.s.flows: expected a mapping, got a list") {
		t.Fatalf("bad flows: %v", err)
	}
	if strings.Contains(err.Error(), "at least one request") {
		t.Errorf("bad flows also reported as missing requests:\n%v", err)
	}
	_, err = Parse("x.yaml", []byte(head))
	if err == nil || !strings.Contains(err.Error(), "scenarios.s.requests: at least one request (or flows) is required") {
		t.Errorf("no requests nor flows: %v", err)
	}
}
