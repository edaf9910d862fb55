package plan

import (
	"net/http"
	"net/url"
	"strings"
)

// MaxMonitors bounds a plan's monitors: each is a query per interval
// against the staging environment's Prometheus.
const MaxMonitors = 32

// Monitors are PromQL queries against the system under test's own
// Prometheus (its CPU, memory, database connections) that the controller
// evaluates at the end of every interval of the run. Each query must give
// one value: a scalar, or an instant vector of one series (aggregate with
// sum, max or avg). Thresholds read them as `monitor:NAME`.
type Monitors struct {
	// Prometheus is the base URL of the Prometheus HTTP API.
	Prometheus string `yaml:"prometheus" json:"prometheus"`
	// Headers are sent with every query (Authorization, X-Scope-OrgID);
	// they are stored with the plan, so give a read-only credential.
	Headers map[string]string `yaml:"headers,omitempty" json:"headers,omitempty"`
	// Timeout bounds one evaluation of all the queries; zero: the
	// interval (a sample never overlaps the next).
	Timeout Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	// Queries maps a monitor's name to its PromQL query.
	Queries map[string]string `yaml:"queries" json:"queries"`
}

// MonitorNames lists the plan's monitors, sorted; none without monitors.
func (p *Plan) MonitorNames() []string {
	if p.Monitors == nil {
		return nil
	}
	return sortedKeys(p.Monitors.Queries)
}

// MonitorQuery is monitor name's query, and whether the plan has it.
func (p *Plan) MonitorQuery(name string) (string, bool) {
	if p.Monitors == nil {
		return "", false
	}
	q, ok := p.Monitors.Queries[name]
	return q, ok
}

// MonitorTimeout is how long one evaluation of the monitors may take.
func (p *Plan) MonitorTimeout() Duration {
	if p.Monitors == nil || p.Monitors.Timeout == 0 || p.Monitors.Timeout > p.Interval {
		return p.Interval
	}
	return p.Monitors.Timeout
}

// checkMonitors validates the plan's monitors section; an empty one is
// none.
func checkMonitors(l *errorList, p *Plan) {
	m := p.Monitors
	if m == nil {
		return
	}
	if len(m.Queries) == 0 {
		l.add("monitors.queries", "at least one query is required (NAME: PromQL)")
	}
	if len(m.Queries) > MaxMonitors {
		l.add("monitors.queries", "%d monitors, at most %d", len(m.Queries), MaxMonitors)
	}
	if u, err := url.Parse(m.Prometheus); m.Prometheus == "" {
		l.add("monitors.prometheus", "required: the base URL of the Prometheus to query, such as http://prometheus:9090")
	} else if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		l.add("monitors.prometheus", "invalid URL %q: want http(s)://HOST[:PORT][/PATH]", m.Prometheus)
	}
	if m.Timeout < 0 {
		l.add("monitors.timeout", "must be >= 0, got %s", m.Timeout)
	}
	for _, k := range sortedKeys(m.Headers) {
		if k == "" || strings.ContainsAny(k, " \t\r\n:") || strings.ContainsAny(m.Headers[k], "\r\n") {
			l.addKey(joinPath("monitors.headers", k), "invalid header %q", k)
		}
	}
	for _, name := range sortedKeys(m.Queries) {
		qp := joinPath("monitors.queries", name)
		if !varName.MatchString(name) {
			l.addKey(qp, "monitor name %q: want letters, digits and _, not starting with a digit", name)
		}
		if strings.TrimSpace(m.Queries[name]) == "" {
			l.add(qp, "empty query")
		}
	}
}

// Header is the monitors' headers as an http.Header.
func (m *Monitors) Header() http.Header {
	h := make(http.Header, len(m.Headers))
	for k, v := range m.Headers {
		h.Set(k, v)
	}
	return h
}
