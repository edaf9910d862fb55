package plan

import (
	"math"
	"net/url"
	"reflect"
	"strings"
	"time"
)

// Defaults applied by Parse and FromJSON.
const (
	DefaultTimeUnit       = Duration(time.Second)
	DefaultGracefulStop   = Duration(30 * time.Second)
	DefaultMethod         = "GET"
	DefaultRequestTimeout = Duration(30 * time.Second)
	DefaultInterval       = Duration(time.Second)
	DefaultMaxDuration    = Duration(10 * time.Minute)
	DefaultRampDown       = Duration(30 * time.Second)

	// MinInterval and MaxInterval bound the snapshot interval.
	MinInterval = Duration(100 * time.Millisecond)
	MaxInterval = Duration(time.Minute)
)

// executorSpec describes one executor: which scenario options it takes.
type executorSpec struct {
	name        string
	arrivalRate bool
	options     []string // YAML keys beyond the common ones
}

// executors is the table of valid executors; never mutated.
var executors = []executorSpec{
	{ConstantArrivalRate, true, []string{"rate", "time_unit", "duration", "pre_allocated_vus", "max_vus", "arrivals"}},
	{RampingArrivalRate, true, []string{"start_rate", "time_unit", "stages", "pre_allocated_vus", "max_vus", "arrivals"}},
	{ConstantVUs, false, []string{"vus", "duration"}},
	{RampingVUs, false, []string{"start_vus", "stages", "graceful_ramp_down"}},
	{PerVUIterations, false, []string{"vus", "iterations", "max_duration"}},
	{SharedIterations, false, []string{"vus", "iterations", "max_duration"}},
}

// executorOptions are the scenario keys that only some executors take.
var executorOptions = []string{
	"rate", "start_rate", "time_unit", "pre_allocated_vus", "max_vus",
	"vus", "start_vus", "duration", "stages", "iterations", "max_duration",
	"graceful_ramp_down", "arrivals",
}

func lookupExecutor(name string) (executorSpec, bool) {
	for _, e := range executors {
		if e.name == name {
			return e, true
		}
	}
	return executorSpec{}, false
}

func executorNames() string {
	names := make([]string, len(executors))
	for i, e := range executors {
		names[i] = e.name
	}
	return strings.Join(names, ", ")
}

func (e executorSpec) takes(option string) bool {
	for _, o := range e.options {
		if o == option {
			return true
		}
	}
	return false
}

// httpMethods are the request methods a plan may use.
var httpMethods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"}

// urlSchemes are the request URL schemes a plan may use.
var urlSchemes = []string{"http", "https"}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// check applies defaults to p and validates it, reporting every problem.
// ps is nil for plans that did not come from YAML.
func check(p *Plan, file string, ps *positions) error {
	l := &errorList{file: file, pos: ps}
	checkInto(l, p)
	return l.err()
}

// checkInto is check, adding the problems to l.
func checkInto(l *errorList, p *Plan) {
	ps := l.pos
	if p.Name == "" {
		l.add("name", "required")
	}
	if p.Interval == 0 && !ps.has("interval") {
		p.Interval = DefaultInterval
	}
	if p.Interval < MinInterval || p.Interval > MaxInterval {
		l.add("interval", "must be between %s and %s, got %s", MinInterval, MaxInterval, p.Interval)
	}
	checkRegions(l, "regions", p.Regions)
	checkFaults(l, p)
	checkSaturation(l, p)
	if len(p.Scenarios) == 0 {
		l.add("scenarios", "at least one scenario is required")
	}
	for _, name := range p.ScenarioNames() {
		path := joinPath("scenarios", name)
		s := p.Scenarios[name]
		if s == nil {
			l.add(path, "must be a mapping with an executor")
			continue
		}
		if name == "" {
			l.addKey(path, "scenario name must not be empty")
		}
		checkScenario(l, path, s)
	}
	resolveURLs(l, p)
	checkData(l, p)
	checkThresholds(l, p)
}

func checkRegions(l *errorList, path string, regions map[string]Region) {
	for _, name := range sortedKeys(regions) {
		rp := joinPath(path, name)
		if name == "" {
			l.addKey(rp, "region name must not be empty")
		}
		w := regions[name].Weight
		if !(w > 0) || math.IsInf(w, 0) {
			l.add(joinPath(rp, "weight"), "must be a finite number > 0, got %v", w)
		}
	}
}

