package judge

import (
	"strings"
	"testing"
)

// TestParseConfig: a config's rules in file order; an unknown metric, a
// bad direction, a negative allowance and a bad level are each named with
// file:line; an unknown key is refused.
func TestParseConfig(t *testing.T) {
	c, err := ParseConfig("judge.yaml", []byte(`confidence: 0.99
pass: 90
marginal: 60
metrics:
  latency_ms: {allowed_increase: 0.05, critical: true}
  error_rate: {direction: increase}
  rps: {direction: decrease, allowed_decrease: 0.1}
  monitor:cpu: {direction: either}
`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Confidence != 0.99 || c.Pass != 90 || c.Marginal != 60 || strings.Join(c.Order, ",") != "latency_ms,error_rate,rps,monitor:cpu" ||
		!c.Metrics["latency_ms"].Critical || c.Metrics["rps"].AllowedDecrease != 0.1 {
		t.Errorf("config %+v", c)
	}
	_, err = ParseConfig("judge.yaml", []byte(`confidence: 2
metrics:
  latency_ms: {allowed_increase: -1}
  p75_ms: {}
  rps: {direction: down}
`))
	got := ""
	if err != nil {
		got = err.Error()
	}
	for _, want := range []string{
		"judge.yaml:1: confidence 2: want a level between 0 and 1",
		"judge.yaml:3: metrics.latency_ms: allowed_increase and allowed_decrease are fractions from 0 to 1 (0.05 allows 5%)",
		"judge.yaml:4: metrics.p75_ms: unknown metric (known: latency_ms, rps, error_rate, p50_ms, p95_ms, p99_ms, monitor:NAME)",
		`judge.yaml:5: metrics.rps.direction "down": want increase, decrease or either`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("errors lack %q:\n%s", want, got)
		}
	}
	if _, err := ParseConfig("judge.yaml", []byte("metrics:\n  rps: {allowed: 1}\n")); err == nil || !strings.Contains(err.Error(), "judge.yaml") || !strings.Contains(err.Error(), "allowed") {
		t.Errorf("unknown key: %v", err)
	}
}
