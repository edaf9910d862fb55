package plan

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Arrival processes.
const (
	ArrivalsUniform = "uniform"
	ArrivalsPoisson = "poisson"
	ArrivalsOnOff   = "on-off"
	ArrivalsMMPP    = "mmpp"
)

// Arrivals is an arrival-rate scenario's arrival process. In YAML it is
// `uniform`, `poisson`, `{on-off: {on, off, factor}}` or
// `{mmpp: {states: [{rate_factor, mean_dwell}, ...]}}`.
type Arrivals struct {
	// Process is one of uniform, poisson, on-off, mmpp.
	Process string `yaml:"-" json:"process"`
	OnOff   *OnOff `yaml:"on-off,omitempty" json:"on_off,omitempty"`
	MMPP    *MMPP  `yaml:"mmpp,omitempty" json:"mmpp,omitempty"`
}

// OnOff modulates the schedule's rate with a square wave: for On the rate
// is Factor times the schedule's rate, for Off it is lowered so that every
// On+Off cycle keeps the schedule's mean rate (and the total is unchanged).
type OnOff struct {
	On     Duration `yaml:"on" json:"on"`
	Off    Duration `yaml:"off" json:"off"`
	Factor float64  `yaml:"factor" json:"factor"`
}

// MMPP is a Markov-modulated Poisson process: the process stays in a state
// for an exponentially distributed time with mean MeanDwell, then jumps to
// another state chosen uniformly; in a state the rate is the schedule's
// rate times the state's factor. Factors are normalised so that the
// long-run mean rate is the schedule's rate.
type MMPP struct {
	States []MMPPState `yaml:"states" json:"states"`
}

// MMPPState is one state of an MMPP.
type MMPPState struct {
	RateFactor float64  `yaml:"rate_factor" json:"rate_factor"`
	MeanDwell  Duration `yaml:"mean_dwell" json:"mean_dwell"`
}

// Name returns the process name, uniform for nil.
func (a *Arrivals) Name() string {
	if a == nil || a.Process == "" {
		return ArrivalsUniform
	}
	return a.Process
}

// UnmarshalYAML reads a process name or a one-key mapping.
// Errors carry the node's line.
func (a *Arrivals) UnmarshalYAML(n *yaml.Node) error { return atNode(n, a.unmarshalYAML(n)) }

func (a *Arrivals) unmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		switch n.Value {
		case ArrivalsUniform, ArrivalsPoisson:
			*a = Arrivals{Process: n.Value}
			return nil
		case ArrivalsOnOff, ArrivalsMMPP:
			return fmt.Errorf("arrivals %q needs options: write {%s: {...}}", n.Value, n.Value)
		}
		return fmt.Errorf("unknown arrival process %q (valid: uniform, poisson, {on-off: {...}}, {mmpp: {...}})", n.Value)
	case yaml.MappingNode:
		type fields Arrivals
		var f fields
		if err := n.Decode(&f); err != nil {
			return err
		}
		*a = Arrivals(f)
		switch {
		case a.OnOff != nil && a.MMPP != nil:
			return fmt.Errorf("arrivals: give one of on-off and mmpp")
		case a.OnOff != nil:
			a.Process = ArrivalsOnOff
		case a.MMPP != nil:
			a.Process = ArrivalsMMPP
		default:
			return fmt.Errorf("arrivals: want {on-off: {...}} or {mmpp: {...}}")
		}
		return nil
	}
	return fmt.Errorf("expected an arrival process, got %s", kindName(n))
}

// Flow is a named sequence of steps; iterations choose a flow by weight.
type Flow struct {
	// Weight is the flow's relative share of iterations; default 1.
	Weight float64 `yaml:"weight,omitempty" json:"weight,omitempty"`
	Steps  []Step  `yaml:"steps" json:"steps"`
}

