package plan

import (
	"cmp"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// ThresholdSpec is one parsed threshold condition: Agg of Metric (filtered
// by Tags) compared by Op with Value.
type ThresholdSpec struct {
	Metric string
	Tags   map[string]string
	// Agg is "p", "avg", "min", "max", "med", "rate" or "count".
	Agg string
	// Percentile is N of p(N), in [0, 100].
	Percentile float64
	// Op is one of < <= > >= == !=.
	Op    string
	Value float64
	// Expr is the condition as written, such as "p(95)<500".
	Expr string
	// Key is the thresholds map key as written, such as
	// "http_req_duration{scenario:browse}".
	Key            string
	AbortOnFail    bool
	DelayAbortEval time.Duration
}

// thresholdMetrics lists each supported metric's aggregations. Durations
// are in milliseconds, rates of http_reqs per second, as in k6.
var thresholdMetrics = map[string][]string{
	"http_req_duration":  {"p", "avg", "min", "max", "med"},
	"http_req_failed":    {"rate"},
	"http_reqs":          {"count", "rate"},
	"dropped_iterations": {"count"},
	"iterations":         {"count"},
	"checks":             {"rate", "count"},
	"checks_failed":      {"count"},
	"extract_failed":     {"count"},
	// HTTP phases and attempts (milliseconds), retries.
	"http_req_dns":             {"p", "avg", "min", "max", "med"},
	"http_req_connecting":      {"p", "avg", "min", "max", "med"},
	"http_req_tls_handshaking": {"p", "avg", "min", "max", "med"},
	"http_req_waiting":         {"p", "avg", "min", "max", "med"},
	"http_req_attempt":         {"p", "avg", "min", "max", "med"},
	"http_req_retries":         {"count", "rate"},
	// WebSocket steps: durations in milliseconds; ws_abnormal_closes rate
	// is per session opened.
	"ws_connecting":       {"p", "avg", "min", "max", "med"},
	"ws_session_duration": {"p", "avg", "min", "max", "med"},
	"ws_msg_round_trip":   {"p", "avg", "min", "max", "med"},
	"ws_sessions":         {"count"},
	"ws_abnormal_closes":  {"count", "rate"},
	"ws_msgs_sent":        {"count", "rate"},
	"ws_msgs_received":    {"count", "rate"},
	"ws_replies_missed":   {"count"},
	// monitor:NAME: the plan's monitor NAME over its interval values.
	MonitorMetric: {"p", "avg", "min", "max", "med", "last"},
}

// MonitorMetric is the metric of a `monitor:NAME` threshold; its Tags hold
// the monitor's name under "monitor".
const MonitorMetric = "monitor"

// thresholdTags are the tag keys a threshold may filter on.
// expected_response (k6's tag) is true for responses that are not failures
// (status 1xx-3xx), false for failures.
var thresholdTags = []string{"scenario", "region", "request", "status", "flow", "expected_response"}

// thresholdOps are the comparison operators, longest first for parsing.
var thresholdOps = []string{"<=", ">=", "==", "!=", "<", ">"}

var (
	metricKeyRE = regexp.MustCompile(`^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:\{(.*)\})?\s*$`)
	aggRE       = regexp.MustCompile(`^\s*(?:(p)\(\s*([0-9.eE+-]+)\s*\)|(avg|min|max|med|rate|count|last))\s*$`)
)

// ThresholdSpecs parses every threshold of the plan, sorted by key and then
// in the order written.
func (p *Plan) ThresholdSpecs() ([]ThresholdSpec, error) {
	l := &errorList{file: "plan"}
	specs := p.thresholdSpecs(l)
	return specs, l.err()
}

func (p *Plan) thresholdSpecs(l *errorList) []ThresholdSpec {
	var specs []ThresholdSpec
	for _, key := range sortedKeys(p.Thresholds) {
		kp := joinPath("thresholds", key)
		metric, tags, err := parseMetricKey(key)
		if err != nil {
			l.addKey(kp, "%v", err)
			continue
		}
		aggs := thresholdMetrics[metric]
		for i, th := range p.Thresholds[key] {
			ip := indexPath(kp, i)
			spec, err := parseThresholdExpr(th.Expr)
			if err != nil {
				l.add(ip, "%v", err)
				continue
			}
			if !contains(aggs, spec.Agg) {
				l.add(ip, "aggregation %q does not apply to %s (valid: %s)", spec.Agg, metric, strings.Join(aggs, ", "))
				continue
			}
			if th.DelayAbortEval < 0 {
				l.add(joinPath(ip, "delay_abort_eval"), "must be >= 0, got %s", th.DelayAbortEval)
				continue
			}
			spec.Metric, spec.Tags, spec.Key = metric, tags, key
			spec.AbortOnFail, spec.DelayAbortEval = th.AbortOnFail, th.DelayAbortEval.D()
			specs = append(specs, spec)
		}
	}
	return specs
}

// checkThresholds validates the plan's thresholds, including that their
// scenario, flow, request and region tags name ones the plan has (regions
// only when the plan weights regions: otherwise any agent's region runs
// it), so that a threshold cannot pass by selecting nothing.
func checkThresholds(l *errorList, p *Plan) {
	names := thresholdTagNames(p)
	reported := map[string]bool{}
	for _, spec := range p.thresholdSpecs(l) {
		if name, ok := spec.Tags[MonitorMetric]; ok && spec.Metric == MonitorMetric {
			if _, known := p.MonitorQuery(name); !known && !reported[spec.Key] {
				reported[spec.Key] = true
				l.addKey(joinPath("thresholds", spec.Key), "unknown monitor %q (monitors: %s)", name, cmp.Or(strings.Join(p.MonitorNames(), ", "), "none: declare it under monitors.queries"))
			}
			continue
		}
		for _, tag := range [...]string{"scenario", "flow", "request", "region"} {
			v, ok := spec.Tags[tag]
			known, check := names[tag]
			if !ok || !check || contains(known, v) || reported[spec.Key+"\x00"+tag] {
				continue
			}
			reported[spec.Key+"\x00"+tag] = true
			l.addKey(joinPath("thresholds", spec.Key), "unknown %s %q in tag filter (%ss: %s)",
				tag, v, tag, strings.Join(known, ", "))
		}
	}
}

// thresholdTagNames lists, by tag, the names the plan's series can carry:
// scenarios, flows, requests and WebSocket steps, and the weighted regions
// (no "region" entry when the plan weights none).
func thresholdTagNames(p *Plan) map[string][]string {
	set := map[string]map[string]bool{"scenario": {}, "flow": {}, "request": {}}
	var regions map[string]bool
	addRegions := func(rs map[string]Region) {
		for r := range rs {
			if regions == nil {
				regions = map[string]bool{}
			}
			regions[r] = true
		}
	}
	addRegions(p.Regions)
	for name, s := range p.Scenarios {
		if s == nil {
			continue
		}
		set["scenario"][name] = true
		for _, f := range s.FlowNames() {
			set["flow"][f] = true
		}
		for _, t := range s.Targets() {
			set["request"][t.Name] = true
		}
		addRegions(s.Regions)
	}
	if regions != nil {
		set["region"] = regions
	}
	out := map[string][]string{}
	for tag, m := range set {
		out[tag] = sortedKeys(m)
	}
	return out
}

// parseMetricKey parses `metric{tag:value,...}` and `monitor:NAME`.
func parseMetricKey(key string) (string, map[string]string, error) {
	if name, ok := strings.CutPrefix(strings.TrimSpace(key), MonitorMetric+":"); ok {
		if !varName.MatchString(name) {
			return "", nil, fmt.Errorf("invalid monitor threshold %q: want monitor:NAME, NAME a monitor of the plan", key)
		}
		return MonitorMetric, map[string]string{MonitorMetric: name}, nil
	}
	m := metricKeyRE.FindStringSubmatch(key)
	if m == nil {
		return "", nil, fmt.Errorf("invalid metric %q: want metric or metric{tag:value,...}", key)
	}
	metric := m[1]
	if _, ok := thresholdMetrics[metric]; !ok {
		return "", nil, fmt.Errorf("unknown metric %q (valid: %s)", metric, strings.Join(sortedKeys(thresholdMetrics), ", "))
	}
	if strings.TrimSpace(m[2]) == "" {
		if strings.Contains(key, "{") {
			return "", nil, fmt.Errorf("empty tag filter in %q", key)
		}
		return metric, nil, nil
	}
	tags := map[string]string{}
	for _, kv := range strings.Split(m[2], ",") {
		k, v, ok := strings.Cut(kv, ":")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch {
		case !ok || k == "" || v == "":
			return "", nil, fmt.Errorf("invalid tag filter %q: want tag:value", strings.TrimSpace(kv))
		case !contains(thresholdTags, k):
			return "", nil, fmt.Errorf("unknown tag %q (valid: %s)", k, strings.Join(thresholdTags, ", "))
		case tags[k] != "":
			return "", nil, fmt.Errorf("tag %q given twice", k)
		}
		if k == "expected_response" {
			if v != "true" && v != "false" {
				return "", nil, fmt.Errorf("invalid expected_response %q: want true or false", v)
			}
			if !strings.HasPrefix(metric, "http_") {
				return "", nil, fmt.Errorf("tag expected_response applies to http_* metrics, not %s", metric)
			}
		}
		if k == "status" {
			if n, err := strconv.Atoi(v); err != nil || n < 100 || n > 599 {
				return "", nil, fmt.Errorf("invalid status %q: want an HTTP status code", v)
			}
		}
		tags[k] = v
	}
	return metric, tags, nil
}

// parseThresholdExpr parses "agg op value", such as "p(95) < 500".
func parseThresholdExpr(expr string) (ThresholdSpec, error) {
	spec := ThresholdSpec{Expr: expr}
	bad := func(why string) error {
		return fmt.Errorf("invalid threshold %q: %s (want e.g. \"p(95)<500\", \"rate<0.01\", \"count>=100\")", expr, why)
	}
	i, op := -1, ""
	for _, o := range thresholdOps {
		if j := strings.Index(expr, o); j >= 0 && (i < 0 || j < i) {
			i, op = j, o
		}
	}
	if i < 0 {
		return spec, bad("no comparison operator")
	}
	// At the same index a two-character operator wins over its prefix.
	if i+1 < len(expr) && expr[i+1] == '=' && (op == "<" || op == ">") {
		op += "="
	}
	lhs, rhs := expr[:i], expr[i+len(op):]
	m := aggRE.FindStringSubmatch(lhs)
	if m == nil {
		return spec, bad(fmt.Sprintf("unknown aggregation %q", strings.TrimSpace(lhs)))
	}
	if m[1] == "p" {
		pc, err := strconv.ParseFloat(m[2], 64)
		if err != nil || !(pc >= 0 && pc <= 100) {
			return spec, bad(fmt.Sprintf("percentile %q must be a number in [0, 100]", m[2]))
		}
		spec.Agg, spec.Percentile = "p", pc
	} else {
		spec.Agg = m[3]
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(rhs), 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return spec, bad(fmt.Sprintf("value %q is not a finite number", strings.TrimSpace(rhs)))
	}
	spec.Op, spec.Value = op, v
	return spec, nil
}

// Holds reports whether v satisfies the condition. NaN never does.
func (t ThresholdSpec) Holds(v float64) bool {
	if math.IsNaN(v) {
		return false
	}
	switch t.Op {
	case "<":
		return v < t.Value
	case "<=":
		return v <= t.Value
	case ">":
		return v > t.Value
	case ">=":
		return v >= t.Value
	case "==":
		return v == t.Value
	case "!=":
		return v != t.Value
	}
	return false
}
