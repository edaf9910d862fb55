package plan

import (
	"os"
	"reflect"
	"sort"
	"strings"
	"testing"
)

// yamlKeys collects every YAML key reachable from t, with a path naming
// where it is, e.g. "scenarios.*.connection.pool_size".
func yamlKeys(t reflect.Type, path string, seen map[reflect.Type]bool, out map[string]string) {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
		if t.Kind() == reflect.Map {
			path += ".*"
		}
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || seen[t] || t == durationType {
		return
	}
	seen[t] = true
	for key, f := range yamlFields(t) {
		p := joinPath(path, key)
		out[p] = key
		yamlKeys(f.Type, p, seen, out)
	}
	if t == stepType {
		yamlKeys(requestType, path, seen, out)
	}
}

// Every key the decoder accepts is documented in docs/plan-reference.md.
func TestPlanReferenceDocumentsEveryKey(t *testing.T) {
	doc, err := os.ReadFile("../docs/plan-reference.md")
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]string{}
	yamlKeys(reflect.TypeFor[Plan](), "", map[reflect.Type]bool{}, keys)
	// The words inside `code` spans: keys are written `key`, `a.key` or
	// `{key: ...}`.
	words := map[string]bool{}
	spans := strings.Split(string(doc), "`")
	for i := 1; i < len(spans); i += 2 {
		for _, w := range strings.FieldsFunc(spans[i], func(r rune) bool {
			return !(r == '_' || r == '-' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9')
		}) {
			words[w] = true
		}
	}
	var missing []string
	for path, key := range keys {
		if !words[key] {
			missing = append(missing, path)
		}
	}
	sort.Strings(missing)
	if len(keys) < 50 || len(missing) > 0 {
		t.Errorf("%d keys; undocumented in docs/plan-reference.md: %s", len(keys), strings.Join(missing, ", "))
	}
}