// optionSet reports whether the scenario option key was given: written in
// the YAML source, or non-zero.
func optionSet(s *Scenario, key string, ps *positions, path string) bool {
	if ps.has(joinPath(path, key)) {
		return true
	}
	f, ok := yamlFields(reflect.TypeFor[Scenario]())[key]
	if !ok {
		return false
	}
	return !reflect.ValueOf(s).Elem().FieldByIndex(f.Index).IsZero()
}

func checkScenario(l *errorList, path string, s *Scenario) {
	ex, ok := lookupExecutor(s.Executor)
	switch {
	case s.Executor == "":
		l.add(joinPath(path, "executor"), "required (one of: %s)", executorNames())
	case !ok:
		l.add(joinPath(path, "executor"), "unknown executor %q (valid: %s)", s.Executor, executorNames())
	}
	if ok {
		for _, opt := range executorOptions {
			if !ex.takes(opt) && optionSet(s, opt, l.pos, path) {
				l.addKey(joinPath(path, opt), "option %q does not apply to executor %s (it takes: %s)",
					opt, ex.name, strings.Join(ex.options, ", "))
			}
		}
		applyScenarioDefaults(s, ex)
		switch ex.name {
		case ConstantArrivalRate:
			if !(s.Rate > 0) || math.IsInf(s.Rate, 0) {
				l.add(joinPath(path, "rate"), "must be a finite number > 0, got %v", s.Rate)
			}
			checkPositive(l, joinPath(path, "duration"), s.Duration)
		case RampingArrivalRate:
			if !(s.StartRate >= 0) || math.IsInf(s.StartRate, 0) {
				l.add(joinPath(path, "start_rate"), "must be a finite number >= 0, got %v", s.StartRate)
			}
			checkStages(l, path, s, false)
		case ConstantVUs:
			if s.VUs < 1 {
				l.add(joinPath(path, "vus"), "must be >= 1, got %d", s.VUs)
			}
			checkPositive(l, joinPath(path, "duration"), s.Duration)
		case RampingVUs:
			if s.StartVUs < 0 {
				l.add(joinPath(path, "start_vus"), "must be >= 0, got %d", s.StartVUs)
			}
			checkStages(l, path, s, true)
			if s.GracefulRampDown == 0 && !l.pos.has(joinPath(path, "graceful_ramp_down")) {
				s.GracefulRampDown = DefaultRampDown
			}
			if s.GracefulRampDown < 0 {
				l.add(joinPath(path, "graceful_ramp_down"), "must be >= 0, got %s", s.GracefulRampDown)
			}
		case PerVUIterations, SharedIterations:
			if s.VUs == 0 && !l.pos.has(joinPath(path, "vus")) {
				s.VUs = 1
			}
			if s.Iterations == 0 && !l.pos.has(joinPath(path, "iterations")) {
				s.Iterations = 1
			}
			if s.MaxDuration == 0 && !l.pos.has(joinPath(path, "max_duration")) {
				s.MaxDuration = DefaultMaxDuration
			}
			if s.VUs < 1 {
				l.add(joinPath(path, "vus"), "must be >= 1, got %d", s.VUs)
			}
			switch {
			case s.Iterations < 1:
				l.add(joinPath(path, "iterations"), "must be >= 1, got %d", s.Iterations)
			case ex.name == SharedIterations && s.Iterations < s.VUs:
				l.add(joinPath(path, "iterations"), "must be >= vus (%d), got %d, as in k6", s.VUs, s.Iterations)
			}
			checkPositive(l, joinPath(path, "max_duration"), s.MaxDuration)
		}
		checkArrivals(l, joinPath(path, "arrivals"), s.Arrivals)
		if ex.arrivalRate {
			checkPositive(l, joinPath(path, "time_unit"), s.TimeUnit)
			if s.PreAllocatedVUs < 1 {
				l.add(joinPath(path, "pre_allocated_vus"), "must be >= 1, got %d", s.PreAllocatedVUs)
			}
			if s.MaxVUs < s.PreAllocatedVUs {
				l.add(joinPath(path, "max_vus"), "must be >= pre_allocated_vus (%d), got %d", s.PreAllocatedVUs, s.MaxVUs)
			}
		}
	}
	if s.GracefulStop == 0 && !l.pos.has(joinPath(path, "graceful_stop")) {
		s.GracefulStop = DefaultGracefulStop
	}
	if s.GracefulStop < 0 {
		l.add(joinPath(path, "graceful_stop"), "must be >= 0, got %s", s.GracefulStop)
	}
	if s.StartTime < 0 {
		l.add(joinPath(path, "start_time"), "must be >= 0, got %s", s.StartTime)
	}
	checkRegions(l, joinPath(path, "regions"), s.Regions)
	checkFlows(l, path, s)
	checkConnection(l, joinPath(path, "connection"), s.Connection)
	checkRetry(l, joinPath(path, "retry"), s.Retry)
}

