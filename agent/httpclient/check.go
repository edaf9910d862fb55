package httpclient

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"time"
)

// Check evaluates req's checks on res, with latency the request's recorded
// latency: it returns how many passed and failed. A failed request (no
// response) fails every check.
func (r *Request) Check(res *Result, latency time.Duration) (passed, failed int64) {
	c := r.Checks
	if c == nil {
		return 0, 0
	}
	count := func(ok bool) {
		if ok {
			passed++
		} else {
			failed++
		}
	}
	got := res.Err == nil && res.Code > 0
	if len(c.Status) > 0 {
		count(got && c.Status.MatchStatus(res.Code))
	}
	if c.MaxDuration > 0 {
		count(got && latency <= c.MaxDuration.D())
	}
	if c.BodyContains != "" {
		count(got && bytes.Contains(res.Body, []byte(c.BodyContains)))
	}
	if len(c.JSONPath) > 0 {
		var doc any
		okDoc := got && json.Unmarshal(res.Body, &doc) == nil
		for path, want := range c.JSONPath {
			v, ok := jsonLookup(doc, path)
			count(okDoc && ok && jsonText(v) == want)
		}
	}
	return passed, failed
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