// Step is one step of a flow: a request, a think time or a batch of
// requests sent in parallel, or a WebSocket session. In YAML a request step
// is the request mapping itself; the others are `{think: dist}`,
// `{batch: [requests]}` and `{websocket: {...}}`.
type Step struct {
	Request *Request  `yaml:"-" json:"request,omitempty"`
	Think   *Dist     `yaml:"think,omitempty" json:"think,omitempty"`
	Batch   []Request `yaml:"batch,omitempty" json:"batch,omitempty"`
	// WebSocket holds a WebSocket session: `{websocket: {...}}`.
	WebSocket *WebSocket `yaml:"websocket,omitempty" json:"websocket,omitempty"`
}

// isControlStep reports whether a YAML mapping is a think or batch step
// rather than a request.
func isControlStep(n *yaml.Node) bool {
	if n.Kind != yaml.MappingNode {
		return false
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i].Value; k == "think" || k == "batch" || k == "websocket" {
			return true
		}
	}
	return false
}

// UnmarshalYAML reads a request mapping, {think: dist} or {batch: [...]}.
// Errors carry the node's line.
func (s *Step) UnmarshalYAML(n *yaml.Node) error { return atNode(n, s.unmarshalYAML(n)) }

func (s *Step) unmarshalYAML(n *yaml.Node) error {
	if isControlStep(n) {
		type fields Step
		var f fields
		if err := n.Decode(&f); err != nil {
			return err
		}
		*s = Step(f)
		return nil
	}
	var r Request
	if err := n.Decode(&r); err != nil {
		return err
	}
	*s = Step{Request: &r}
	return nil
}

// Dist is a distribution of durations. In YAML: a duration (constant), or
// one of {constant: d}, {uniform: [min, max]}, {normal: {mean, stddev}},
// {exponential: mean}.
type Dist struct {
	Constant    Duration    `yaml:"constant,omitempty" json:"constant,omitempty"`
	Uniform     []Duration  `yaml:"uniform,omitempty" json:"uniform,omitempty"`
	Normal      *NormalDist `yaml:"normal,omitempty" json:"normal,omitempty"`
	Exponential Duration    `yaml:"exponential,omitempty" json:"exponential,omitempty"`
}

// NormalDist is a normal distribution, truncated at zero.
type NormalDist struct {
	Mean   Duration `yaml:"mean" json:"mean"`
	StdDev Duration `yaml:"stddev" json:"stddev"`
}

// UnmarshalYAML reads a duration or a mapping.
// Errors carry the node's line.
func (d *Dist) UnmarshalYAML(n *yaml.Node) error { return atNode(n, d.unmarshalYAML(n)) }

func (d *Dist) unmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		var c Duration
		if err := c.parse(n.Value); err != nil {
			return err
		}
		*d = Dist{Constant: c}
		return nil
	}
	type fields Dist
	var f fields
	if err := n.Decode(&f); err != nil {
		return err
	}
	*d = Dist(f)
	return nil
}

// Sample draws a duration from d: constant, uniform [min, max], normal
// (truncated at 0) or exponential with the given mean. A nil d is 0.
func (d *Dist) Sample(rng *rand.Rand) time.Duration {
	switch {
	case d == nil:
		return 0
	case len(d.Uniform) == 2:
		lo, hi := d.Uniform[0].D(), d.Uniform[1].D()
		if hi <= lo {
			return lo
		}
		return lo + time.Duration(rng.Int64N(int64(hi-lo)+1))
	case d.Normal != nil:
		x := float64(d.Normal.Mean.D()) + rng.NormFloat64()*float64(d.Normal.StdDev.D())
		return time.Duration(max(x, 0))
	case d.Exponential > 0:
		return time.Duration(rng.ExpFloat64() * float64(d.Exponential.D()))
	}
	return d.Constant.D()
}

// Mean is the distribution's mean.
func (d *Dist) Mean() time.Duration {
	switch {
	case d == nil:
		return 0
	case len(d.Uniform) == 2:
		return (d.Uniform[0].D() + d.Uniform[1].D()) / 2
	case d.Normal != nil:
		return d.Normal.Mean.D()
	case d.Exponential > 0:
		return d.Exponential.D()
	}
	return d.Constant.D()
}

