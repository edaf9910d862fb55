package plan

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Parse decodes a plan from YAML strictly (unknown keys are errors), applies
// defaults and validates it. file names the source in errors, which read
// "file:line:col: path: message", e.g.
// `plan.yaml:12:9: scenarios.burst.stages[2].target: must be >= 0`.
// Every problem is reported (errors.Join of *Error), not only the first.
//
// A plan without a name is named after file's base name without extension.
func Parse(file string, src []byte) (*Plan, error) { return parse(file, src, nil, nil) }

// parse is Parse; load, if set, runs after decoding and before validation.
func parse(file string, src []byte, overrides []Override, load func(*Plan, *positions) error) (*Plan, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(src, &root); err != nil {
		return nil, syntaxError(file, src, err)
	}
	if root.Kind == 0 || (root.Kind == yaml.DocumentNode && len(root.Content) == 0) {
		return nil, &Error{File: file, Line: 1, Col: 1, Msg: "empty plan"}
	}
	if err := singleDocument(file, src); err != nil {
		return nil, err
	}
	if err := applyOverrides(&root, overrides); err != nil {
		return nil, &Error{File: file, Msg: err.Error()}
	}
	pos := newPositions()
	for _, o := range overrides {
		pos.overrides = append(pos.overrides, o.Flag)
	}
	w := &walker{errs: errorList{file: file, pos: pos}, bad: map[string]bool{}, dropped: map[*yaml.Node]bool{}}
	w.walk(&root, reflect.TypeFor[Plan](), "", 0)
	w.prune(&root, map[*yaml.Node]bool{})

	// The walk made every value it reported null and dropped every key it
	// reported, so the rest decodes and is validated too: one pass reports
	// every problem, and none twice.
	var p Plan
	if err := root.Decode(&p); err != nil {
		w.errs.errs = append(w.errs.errs, flatten(yamlError(file, err))...)
		return nil, w.errs.err()
	}
	if p.Name == "" {
		p.Name = strings.TrimSuffix(filepath.Base(file), filepath.Ext(file))
	}
	l := &errorList{file: file, pos: w.errs.pos, errs: w.errs.errs, skip: w.bad}
	if load != nil {
		if err := load(&p, l.pos); err != nil {
			l.errs = append(l.errs, flatten(err)...)
		}
	}
	checkInto(l, &p)
	if err := l.err(); err != nil {
		return nil, err
	}
	return &p, nil
}

// singleDocument reports a second YAML document in src.
func singleDocument(file string, src []byte) error {
	dec := yaml.NewDecoder(bytes.NewReader(src))
	var first, extra yaml.Node
	if err := dec.Decode(&first); err != nil {
		return nil // an empty or malformed first document is reported elsewhere
	}
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
		return nil
	case err != nil:
		return syntaxError(file, src, err)
	default:
		return &Error{File: file, Line: max(extra.Line, 1), Col: extra.Column, Msg: "a plan file holds one YAML document"}
	}
}

// MarshalCanonical encodes a parsed plan as canonical JSON for the wire:
// struct fields in declaration order, map keys sorted, defaults filled in.
func MarshalCanonical(p *Plan) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(p); err != nil {
		return nil, fmt.Errorf("marshal plan: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// FromJSON decodes a plan encoded by MarshalCanonical and re-validates it.
// Errors name the file "plan.json" and carry no position.
func FromJSON(b []byte) (*Plan, error) {
	const file = "plan.json"
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var p Plan
	if err := dec.Decode(&p); err != nil {
		return nil, &Error{File: file, Msg: err.Error()}
	}
	if dec.More() {
		return nil, &Error{File: file, Msg: "trailing data after the plan"}
	}
	var tree any
	if err := json.Unmarshal(b, &tree); err != nil {
		return nil, &Error{File: file, Msg: err.Error()}
	}
	ps := newPositions()
	indexJSON(tree, "", ps)
	if err := check(&p, file, ps); err != nil {
		return nil, err
	}
	return &p, nil
}

// indexJSON records every path of a decoded JSON value, without positions,
// so that validation knows which keys were written.
func indexJSON(v any, path string, ps *positions) {
	ps.val[path] = pos{}
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			indexJSON(x, joinPath(path, k), ps)
		}
	case []any:
		for i, x := range v {
			indexJSON(x, indexPath(path, i), ps)
		}
	}
}

