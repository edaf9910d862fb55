package httpclient

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/surgeload/surge/plan"
)

// CheckResult is one check of a response: its name (the plan's key:
// "status", "max_duration", "body_contains", "json_path.PATH") and
// whether it held.
type CheckResult struct {
	Name string
	OK   bool
}

// jsonPathCheck is one json_path check, prepared: its path split and its
// name made once, not per response; want is templated.
type jsonPathCheck struct {
	path []string
	want *Template
	name string
}

// prepareChecks compiles c's templated texts: body_contains and the
// json_path checks, sorted by path so that they are made in the same
// order every time.
func prepareChecks(c *plan.Checks) (body *Template, paths []jsonPathCheck, err error) {
	if c == nil {
		return nil, nil, nil
	}
	if body, err = CompileTemplate(c.BodyContains); err != nil {
		return nil, nil, fmt.Errorf("checks: body_contains: %w", err)
	}
	for _, path := range slices.Sorted(maps.Keys(c.JSONPath)) {
		want, err := CompileTemplate(c.JSONPath[path])
		if err != nil {
			return nil, nil, fmt.Errorf("checks: json_path %s: %w", path, err)
		}
		paths = append(paths, jsonPathCheck{path: splitJSONPath(path), want: want, name: "json_path." + path})
	}
	return body, paths, nil
}

// Check evaluates req's checks on res, with latency the request's recorded
// latency and v what their texts expand from, and appends each one's
// result to into, in the order status, max_duration, body_contains, then
// json_path by path. A failed request (no response) fails every check.
func (r *Request) Check(res *Result, latency time.Duration, v *Vars, into []CheckResult) []CheckResult {
	c := r.Checks
	if c == nil {
		return into
	}
	got := res.Err == nil && res.Code > 0
	if len(c.Status) > 0 {
		into = append(into, CheckResult{"status", got && c.Status.MatchStatus(res.Code)})
	}
	if c.MaxDuration > 0 {
		into = append(into, CheckResult{"max_duration", got && latency <= c.MaxDuration.D()})
	}
	if c.BodyContains != "" {
		into = append(into, CheckResult{"body_contains", got && bytes.Contains(res.Body, []byte(expandText(r.checkBody, v)))})
	}
	for _, jc := range r.jsonPaths {
		ok := false
		if raw, found := jsonFind(res.Body, jc.path); got && found {
			text, valid := jsonCheckText(raw)
			ok = valid && text == expandText(jc.want, v)
		}
		into = append(into, CheckResult{jc.name, ok})
	}
	return into
}

// expandText expands t from v; a template that cannot expand (a value not
// set) gives text no response holds.
func expandText(t *Template, v *Vars) string {
	if t.Static() {
		return t.Text()
	}
	if v == nil {
		v = &Vars{}
	}
	b, err := t.Expand(nil, v)
	if err != nil {
		return "\x00unset\x00"
	}
	return string(b)
}
