// Package plan is surge's test-plan language: strict YAML decoding with
// file:line errors, defaults, validation, and the exact split of a plan into
// per-agent shares.
//
// Plan values are data. They travel to agents as canonical JSON
// (see MarshalCanonical and FromJSON) and carry no behaviour beyond the pure
// schedule functions an executor needs (RateAt, Cumulative, ...).
package plan

import (
	"time"
)

// Executor names, with k6's semantics.
const (
	ConstantArrivalRate = "constant-arrival-rate"
	RampingArrivalRate  = "ramping-arrival-rate"
	ConstantVUs         = "constant-vus"
	RampingVUs          = "ramping-vus"
	PerVUIterations     = "per-vu-iterations"
	SharedIterations    = "shared-iterations"
)

// Plan is a whole test plan.
type Plan struct {
	// Name identifies the plan in run lists and reports.
	Name        string `yaml:"name" json:"name"`
	Description string `yaml:"description,omitempty" json:"description,omitempty"`
	// BaseURL completes every request and websocket URL written as a path
	// ("/api/items"); `surge run --base-url` overrides it. See baseurl.go.
	BaseURL string `yaml:"base_url,omitempty" json:"base_url,omitempty"`
	// Regions weights the plan's load across regions. Empty: all agents,
	// regardless of region, share the load evenly.
	Regions map[string]Region `yaml:"regions,omitempty" json:"regions,omitempty"`
	// Scenarios run in parallel (staggered by start_time), keyed by name.
	Scenarios map[string]*Scenario `yaml:"scenarios" json:"scenarios"`
	// Data declares feeders, keyed by name, that templates read with
	// {{data "NAME" "column"}}.
	Data map[string]*Feeder `yaml:"data,omitempty" json:"data,omitempty"`
	// Thresholds maps a metric with optional tag filter, in k6 syntax
	// (`http_req_duration{scenario:x,region:y}`), to its conditions.
	Thresholds map[string][]Threshold `yaml:"thresholds,omitempty" json:"thresholds,omitempty"`
	// Interval is the snapshot interval; default 1s.
	Interval Duration `yaml:"interval,omitempty" json:"interval,omitempty"`
	// OnAgentLoss is what the controller does when an agent is lost during
	// the run: "reshare" (default) its remaining share to the region's
	// surviving agents (else all survivors), "continue" with the deficit,
	// or "abort" the run. See onloss.go.
	OnAgentLoss string `yaml:"on_agent_loss,omitempty" json:"on_agent_loss,omitempty"`
	// ControllerLossGrace is how long agents keep running this plan without
	// a controller; zero: the agent's own setting (default 60s).
	ControllerLossGrace Duration `yaml:"controller_loss_grace,omitempty" json:"controller_loss_grace,omitempty"`
	// Saturation bounds the agent figures that flag an interval as
	// saturated. See saturation.go.
	Saturation Saturation `yaml:"saturation,omitempty" json:"saturation,omitempty"`
	// Tags label the run (environment: staging, commit: abc123): stored
	// with it, in its summary and on every point it writes; `surge run
	// --tag` adds to them. See tags.go.
	Tags map[string]string `yaml:"tags,omitempty" json:"tags,omitempty"`
	// RPS caps the requests per second of the whole run, split exactly
	// across its agents (k6's rps; `surge run --rps`); 0: no cap.
	RPS int64 `yaml:"rps,omitempty" json:"rps,omitempty"`
	// Env are values {{env "NAME"}} reads before the agent's own
	// environment; `surge run -e NAME=VALUE` sets them. See override.go.
	Env map[string]string `yaml:"env,omitempty" json:"env,omitempty"`
	// Monitors are PromQL queries the controller evaluates against the
	// system under test's Prometheus at every interval. See monitors.go.
	Monitors *Monitors `yaml:"monitors,omitempty" json:"monitors,omitempty"`
}

// Region is one region's part of the load.
type Region struct {
	Weight float64 `yaml:"weight" json:"weight"`
}