// Checks assert on a response. Every check given counts once per response
// as passed or failed (checks_passed / checks_failed).
type Checks struct {
	// Status: codes ("200") or classes ("2xx"); the response must match one.
	Status StatusList `yaml:"status,omitempty" json:"status,omitempty"`
	// MaxDuration: the latency must not exceed it.
	MaxDuration Duration `yaml:"max_duration,omitempty" json:"max_duration,omitempty"`
	// BodyContains: the body must contain this text.
	BodyContains string `yaml:"body_contains,omitempty" json:"body_contains,omitempty"`
	// JSONPath maps a path into the JSON body ("user.id", "items.0.name",
	// an optional leading "$.") to the value's expected text.
	JSONPath map[string]string `yaml:"json_path,omitempty" json:"json_path,omitempty"`
}

// Count is how many checks c makes per response.
func (c *Checks) Count() int {
	if c == nil {
		return 0
	}
	n := len(c.JSONPath)
	if len(c.Status) > 0 {
		n++
	}
	if c.MaxDuration > 0 {
		n++
	}
	if c.BodyContains != "" {
		n++
	}
	return n
}

// StatusList is a list of status codes or classes; YAML takes one scalar
// or a list.
type StatusList []string

// UnmarshalYAML reads 200, "2xx" or [200, 201, "3xx"].
// Errors carry the node's line.
func (s *StatusList) UnmarshalYAML(n *yaml.Node) error { return atNode(n, s.unmarshalYAML(n)) }

func (s *StatusList) unmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		*s = StatusList{n.Value}
		return nil
	case yaml.SequenceNode:
		out := make(StatusList, 0, len(n.Content))
		for _, c := range n.Content {
			if c.Kind != yaml.ScalarNode {
				return fmt.Errorf("expected a status code or class, got %s", kindName(c))
			}
			out = append(out, c.Value)
		}
		*s = out
		return nil
	}
	return fmt.Errorf("expected a status code, class or list, got %s", kindName(n))
}

// UnmarshalJSON reads a string or a list of strings.
func (s *StatusList) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*s = StatusList{one}
		return nil
	}
	var list []string
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&list); err != nil {
		return fmt.Errorf("status: %w", err)
	}
	*s = list
	return nil
}

// MatchStatus reports whether code matches an entry: "200" or "2xx".
func (s StatusList) MatchStatus(code int) bool {
	for _, e := range s {
		if len(e) == 3 && e[1:] == "xx" {
			if code/100 == int(e[0]-'0') {
				return true
			}
			continue
		}
		if n, err := strconv.Atoi(e); err == nil && n == code {
			return true
		}
	}
	return false
}

// FlowNames returns the scenario's flow names sorted; a scenario written
// with requests has one flow, DefaultFlow.
func (s *Scenario) FlowNames() []string {
	if len(s.Flows) == 0 {
		return []string{DefaultFlow}
	}
	return sortedKeys(s.Flows)
}

// DefaultFlow names the flow a scenario's requests form.
const DefaultFlow = "default"

// FlowList returns the scenario's flows by name: Flows, or its requests as
// one flow named DefaultFlow with weight 1.
func (s *Scenario) FlowList() map[string]*Flow {
	if len(s.Flows) > 0 {
		return s.Flows
	}
	f := &Flow{Weight: 1}
	for i := range s.Requests {
		f.Steps = append(f.Steps, Step{Request: &s.Requests[i]})
	}
	return map[string]*Flow{DefaultFlow: f}
}

// AllRequests returns every request of the scenario, in flows and batches.
func (s *Scenario) AllRequests() []*Request {
	return s.allRequests()
}

// Target is a URL a scenario sends to, with the name of its request or
// websocket step.
type Target struct{ Name, URL string }

// Targets lists the URLs of every request and websocket step of the
// scenario, as written (templates unexpanded).
func (s *Scenario) Targets() []Target {
	var out []Target
	for _, r := range s.allRequests() {
		out = append(out, Target{Name: r.Name, URL: r.URL})
	}
	for _, list := range s.stepLists("") {
		for _, st := range list.steps {
			if w := st.WebSocket; w != nil {
				out = append(out, Target{Name: w.Name, URL: w.URL})
			}
		}
	}
	return out
}

