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
	"sort"
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
func Parse(file string, src []byte) (*Plan, error) { return parse(file, src, nil) }

// parse is Parse; load, if set, runs after decoding and before validation.
func parse(file string, src []byte, load func(*Plan, *positions) error) (*Plan, error) {
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
	w := &walker{errs: errorList{file: file, pos: newPositions()}, bad: map[string]bool{}, dropped: map[*yaml.Node]bool{}}
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

// walker checks a yaml.Node tree against the plan's Go types before
// decoding: unknown and duplicate keys, node kinds and scalar types, each
// reported with its path and position. It also builds the position index
// that validation uses afterwards.
type walker struct {
	errs errorList
	// bad holds the paths already reported, dropped holds the mapping keys
	// to remove before decoding.
	bad     map[string]bool
	dropped map[*yaml.Node]bool
}

const maxDepth = 64

var (
	durationType  = reflect.TypeFor[Duration]()
	thresholdType = reflect.TypeFor[Threshold]()
	arrivalsType  = reflect.TypeFor[Arrivals]()
	stepType      = reflect.TypeFor[Step]()
	distType      = reflect.TypeFor[Dist]()
	statusType    = reflect.TypeFor[StatusList]()
	requestType   = reflect.TypeFor[Request]()
)

// failValue reports a problem with value n at path and makes n null, so
// that the tree decodes and validation reports the plan's other problems
// (but none more at or under path).
func (w *walker) failValue(n *yaml.Node, path, format string, args ...any) {
	w.errs.addAt(pos{n.Line, n.Column}, path, fmt.Sprintf(format, args...))
	w.bad[path] = true
	*n = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Line: n.Line, Column: n.Column}
}

// failKey reports a problem with mapping key k and drops the key and its
// value from the tree; bad, if set, is the path validation stays silent on.
func (w *walker) failKey(k *yaml.Node, bad, path, format string, args ...any) {
	w.errs.addAt(pos{k.Line, k.Column}, path, fmt.Sprintf(format, args...))
	if bad != "" {
		w.bad[bad] = true
	}
	w.dropped[k] = true
}

// prune removes the key-value pairs whose keys failKey dropped.
func (w *walker) prune(n *yaml.Node, seen map[*yaml.Node]bool) {
	if n == nil || seen[n] {
		return
	}
	seen[n] = true
	if n.Kind == yaml.MappingNode {
		kept := n.Content[:0]
		for i := 0; i+1 < len(n.Content); i += 2 {
			if !w.dropped[n.Content[i]] {
				kept = append(kept, n.Content[i], n.Content[i+1])
			}
		}
		n.Content = kept
	}
	for _, c := range n.Content {
		w.prune(c, seen)
	}
	w.prune(n.Alias, seen)
}

func (w *walker) walk(n *yaml.Node, t reflect.Type, path string, depth int) {
	if depth > maxDepth {
		w.failValue(n, path, "nested too deeply")
		return
	}
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) > 0 {
			w.walk(n.Content[0], t, path, depth+1)
		}
		return
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if _, ok := w.errs.pos.val[path]; !ok {
		w.errs.pos.val[path] = pos{n.Line, n.Column}
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // zero value
	}
	if w.walkSpecial(n, t, path, depth) {
		return
	}
	switch t.Kind() {
	case reflect.Pointer:
		w.walk(n, t.Elem(), path, depth+1)
	case reflect.Struct:
		w.walkStruct(n, t, path, depth)
	case reflect.Map:
		w.walkMap(n, t, path, depth)
	case reflect.Slice:
		w.walkSlice(n, t, path, depth)
	default:
		if n.Kind != yaml.ScalarNode {
			w.failValue(n, path, "expected %s, got %s", typeName(t), kindName(n))
			return
		}
		v := reflect.New(t)
		if err := n.Decode(v.Interface()); err != nil {
			w.failValue(n, path, "expected %s, got %q", typeName(t), n.Value)
		}
	}
}

// walkSpecial walks the types that decode themselves; false for others.
func (w *walker) walkSpecial(n *yaml.Node, t reflect.Type, path string, depth int) bool {
	switch t {
	case durationType:
		var d Duration
		if err := n.Decode(&d); err != nil {
			w.failValue(n, path, "%s", yamlMsg(err))
		}
		return true
	case arrivalsType, distType:
		if n.Kind == yaml.MappingNode {
			w.walkStruct(n, t, path, depth)
			return true
		}
		if err := n.Decode(reflect.New(t).Interface()); err != nil {
			w.failValue(n, path, "%s", yamlMsg(err))
		}
		return true
	case stepType:
		switch {
		case isControlStep(n):
			w.walkStruct(n, t, path, depth)
		case n.Kind == yaml.MappingNode:
			w.walkFields(n, requestType, path, depth+1, stepKeyError)
			fields := yamlFields(requestType)
			for i := 0; i < len(n.Content); i += 2 {
				if _, ok := fields[n.Content[i].Value]; !ok && n.Content[i].Value != "<<" {
					w.bad[path] = true // what the step is meant to be is unclear
				}
			}
		default:
			w.walk(n, requestType, path, depth+1)
		}
		return true
	case statusType:
		var sl StatusList
		if err := n.Decode(&sl); err != nil {
			w.failValue(n, path, "%s", yamlMsg(err))
		}
		return true
	case thresholdType:
		if n.Kind == yaml.MappingNode {
			w.walkStruct(n, t, path, depth)
			return true
		}
		var th Threshold
		if err := n.Decode(&th); err != nil {
			w.failValue(n, path, "%s", yamlMsg(err))
		}
		return true
	}
	return false
}

