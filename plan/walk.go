package plan

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

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

// sortedKeys are m's keys in order.
func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

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