// allRequests returns every request of the scenario in stepLists order.
func (s *Scenario) allRequests() []*Request {
	var out []*Request
	s.eachRequest("", func(_ string, r *Request) { out = append(out, r) })
	return out
}

// checkArrivals validates an arrival process.
func checkArrivals(l *errorList, path string, a *Arrivals) {
	if a == nil {
		return
	}
	switch a.Process {
	case "", ArrivalsUniform, ArrivalsPoisson:
	case ArrivalsOnOff:
		o := a.OnOff
		if o == nil {
			l.add(path, "on-off needs {on, off, factor}")
			return
		}
		op := joinPath(path, "on-off")
		checkPositive(l, joinPath(op, "on"), o.On)
		checkPositive(l, joinPath(op, "off"), o.Off)
		if !(o.Factor >= 1) || math.IsInf(o.Factor, 0) {
			l.add(joinPath(op, "factor"), "must be a finite number >= 1, got %v", o.Factor)
		} else if o.On > 0 && o.Off > 0 && o.Factor*o.On.D().Seconds() > (o.On+o.Off).D().Seconds()*(1+1e-12) {
			l.add(joinPath(op, "factor"), "factor × on (%v × %s) exceeds the cycle on+off (%s): the mean rate cannot be kept",
				o.Factor, o.On, o.On+o.Off)
		}
	case ArrivalsMMPP:
		m := a.MMPP
		mp := joinPath(path, "mmpp")
		if m == nil || len(m.States) < 2 {
			l.add(joinPath(mp, "states"), "at least two states are required")
			return
		}
		var weighted float64
		for i, st := range m.States {
			sp := indexPath(joinPath(mp, "states"), i)
			if !(st.RateFactor >= 0) || math.IsInf(st.RateFactor, 0) {
				l.add(joinPath(sp, "rate_factor"), "must be a finite number >= 0, got %v", st.RateFactor)
			}
			checkPositive(l, joinPath(sp, "mean_dwell"), st.MeanDwell)
			weighted += st.RateFactor * st.MeanDwell.D().Seconds()
		}
		if !(weighted > 0) {
			l.add(joinPath(mp, "states"), "at least one state needs rate_factor > 0")
		}
	default:
		l.add(path, "unknown arrival process %q (valid: uniform, poisson, on-off, mmpp)", a.Process)
	}
}

// checkDist validates a think-time distribution.
func checkDist(l *errorList, path string, d *Dist) {
	set := 0
	if d.Constant != 0 {
		set++
		if d.Constant < 0 {
			l.add(joinPath(path, "constant"), "must be >= 0, got %s", d.Constant)
		}
	}
	if d.Uniform != nil {
		set++
		if len(d.Uniform) != 2 || d.Uniform[0] < 0 || d.Uniform[1] < d.Uniform[0] {
			l.add(joinPath(path, "uniform"), "want [min, max] with 0 <= min <= max")
		}
	}
	if d.Normal != nil {
		set++
		if d.Normal.Mean < 0 || d.Normal.StdDev < 0 {
			l.add(joinPath(path, "normal"), "mean and stddev must be >= 0")
		}
	}
	if d.Exponential != 0 {
		set++
		if d.Exponential < 0 {
			l.add(joinPath(path, "exponential"), "mean must be > 0, got %s", d.Exponential)
		}
	}
	if set > 1 {
		l.add(path, "give one distribution: a duration, constant, uniform, normal or exponential")
	}
}

// checkChecks validates a request's checks.
func checkChecks(l *errorList, path string, c *Checks) {
	if c == nil {
		return
	}
	for i, e := range c.Status {
		ok := len(e) == 3 && e[1:] == "xx" && e[0] >= '1' && e[0] <= '5'
		if n, err := strconv.Atoi(e); err == nil && n >= 100 && n <= 599 {
			ok = true
		}
		if !ok {
			l.add(indexPath(joinPath(path, "status"), i), "want a status code (200) or class (2xx), got %q", e)
		}
	}
	if c.MaxDuration < 0 {
		l.add(joinPath(path, "max_duration"), "must be >= 0, got %s", c.MaxDuration)
	}
	for _, k := range sortedKeys(c.JSONPath) {
		if strings.TrimPrefix(strings.TrimPrefix(k, "$"), ".") == "" {
			l.addKey(joinPath(joinPath(path, "json_path"), k), "empty JSON path")
		}
	}
}