func (w *walker) walkMap(n *yaml.Node, t reflect.Type, path string, depth int) {
	if n.Kind != yaml.MappingNode {
		w.failValue(n, path, "expected a mapping, got %s", kindName(n))
		return
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			w.failKey(k, "", path, "keys must be strings")
			continue
		}
		cp := joinPath(path, k.Value)
		if seen[k.Value] {
			w.failKey(k, cp, cp, "duplicate key %q", k.Value)
			continue
		}
		seen[k.Value] = true
		w.errs.pos.key[cp] = pos{k.Line, k.Column}
		w.walk(v, t.Elem(), cp, depth+1)
	}
}

func (w *walker) walkSlice(n *yaml.Node, t reflect.Type, path string, depth int) {
	if n.Kind != yaml.SequenceNode {
		w.failValue(n, path, "expected a list, got %s", kindName(n))
		return
	}
	for i, v := range n.Content {
		w.walk(v, t.Elem(), indexPath(path, i), depth+1)
	}
}

func (w *walker) walkStruct(n *yaml.Node, t reflect.Type, path string, depth int) {
	w.walkFields(n, t, path, depth, func(key string, fields map[string]reflect.StructField) string {
		return fmt.Sprintf("unknown key %q (valid keys: %s)", key, strings.Join(sortedKeys(fields), ", "))
	})
}

// stepKeyError is the message for an unknown key of a flow step that is not
// a think, batch or websocket step: it may be a request's key or a
// misspelled step kind.
func stepKeyError(key string, fields map[string]reflect.StructField) string {
	kinds := []string{"think", "batch", "websocket"}
	hint := ""
	for _, k := range kinds {
		if closeTo(key, k) {
			hint = fmt.Sprintf("; did you mean %q?", k)
		}
	}
	return fmt.Sprintf("unknown key %q: a step is a request (keys: %s), {think: ...}, {batch: [...]} or {websocket: {...}}%s",
		key, strings.Join(sortedKeys(fields), ", "), hint)
}

// closeTo reports whether a is b with one or two letters added, dropped or
// changed, or b's prefix of at least three letters.
func closeTo(a, b string) bool {
	a, b = strings.ToLower(a), strings.ToLower(b)
	if len(a) >= 3 && strings.HasPrefix(b, a) {
		return true
	}
	// Levenshtein distance, bounded by len(b).
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			sub := prev[j-1]
			if a[i-1] != b[j-1] {
				sub++
			}
			cur[j] = min(sub, prev[j]+1, cur[j-1]+1)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)] <= 2
}

// walkFields is walkStruct with unknown keys reported by unknown.
func (w *walker) walkFields(n *yaml.Node, t reflect.Type, path string, depth int,
	unknown func(key string, fields map[string]reflect.StructField) string) {
	if n.Kind != yaml.MappingNode {
		w.failValue(n, path, "expected a mapping, got %s", kindName(n))
		return
	}
	fields := yamlFields(t)
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			w.failKey(k, "", path, "keys must be strings")
			continue
		}
		if k.Value == "<<" { // merge key: the merged mappings' keys are ours
			if v.Kind == yaml.AliasNode && v.Alias != nil {
				v = v.Alias
			}
			if !mergeable(v) {
				w.failKey(k, "", path, "a merge key (<<) takes a mapping or a sequence of mappings, got %s", kindName(v))
				continue
			}
			if v.Kind == yaml.SequenceNode {
				for _, m := range v.Content {
					w.walk(m, t, path, depth+1)
				}
			} else {
				w.walk(v, t, path, depth+1)
			}
			continue
		}
		cp := joinPath(path, k.Value)
		f, ok := fields[k.Value]
		if !ok {
			w.failKey(k, cp, cp, "%s", unknown(k.Value, fields))
			continue
		}
		if seen[k.Value] {
			w.failKey(k, cp, cp, "duplicate key %q", k.Value)
			continue
		}
		seen[k.Value] = true
		w.errs.pos.key[cp] = pos{k.Line, k.Column}
		w.walk(v, f.Type, cp, depth+1)
	}
}

// mergeable reports whether v (an alias resolved) may follow a merge key:
// a mapping, or a sequence of mappings or aliases of mappings, as the YAML
// decoder demands.
func mergeable(v *yaml.Node) bool {
	resolve := func(n *yaml.Node) *yaml.Node {
		if n.Kind == yaml.AliasNode && n.Alias != nil {
			return n.Alias
		}
		return n
	}
	switch v.Kind {
	case yaml.MappingNode:
		return true
	case yaml.SequenceNode:
		for _, m := range v.Content {
			if resolve(m).Kind != yaml.MappingNode {
				return false
			}
		}
		return true
	}
	return false
}

// yamlFields maps a struct's YAML keys to its fields.
func yamlFields(t reflect.Type) map[string]reflect.StructField {
	m := make(map[string]reflect.StructField, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		m[name] = f
	}
	return m
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return strconv.Quote(n.Value)
	}
	return "nothing"
}

func typeName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	}
	return t.String()
}

// yamlMsg strips go.yaml.in/yaml's prefixes from an error our own
// unmarshalers returned.
func yamlMsg(err error) string {
	s := err.Error()
	s = strings.TrimPrefix(s, "yaml: unmarshal errors:\n  ")
	if m := yamlLineRE.FindStringSubmatch(s); m != nil {
		return m[2]
	}
	return s
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