// applyScenarioDefaults fills in the defaults of the options ex takes.
//
// pre_allocated_vus defaults to max(1, ceil(peak rate per second)): enough
// VUs for iterations that take up to a second at the peak rate. max_vus
// defaults to pre_allocated_vus, as in k6.
func applyScenarioDefaults(s *Scenario, ex executorSpec) {
	if !ex.arrivalRate {
		return
	}
	if s.TimeUnit == 0 {
		s.TimeUnit = DefaultTimeUnit
	}
	if s.PreAllocatedVUs == 0 && s.TimeUnit > 0 {
		peak := s.PeakRate()
		if peak > 1<<40 || math.IsNaN(peak) {
			peak = 1 << 40
		}
		s.PreAllocatedVUs = max(1, int64(math.Ceil(peak)))
	}
	if s.MaxVUs == 0 {
		s.MaxVUs = s.PreAllocatedVUs
	}
}

func checkPositive(l *errorList, path string, d Duration) {
	if d <= 0 {
		l.add(path, "must be > 0, got %s", d)
	}
}

func checkStages(l *errorList, path string, s *Scenario, vus bool) {
	sp := joinPath(path, "stages")
	if len(s.Stages) == 0 {
		l.add(sp, "at least one stage is required")
	}
	for i, st := range s.Stages {
		ip := indexPath(sp, i)
		checkPositive(l, joinPath(ip, "duration"), st.Duration)
		switch {
		case !(st.Target >= 0) || math.IsInf(st.Target, 0):
			l.add(joinPath(ip, "target"), "must be a finite number >= 0, got %v", st.Target)
		case vus && st.Target != math.Trunc(st.Target):
			l.add(joinPath(ip, "target"), "must be a whole number of VUs, got %v", st.Target)
		}
	}
}

func checkRequest(l *errorList, path string, r *Request) {
	if r.Method == "" {
		r.Method = DefaultMethod
	}
	r.Method = strings.ToUpper(r.Method)
	if !contains(httpMethods, r.Method) {
		l.add(joinPath(path, "method"), "unknown method %q (valid: %s)", r.Method, strings.Join(httpMethods, ", "))
	}
	up := joinPath(path, "url")
	plain, tmplOK := checkRequestTemplates(l, path, r)
	if r.URL == "" {
		l.add(up, "required")
	} else if !tmplOK {
		// reported by the template check
	} else if u, err := parseURL(plain); err != nil {
		l.add(up, "invalid URL %q: %v", r.URL, errUnwrapURL(err))
	} else if isPath(plain) && u.Scheme == "" && u.Host == "" {
		// a path: resolveURLs completes it with base_url
	} else if !contains(urlSchemes, u.Scheme) {
		l.add(up, "URL %q must be absolute with scheme %s, or a path (\"/...\") that base_url completes", r.URL, strings.Join(urlSchemes, " or "))
	} else if u.Host == "" {
		l.add(up, "URL %q has no host", r.URL)
	}
	if r.Name == "" {
		r.Name = r.Method + " " + r.URL
	}
	for _, k := range sortedKeys(r.Headers) {
		if k == "" || strings.ContainsAny(k, " \t\r\n:") {
			l.addKey(joinPath(joinPath(path, "headers"), k), "invalid header name %q", k)
		}
	}
	if r.Timeout == 0 && !l.pos.has(joinPath(path, "timeout")) {
		r.Timeout = DefaultRequestTimeout
	}
	checkPositive(l, joinPath(path, "timeout"), r.Timeout)
	checkChecks(l, joinPath(path, "checks"), r.Checks)
}

// errUnwrapURL drops url.Error's repetition of the URL.
func errUnwrapURL(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}
