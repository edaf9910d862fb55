package plan

import (
	"regexp"
	"strings"
)

// Scopes of an extracted value: how long it lives in its VU.
const (
	// ScopeIteration: the value ends with the iteration (the default in
	// flows).
	ScopeIteration = "iteration"
	// ScopeVU: the value lasts until the VU ends or a later extraction of
	// the same name replaces it (always so in on_start).
	ScopeVU = "vu"
)

// Extract takes one value from a response: exactly one of JSON (a path
// into the JSON body, "$.token", "items.0.id"), Regex (matched on the
// body: its first group, else the whole match), Header (the first value of
// a response header) and Cookie (the value of a cookie the response sets).
type Extract struct {
	JSON   string `yaml:"json,omitempty" json:"json,omitempty"`
	Regex  string `yaml:"regex,omitempty" json:"regex,omitempty"`
	Header string `yaml:"header,omitempty" json:"header,omitempty"`
	Cookie string `yaml:"cookie,omitempty" json:"cookie,omitempty"`
	// Default is taken when the value is not found. Without it a value not
	// found counts as extract_failed on the request's series and ends the
	// iteration: the steps after it are not sent.
	Default *string `yaml:"default,omitempty" json:"default,omitempty"`
	// Scope is iteration or vu; see the Scope constants.
	Scope string `yaml:"scope,omitempty" json:"scope,omitempty"`
}

// Extraction kinds, in the order Kind tells them.
var extractKinds = []string{"json", "regex", "header", "cookie"}

// Kind is which of json, regex, header and cookie e gives, with its
// argument; "" when it gives none or several.
func (e *Extract) Kind() (kind, arg string) {
	n := 0
	for i, v := range []string{e.JSON, e.Regex, e.Header, e.Cookie} {
		if v != "" {
			kind, arg = extractKinds[i], v
			n++
		}
	}
	if n != 1 {
		return "", ""
	}
	return kind, arg
}

// varName is what an extracted value may be called.
var varName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// checkExtract validates a request's extractions at path, in the step
// sequence flow; on_start's values live as long as the VU.
func checkExtract(l *errorList, path, flow string, ex map[string]*Extract) {
	for _, name := range sortedKeys(ex) {
		ep := joinPath(path, name)
		e := ex[name]
		if !varName.MatchString(name) {
			l.addKey(ep, "extraction name %q: want letters, digits and _, not starting with a digit", name)
		}
		if e == nil {
			l.add(ep, "want one of {json: PATH}, {regex: RE}, {header: NAME}, {cookie: NAME}")
			continue
		}
		kind, arg := e.Kind()
		switch kind {
		case "":
			if !l.skippedUnder(ep) { // an unknown kind is reported already
				l.add(ep, "give exactly one of %s", strings.Join(extractKinds, ", "))
			}
		case "json":
			if strings.TrimPrefix(strings.TrimPrefix(arg, "$"), ".") == "" {
				l.add(joinPath(ep, "json"), "empty JSON path")
			}
		case "regex":
			if _, err := regexp.Compile(arg); err != nil {
				l.add(joinPath(ep, "regex"), "invalid regular expression: %v", err)
			}
		case "header", "cookie":
			if strings.ContainsAny(arg, " \t\r\n:;=,") {
				l.add(joinPath(ep, kind), "invalid %s name %q", kind, arg)
			}
		}
		switch {
		case e.Scope != "" && e.Scope != ScopeIteration && e.Scope != ScopeVU:
			l.add(joinPath(ep, "scope"), "unknown scope %q (valid: %s, %s)", e.Scope, ScopeIteration, ScopeVU)
		case e.Scope == ScopeIteration && (flow == OnStartFlow || flow == OnStopFlow):
			l.add(joinPath(ep, "scope"), "%s runs once per VU: its values last the VU's life (scope: %s)", flow, ScopeVU)
		}
	}
}

// ScopeOf is the scope of an extraction in the step sequence flow.
func (e *Extract) ScopeOf(flow string) string {
	switch {
	case e.Scope != "":
		return e.Scope
	case flow == OnStartFlow || flow == OnStopFlow:
		return ScopeVU
	}
	return ScopeIteration
}