// syntaxError reports malformed YAML. go.yaml.in/yaml names the line where
// the enclosing construct starts, which is often far above the mistake, so
// the line is refined to the first one at which the document stops parsing.
func syntaxError(file string, src []byte, err error) error {
	e := yamlError(file, err)
	var pe *Error
	if !errors.As(e, &pe) {
		return e
	}
	pe.Msg = "invalid YAML: " + pe.Msg
	const maxLines = 5000
	lines := bytes.SplitAfter(src, []byte("\n"))
	// A stream-level error ("found unexpected end of stream") carries no
	// line: it is at the end, unless a shorter prefix fails below.
	if len(lines) > maxLines {
		if pe.Line == 0 {
			pe.Line = len(lines)
		}
		return pe
	}
	var n yaml.Node
	end := 0
	for i, line := range lines {
		end += len(line)
		if i+1 <= pe.Line {
			continue
		}
		if yaml.Unmarshal(src[:end], &n) != nil {
			pe.Line = i + 1
			break
		}
	}
	if pe.Line == 0 {
		pe.Line = len(lines)
	}
	return pe
}

// atNode gives an error from a custom unmarshaler the node's line, in the
// form yamlError reads: go.yaml.in/yaml passes such errors through without
// one.
func atNode(n *yaml.Node, err error) error {
	var te *yaml.TypeError
	if err == nil || errors.As(err, &te) || yamlLineRE.MatchString(err.Error()) {
		return err
	}
	return fmt.Errorf("line %d: %w", n.Line, err)
}

var yamlLineRE = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// yamlError turns a go.yaml.in/yaml error into *Error values with lines.
func yamlError(file string, err error) error {
	var lines []string
	var te *yaml.TypeError
	if errors.As(err, &te) {
		lines = te.Errors
	} else {
		lines = []string{err.Error()}
	}
	l := errorList{file: file}
	for _, s := range lines {
		if m := yamlLineRE.FindStringSubmatch(s); m != nil {
			n, _ := strconv.Atoi(m[1])
			l.addAt(pos{line: n}, "", m[2])
			continue
		}
		l.addAt(pos{}, "", strings.TrimPrefix(s, "yaml: "))
	}
	return l.err()
}

// UnmarshalYAML reads Go duration text such as "1m30s".
// Errors carry the node's line.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error { return atNode(n, d.unmarshalYAML(n)) }

func (d *Duration) unmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("expected a duration such as \"1m30s\", got %s", kindName(n))
	}
	return d.parse(n.Value)
}

// MarshalYAML writes d as Go duration text.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// UnmarshalJSON reads a JSON string of Go duration text.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration: expected a string such as \"1m30s\": %w", err)
	}
	return d.parse(s)
}

// MarshalJSON writes d as a JSON string of Go duration text.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// String is Go duration text, such as "1m30s".
func (d Duration) String() string { return time.Duration(d).String() }

func (d *Duration) parse(s string) error {
	v, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return fmt.Errorf("invalid duration %q: want Go duration text such as \"500ms\" or \"1m30s\"", s)
	}
	*d = Duration(v)
	return nil
}

// thresholdFields is Threshold without its methods, for plain decoding.
type thresholdFields Threshold

// UnmarshalYAML reads either an expression string ("p(95)<500") or a
// mapping {threshold, abort_on_fail, delay_abort_eval}.
// Errors carry the node's line.
func (t *Threshold) UnmarshalYAML(n *yaml.Node) error { return atNode(n, t.unmarshalYAML(n)) }

func (t *Threshold) unmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		*t = Threshold{Expr: n.Value}
		return nil
	case yaml.MappingNode:
		var f thresholdFields
		if err := n.Decode(&f); err != nil {
			return err
		}
		*t = Threshold(f)
		return nil
	}
	return fmt.Errorf("expected a threshold such as \"p(95)<500\" or a mapping {threshold, abort_on_fail, delay_abort_eval}, got %s", kindName(n))
}

// UnmarshalJSON reads either an expression string or an object.
func (t *Threshold) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*t = Threshold{Expr: s}
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var f thresholdFields
	if err := dec.Decode(&f); err != nil {
		return fmt.Errorf("threshold: %w", err)
	}
	*t = Threshold(f)
	return nil
}