// Scenario is one executor with its options and the requests an iteration
// sends. Which options apply depends on Executor, as in k6.
type Scenario struct {
	Executor string `yaml:"executor" json:"executor"`

	// Arrival-rate executors: Rate iterations per TimeUnit (default 1s).
	Rate      float64  `yaml:"rate,omitempty" json:"rate,omitempty"`
	StartRate float64  `yaml:"start_rate,omitempty" json:"start_rate,omitempty"`
	TimeUnit  Duration `yaml:"time_unit,omitempty" json:"time_unit,omitempty"`
	// PreAllocatedVUs and MaxVUs bound the VUs an arrival-rate executor may use;
	// an arrival with no free VU is a dropped iteration.
	PreAllocatedVUs int64 `yaml:"pre_allocated_vus,omitempty" json:"pre_allocated_vus,omitempty"`
	MaxVUs          int64 `yaml:"max_vus,omitempty" json:"max_vus,omitempty"`

	// VU executors.
	VUs      int64 `yaml:"vus,omitempty" json:"vus,omitempty"`
	StartVUs int64 `yaml:"start_vus,omitempty" json:"start_vus,omitempty"`

	// Duration for constant-* executors; Stages for ramping-*.
	Duration Duration `yaml:"duration,omitempty" json:"duration,omitempty"`
	Stages   []Stage  `yaml:"stages,omitempty" json:"stages,omitempty"`

	// Iterations: per VU (per-vu-iterations) or shared by all VUs
	// (shared-iterations); default 1, as in k6.
	Iterations int64 `yaml:"iterations,omitempty" json:"iterations,omitempty"`
	// MaxDuration bounds the iteration executors (default 10m).
	MaxDuration Duration `yaml:"max_duration,omitempty" json:"max_duration,omitempty"`
	// GracefulRampDown lets a ramping-vus VU that the curve removes finish
	// its iteration (default 30s, as in k6).
	GracefulRampDown Duration `yaml:"graceful_ramp_down,omitempty" json:"graceful_ramp_down,omitempty"`

	// Arrivals is the arrival process of an arrival-rate executor; nil is
	// uniform.
	Arrivals *Arrivals `yaml:"arrivals,omitempty" json:"arrivals,omitempty"`

	// StartTime delays the scenario from the run's start.
	StartTime Duration `yaml:"start_time,omitempty" json:"start_time,omitempty"`
	// GracefulStop lets in-flight iterations finish after the scenario's
	// duration (default 30s, as in k6).
	GracefulStop Duration `yaml:"graceful_stop,omitempty" json:"graceful_stop"` // always in JSON: 0 is meaningful

	// Regions overrides the plan's region weights for this scenario.
	Regions map[string]Region `yaml:"regions,omitempty" json:"regions,omitempty"`

	// Requests are sent in order, one after the other, by each iteration:
	// shorthand for one flow (named "default") of request steps.
	Requests []Request `yaml:"requests,omitempty" json:"requests,omitempty"`
	// Flows are named sequences of steps; each iteration runs one, chosen
	// by weight. Exactly one of Requests and Flows is given.
	Flows map[string]*Flow `yaml:"flows,omitempty" json:"flows,omitempty"`
	// OnStart runs once per VU before its first iteration (log in once);
	// OnStop once when the VU ends. Their values extracted last the VU's
	// life. See steps.go and vars.go.
	OnStart *Flow `yaml:"on_start,omitempty" json:"on_start,omitempty"`
	OnStop  *Flow `yaml:"on_stop,omitempty" json:"on_stop,omitempty"`

	// Connection says how the scenario's clients hold connections: reuse,
	// pools, lifetimes, HTTP/2, TLS, host overrides and source addresses.
	Connection *Connection `yaml:"connection,omitempty" json:"connection,omitempty"`
	// Retry, if set, retries the scenario's failed requests.
	Retry *Retry `yaml:"retry,omitempty" json:"retry,omitempty"`
}

// Stage is one segment of a ramping executor: reach Target over Duration.
type Stage struct {
	Duration Duration `yaml:"duration" json:"duration"`
	Target   float64  `yaml:"target" json:"target"`
}

// Request is one HTTP request of an iteration.
type Request struct {
	// Name labels the request's metrics; default METHOD + " " + URL.
	Name    string            `yaml:"name,omitempty" json:"name,omitempty"`
	Method  string            `yaml:"method,omitempty" json:"method,omitempty"`
	URL     string            `yaml:"url" json:"url"`
	Headers map[string]string `yaml:"headers,omitempty" json:"headers,omitempty"`
	Body    string            `yaml:"body,omitempty" json:"body,omitempty"`
	// Timeout for the whole request; default 30s.
	Timeout Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	// Checks assert on the response; each counts as passed or failed.
	Checks *Checks `yaml:"checks,omitempty" json:"checks,omitempty"`
	// Extract takes values from the response into the VU, by name, for
	// later steps' {{var "NAME"}}. See extract.go.
	Extract map[string]*Extract `yaml:"extract,omitempty" json:"extract,omitempty"`
}

// Threshold is one condition on a metric, such as "p(95)<500". In YAML it is
// either that string or a mapping {threshold, abort_on_fail, delay_abort_eval}.
type Threshold struct {
	Expr           string   `yaml:"threshold" json:"threshold"`
	AbortOnFail    bool     `yaml:"abort_on_fail,omitempty" json:"abort_on_fail,omitempty"`
	DelayAbortEval Duration `yaml:"delay_abort_eval,omitempty" json:"delay_abort_eval,omitempty"`
}

// Duration is a time.Duration written as Go duration text ("1m30s") in YAML
// and JSON.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }
