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
	checkTags(l, p)
	checkMonitors(l, p)
	checkEnv(l, p)
	if p.RPS < 0 {
		l.add("rps", "must be >= 0 (0: no cap), got %d", p.RPS)
	}
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
	checkKind(l, path, s)
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

// checkKind checks the executor and, through its kind, the options that
// depend on it, applying their defaults.
func checkKind(l *errorList, path string, s *Scenario) {
	kind, ok := KindOf(s.Executor)
	switch {
	case s.Executor == "":
		l.add(joinPath(path, "executor"), "required (one of: %s)", kindNames())
		return
	case !ok:
		l.add(joinPath(path, "executor"), "unknown executor %q (valid: %s)", s.Executor, kindNames())
		return
	}
	for _, opt := range kindOptions {
		if !takes(kind, opt) && optionSet(s, opt, l.pos, path) {
			l.addKey(joinPath(path, opt), "option %q does not apply to executor %s (it takes: %s)",
				opt, kind.Name(), strings.Join(kind.Options(), ", "))
		}
	}
	kind.check(l, path, s)
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
