package judge

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Metrics the judge knows: latency_ms is each compare group's latency
// distribution; the others are series of the whole run, one value per
// interval; monitor:NAME is a plan monitor's.
var seriesMetrics = []string{"rps", "error_rate", "p50_ms", "p95_ms", "p99_ms"}

// LatencyMetric is the distribution metric.
const LatencyMetric = "latency_ms"

var monitorMetric = regexp.MustCompile(`^monitor:[A-Za-z_][A-Za-z0-9_]*$`)

// KnownMetric reports whether the judge can judge metric.
func KnownMetric(m string) bool {
	return m == LatencyMetric || monitorMetric.MatchString(m) || slices.Contains(seriesMetrics, m)
}

// Config is a judge config file (`surge compare --judge-config FILE`).
type Config struct {
	Confidence float64         `yaml:"confidence"`
	Pass       float64         `yaml:"pass"`
	Marginal   float64         `yaml:"marginal"`
	Metrics    map[string]Rule `yaml:"metrics"`
	// Order is the metrics in the file's order.
	Order []string `yaml:"-"`
}

// ParseConfig reads a judge config; every problem is named with
// file:line.
func ParseConfig(file string, src []byte) (*Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(src))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	var root yaml.Node
	_ = yaml.Unmarshal(src, &root)
	lines := metricLines(&root)
	var errs []error
	add := func(line int, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s:%d: %s", file, line, fmt.Sprintf(format, args...)))
	}
	if c.Confidence != 0 && !(c.Confidence > 0 && c.Confidence < 1) {
		add(keyLine(&root, "confidence"), "confidence %v: want a level between 0 and 1", c.Confidence)
	}
	if c.Marginal < 0 || c.Pass > 100 || c.Pass != 0 && c.Marginal > c.Pass {
		add(keyLine(&root, "pass"), "pass %v, marginal %v: want 0 <= marginal <= pass <= 100", c.Pass, c.Marginal)
	}
	if len(c.Metrics) == 0 {
		add(1, "metrics: at least one metric is required (%s, %s, monitor:NAME)", LatencyMetric, strings.Join(seriesMetrics, ", "))
	}
	for _, name := range lines.order {
		r := c.Metrics[name]
		switch {
		case !KnownMetric(name):
			add(lines.at[name], "metrics.%s: unknown metric (known: %s, %s, monitor:NAME)", name, LatencyMetric, strings.Join(seriesMetrics, ", "))
		case r.Direction != "" && r.Direction != "increase" && r.Direction != "decrease" && r.Direction != "either":
			add(lines.at[name], "metrics.%s.direction %q: want increase, decrease or either", name, r.Direction)
		case !(r.AllowedIncrease >= 0 && r.AllowedIncrease <= 1) || !(r.AllowedDecrease >= 0 && r.AllowedDecrease <= 1):
			add(lines.at[name], "metrics.%s: allowed_increase and allowed_decrease are fractions from 0 to 1 (0.05 allows 5%%)", name)
		}
	}
	c.Order = lines.order
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return &c, nil
}

type metricPositions struct {
	order []string
	at    map[string]int
}

// metricLines finds each metrics key's line, in order.
func metricLines(root *yaml.Node) metricPositions {
	out := metricPositions{at: map[string]int{}}
	doc := root
	if doc.Kind == yaml.DocumentNode && len(doc.Content) > 0 {
		doc = doc.Content[0]
	}
	for i := 0; i+1 < len(doc.Content); i += 2 {
		if doc.Content[i].Value != "metrics" {
			continue
		}
		m := doc.Content[i+1]
		for j := 0; j+1 < len(m.Content); j += 2 {
			out.order = append(out.order, m.Content[j].Value)
			out.at[m.Content[j].Value] = m.Content[j].Line
		}
	}
	return out
}

// keyLine is the line of a top-level key; 1 when absent.
func keyLine(root *yaml.Node, key string) int {
	doc := root
	if doc.Kind == yaml.DocumentNode && len(doc.Content) > 0 {
		doc = doc.Content[0]
	}
	for i := 0; i+1 < len(doc.Content); i += 2 {
		if doc.Content[i].Value == key {
			return doc.Content[i].Line
		}
	}
	return 1
}
