package httpclient

import (
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strings"

	"github.com/surgeload/surge/plan"
)

// extractor is one of a request's extractions, prepared.
type extractor struct {
	name, scope string
	kind        string // json, regex, header or cookie
	arg         string // the header (canonical) or cookie name
	path        []string
	re          *regexp.Regexp
	def         *string
}

// keepSpec names the response headers a request keeps in its Result.
type keepSpec struct {
	names     []string // lower case
	setCookie bool
}

// wants reports whether the header name is kept.
func (k *keepSpec) wants(name []byte) bool {
	if k.setCookie && equalFold(name, "set-cookie") {
		return true
	}
	for _, n := range k.names {
		if equalFold(name, n) {
			return true
		}
	}
	return false
}

// prepareExtracts compiles ex, sorted by name, and says which headers the
// responses must keep for them.
func (r *Request) prepareExtracts(ex map[string]*plan.Extract) error {
	k := &keepSpec{}
	for _, name := range slices.Sorted(maps.Keys(ex)) {
		e := ex[name]
		kind, arg := e.Kind()
		x := extractor{name: name, scope: e.Scope, kind: kind, def: e.Default}
		switch kind {
		case "json":
			x.path = splitJSONPath(arg)
			r.needBody = true
		case "regex":
			re, err := regexp.Compile(arg)
			if err != nil {
				return fmt.Errorf("extract %s: %w", name, err)
			}
			x.re, r.needBody = re, true
		case "header":
			x.arg = http.CanonicalHeaderKey(arg)
			k.names = append(k.names, strings.ToLower(arg))
		case "cookie":
			x.arg, k.setCookie = arg, true
		default:
			return fmt.Errorf("extract %s: give one of json, regex, header, cookie", name)
		}
		r.extracts = append(r.extracts, x)
	}
	if len(r.extracts) > 0 && (len(k.names) > 0 || k.setCookie) {
		r.keep = k
	}
	jar := keepSpec{names: k.names, setCookie: true}
	r.keepJar = &jar
	return nil
}

// Extracted is one value an extraction took from a response.
type Extracted struct {
	Name, Value string
	// Scope is the plan's scope for it, "" for the default.
	Scope string
}

// Extracts reports whether req takes values from its responses.
func (r *Request) Extracts() bool { return len(r.extracts) > 0 }

// Extract takes req's values from res in name order and appends them to
// into: each found, else its default. ok is false when one found nothing
// and has no default (a failed request finds nothing).
func (r *Request) Extract(res *Result, into []Extracted) (_ []Extracted, ok bool) {
	ok = true
	for i := range r.extracts {
		x := &r.extracts[i]
		v, found := "", false
		if res.Err == nil {
			v, found = x.take(res)
		}
		switch {
		case found:
		case x.def != nil:
			v = *x.def
		default:
			ok = false
			continue
		}
		into = append(into, Extracted{Name: x.name, Value: v, Scope: x.scope})
	}
	return into, ok
}

// take finds x's value in res.
func (x *extractor) take(res *Result) (string, bool) {
	switch x.kind {
	case "json":
		raw, ok := jsonFind(res.Body, x.path)
		if !ok {
			return "", false
		}
		return jsonRawText(raw), true
	case "regex":
		m := x.re.FindSubmatch(res.Body)
		switch {
		case m == nil:
			return "", false
		case len(m) > 1:
			return string(m[1]), true
		}
		return string(m[0]), true
	case "header":
		vs := res.Header[x.arg]
		if len(vs) == 0 {
			return "", false
		}
		return vs[0], true
	case "cookie":
		v, found := "", false
		for _, line := range res.SetCookies {
			if c, err := http.ParseSetCookie(line); err == nil && c.Name == x.arg {
				v, found = c.Value, true
			}
		}
		return v, found
	}
	return "", false
}
