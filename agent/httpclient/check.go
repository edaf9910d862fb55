package httpclient

import (
	"bytes"
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"strings"
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

// jsonPathCheck is one json_path check, prepared: its name made once, not
// per response.
type jsonPathCheck struct{ path, want, name string }

// prepareJSONPaths returns c's json_path checks sorted by path, so that
// they are made in the same order every time.
func prepareJSONPaths(c *plan.Checks) []jsonPathCheck {
	if c == nil || len(c.JSONPath) == 0 {
		return nil
	}
	out := make([]jsonPathCheck, 0, len(c.JSONPath))
	for _, path := range slices.Sorted(maps.Keys(c.JSONPath)) {
		out = append(out, jsonPathCheck{path: path, want: c.JSONPath[path], name: "json_path." + path})
	}
	return out
}

// Check evaluates req's checks on res, with latency the request's recorded
// latency, and appends each one's result to into, in the order status,
// max_duration, body_contains, then json_path by path. A failed request
// (no response) fails every check.
func (r *Request) Check(res *Result, latency time.Duration, into []CheckResult) []CheckResult {
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
		into = append(into, CheckResult{"body_contains", got && bytes.Contains(res.Body, []byte(c.BodyContains))})
	}
	if len(r.jsonPaths) > 0 {
		var doc any
		okDoc := got && json.Unmarshal(res.Body, &doc) == nil
		for _, jc := range r.jsonPaths {
			v, ok := jsonLookup(doc, jc.path)
			into = append(into, CheckResult{jc.name, okDoc && ok && jsonText(v) == jc.want})
		}
	}
	return into
}

// jsonLookup follows a dotted path ("$.items.0.id") into a decoded JSON
// document.
func jsonLookup(doc any, path string) (any, bool) {
	path = strings.TrimPrefix(strings.TrimPrefix(path, "$"), ".")
	cur := doc
	for _, seg := range strings.Split(path, ".") {
		switch v := cur.(type) {
		case map[string]any:
			x, ok := v[seg]
			if !ok {
				return nil, false
			}
			cur = x
		case []any:
			i, err := strconv.Atoi(seg)
			if err != nil || i < 0 || i >= len(v) {
				return nil, false
			}
			cur = v[i]
		default:
			return nil, false
		}
	}
	return cur, true
}

// jsonText renders a JSON value as the plan writes it: strings bare,
// numbers in shortest form, true/false/null.
func jsonText(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	case nil:
		return "null"
	}
	b, _ := json.Marshal(v)
	return string(b)
}