// checkFlows validates a scenario's flows and requests, on_start and
// on_stop, and the values their templates read.
func checkFlows(l *errorList, path string, s *Scenario) {
	rp := joinPath(path, "requests")
	switch {
	case len(s.Requests) == 0 && len(s.Flows) == 0 && !l.skipped(rp) && !l.skipped(joinPath(path, "flows")):
		// Not when requests or flows was written and already reported.
		l.add(rp, "at least one request (or flows) is required")
	case len(s.Requests) > 0 && len(s.Flows) > 0:
		l.addKey(joinPath(path, "flows"), "give requests or flows, not both")
	}
	for i := range s.Requests {
		checkRequest(l, indexPath(rp, i), &s.Requests[i])
		checkExtract(l, joinPath(indexPath(rp, i), "extract"), DefaultFlow, s.Requests[i].Extract)
	}
	for _, name := range sortedKeys(s.Flows) {
		fp := joinPath(joinPath(path, "flows"), name)
		f := s.Flows[name]
		if f == nil {
			l.add(fp, "must be a mapping with steps")
			continue
		}
		if name == OnStartFlow || name == OnStopFlow {
			l.addKey(fp, "flow name %q is the VU's lifecycle flow: write it as the scenario's %s key", name, name)
		}
		if f.Weight == 0 && !l.pos.has(joinPath(fp, "weight")) {
			f.Weight = 1
		}
		if !(f.Weight > 0) || math.IsInf(f.Weight, 0) {
			l.add(joinPath(fp, "weight"), "must be a finite number > 0, got %v", f.Weight)
		}
		checkSteps(l, joinPath(fp, "steps"), name, f.Steps)
	}
	for _, lf := range []struct {
		name string
		f    *Flow
	}{{OnStartFlow, s.OnStart}, {OnStopFlow, s.OnStop}} {
		if lf.f == nil {
			continue
		}
		fp := joinPath(path, lf.name)
		if l.pos.has(joinPath(fp, "weight")) {
			l.addKey(joinPath(fp, "weight"), "%s runs once per VU: it takes no weight", lf.name)
		}
		checkSteps(l, joinPath(fp, "steps"), lf.name, lf.f.Steps)
	}
	checkVars(l, path, s)
}

// checkSteps validates the steps at sp of the step sequence flow.
func checkSteps(l *errorList, sp, flow string, steps []Step) {
	requests := 0
	for i := range steps {
		st := &steps[i]
		ip := indexPath(sp, i)
		n := 0
		if st.Request != nil {
			n++
			requests++
			checkRequest(l, ip, st.Request)
			checkExtract(l, joinPath(ip, "extract"), flow, st.Request.Extract)
		}
		if st.Think != nil {
			n++
			checkDist(l, joinPath(ip, "think"), st.Think)
		}
		if st.Batch != nil {
			n++
			if len(st.Batch) == 0 {
				l.add(joinPath(ip, "batch"), "at least one request is required")
			}
			for j := range st.Batch {
				requests++
				bp := indexPath(joinPath(ip, "batch"), j)
				checkRequest(l, bp, &st.Batch[j])
				checkExtract(l, joinPath(bp, "extract"), flow, st.Batch[j].Extract)
			}
		}
		if st.WebSocket != nil {
			n++
			requests++
			checkWebSocket(l, joinPath(ip, "websocket"), st.WebSocket)
		}
		if n != 1 {
			l.add(ip, "a step is a request, {think: ...}, {batch: [...]} or {websocket: {...}}")
		}
	}
	if requests == 0 {
		l.add(sp, "at least one request or websocket step is required")
	}
}
