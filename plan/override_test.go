package plan

import (
	"strings"
	"testing"
)

const overridePlan = `name: ov
scenarios:
  api:
    executor: constant-arrival-rate
    rate: 100
    duration: 10s
    pre_allocated_vus: 5
    requests:
      - url: http://127.0.0.1:8080/a
      - url: http://127.0.0.1:8080/b
`

func mustOverrides(t *testing.T, sets, envs []string) []Override {
	t.Helper()
	var out []Override
	for _, s := range sets {
		o, err := ParseOverride(s)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, o)
	}
	for _, s := range envs {
		o, err := EnvOverride(s)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, o)
	}
	return out
}

// TestOverridesApply: --set replaces a value, an item of a list and whole
// structures, creates the mappings it needs, -e values stay strings, and
// the YAML to submit carries them all.
func TestOverridesApply(t *testing.T) {
	ovs := mustOverrides(t,
		[]string{"scenarios.api.rate=500", "scenarios.api.requests[1].url=http://127.0.0.1:8080/c", "tags.commit=abc", "thresholds={http_req_failed: [rate<0.1]}"},
		[]string{"TOKEN=0123", "EMPTY="})
	p, out, err := ParseFile("ov.yaml", []byte(overridePlan), Options{Overrides: ovs})
	if err != nil {
		t.Fatal(err)
	}
	sc := p.Scenarios["api"]
	if sc.Rate != 500 || sc.Requests[1].URL != "http://127.0.0.1:8080/c" || sc.Requests[0].URL != "http://127.0.0.1:8080/a" {
		t.Errorf("scenario %+v", sc)
	}
	if p.Tags["commit"] != "abc" || len(p.Thresholds) != 1 || p.Env["TOKEN"] != "0123" || p.Env["EMPTY"] != "" || len(p.Env) != 2 {
		t.Errorf("tags %v thresholds %v env %v", p.Tags, p.Thresholds, p.Env)
	}
	again, err := Parse("ov.yaml", out)
	if err != nil || again.Scenarios["api"].Rate != 500 || again.Env["TOKEN"] != "0123" {
		t.Errorf("submitted YAML does not carry the overrides (%v):\n%s", err, out)
	}
	if v, ok := p.LookupEnv(func(string) (string, bool) { return "agent", true })("TOKEN"); !ok || v != "0123" {
		t.Errorf("env TOKEN = %q, want the plan's", v)
	}
	if v, _ := p.LookupEnv(func(string) (string, bool) { return "agent", true })("HOME"); v != "agent" {
		t.Errorf("env HOME = %q, want the agent's", v)
	}
}

// TestOverrideErrors: a bad override is named in its error, problems the
// override makes are reported at the override (not a line), and the
// plan's own problems keep their lines.
func TestOverrideErrors(t *testing.T) {
	for _, c := range []struct{ set, want string }{
		{"scenarios.api.rate", `--set "scenarios.api.rate": want PATH=VALUE`},
		{"scenarios..rate=1", `want keys separated by dots`},
		{"scenarios.api.requests[5].url=x", `--set scenarios.api.requests[5].url=x: scenarios.api.requests has no item 5`},
		{"name.x=1", `--set name.x=1: name is not a mapping`},
		{"scenarios.api.rate=[1", `--set scenarios.api.rate=[1: the value is not YAML`},
	} {
		o, err := ParseOverride(c.set)
		if err == nil {
			_, _, err = ParseFile("ov.yaml", []byte(overridePlan), Options{Overrides: []Override{o}})
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("--set %s: %v, want %q", c.set, err, c.want)
		}
	}
	ovs := mustOverrides(t, []string{"scenarios.api.rate=fast", "scenarios.api.vus=3", "scenarios.api.retries=2"}, nil)
	bad := strings.Replace(overridePlan, "duration: 10s", "duration: 10 parsecs", 1)
	_, _, err := ParseFile("ov.yaml", []byte(bad), Options{Overrides: ovs})
	if err == nil {
		t.Fatal("no error")
	}
	got := err.Error()
	for _, want := range []string{
		"ov.yaml: --set scenarios.api.rate=fast: scenarios.api.rate:",
		"ov.yaml: --set scenarios.api.vus=3: scenarios.api.vus:",
		"ov.yaml: --set scenarios.api.retries=2: scenarios.api.retries:",
		"ov.yaml:6:15: scenarios.api.duration:",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("errors lack %q:\n%s", want, got)
		}
	}
	if _, err := EnvOverride("9X=1"); err == nil || !strings.Contains(err.Error(), `-e "9X=1"`) {
		t.Errorf("-e 9X=1: %v", err)
	}
	if _, err := ScenarioOverride([]byte(overridePlan+"  other:\n    executor: constant-vus\n"), "vus", "3", "--vus 3"); err == nil ||
		!strings.Contains(err.Error(), "--vus 3: only for a plan of one scenario, this one has 2") {
		t.Errorf("--vus on two scenarios: %v", err)
	}
	o, err := ScenarioOverride([]byte(overridePlan), "duration", "1m", "--duration 1m")
	if err != nil || o.Path != "scenarios.api.duration" {
		t.Errorf("--duration: %+v %v", o, err)
	}
}
