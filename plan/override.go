package plan

import (
	"cmp"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Override sets one plan key from the command line: `surge run --set
// PATH=VALUE` (VALUE is YAML: 500, 30s, [a, b]), `-e NAME=VALUE` (env.NAME,
// VALUE a string), --vus and --duration. Flag names how the user wrote it,
// for errors.
type Override struct {
	Path  string
	Value string
	// String: Value is taken as a string, never as YAML.
	String bool
	Flag   string
}

// ParseOverride reads one --set PATH=VALUE.
func ParseOverride(s string) (Override, error) {
	path, value, ok := strings.Cut(s, "=")
	o := Override{Path: strings.TrimSpace(path), Value: value, Flag: "--set " + s}
	if !ok || o.Path == "" {
		return o, fmt.Errorf("--set %q: want PATH=VALUE, e.g. scenarios.api.rate=500", s)
	}
	if _, err := splitOverridePath(o.Path); err != nil {
		return o, fmt.Errorf("--set %q: %w", s, err)
	}
	return o, nil
}

// EnvOverride is -e NAME=VALUE: the plan's env.NAME, which {{env "NAME"}}
// reads before the agent's own environment.
func EnvOverride(s string) (Override, error) {
	name, value, ok := strings.Cut(s, "=")
	if !ok || !varName.MatchString(name) {
		return Override{}, fmt.Errorf("-e %q: want NAME=VALUE, NAME letters, digits and _ (not starting with a digit)", s)
	}
	return Override{Path: "env." + name, Value: value, String: true, Flag: "-e " + s}, nil
}

// pathPart is one step of an override path: a mapping key, or a sequence
// index (index >= 0).
type pathPart struct {
	key   string
	index int
}

var overrideStep = regexp.MustCompile(`^([^.\[\]]+)((?:\[[0-9]+\])*)$`)

// splitOverridePath reads a.b[0].c into its steps.
func splitOverridePath(path string) ([]pathPart, error) {
	var out []pathPart
	for _, seg := range strings.Split(path, ".") {
		m := overrideStep.FindStringSubmatch(seg)
		if m == nil {
			return nil, fmt.Errorf("path %q: want keys separated by dots, with [N] for list items, e.g. scenarios.api.requests[0].url", path)
		}
		out = append(out, pathPart{key: m[1], index: -1})
		for _, ix := range strings.Split(strings.Trim(m[2], "[]"), "][") {
			if ix != "" {
				n, _ := strconv.Atoi(ix)
				out = append(out, pathPart{index: n})
			}
		}
	}
	return out, nil
}

// applyOverrides sets each override in the YAML document root, creating
// missing mappings on the way. The nodes it writes carry line -(i+1) for
// override i, so errors about them name the override, not a line.
func applyOverrides(root *yaml.Node, os []Override) error {
	doc := root
	if doc.Kind == yaml.DocumentNode && len(doc.Content) > 0 {
		doc = doc.Content[0]
	}
	for i, o := range os {
		val, err := overrideNode(o, -(i + 1))
		if err != nil {
			return err
		}
		parts, err := splitOverridePath(o.Path)
		if err != nil {
			return fmt.Errorf("%s: %w", o.Flag, err)
		}
		if err := setPath(doc, parts, val, o); err != nil {
			return err
		}
	}
	return nil
}

// overrideNode is o's value as a YAML node at line.
func overrideNode(o Override, line int) (*yaml.Node, error) {
	n := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: o.Value}
	if !o.String {
		var doc yaml.Node
		if err := yaml.Unmarshal([]byte(o.Value), &doc); err != nil {
			return nil, fmt.Errorf("%s: the value is not YAML: %w", o.Flag, err)
		}
		if len(doc.Content) > 0 {
			n = doc.Content[0]
		} else {
			n = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: ""}
		}
	}
	var mark func(*yaml.Node)
	mark = func(x *yaml.Node) {
		x.Line, x.Column = line, 0
		for _, c := range x.Content {
			mark(c)
		}
	}
	mark(n)
	return n, nil
}

// setPath puts val at parts under n.
func setPath(n *yaml.Node, parts []pathPart, val *yaml.Node, o Override) error {
	for i, p := range parts {
		last := i == len(parts)-1
		if p.index >= 0 {
			if n.Kind != yaml.SequenceNode || p.index >= len(n.Content) {
				return fmt.Errorf("%s: %s has no item %d", o.Flag, overridePrefix(parts[:i]), p.index)
			}
			if last {
				n.Content[p.index] = val
				return nil
			}
			n = n.Content[p.index]
			continue
		}
		if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
			*n = yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: val.Line}
		}
		if n.Kind != yaml.MappingNode {
			return fmt.Errorf("%s: %s is not a mapping", o.Flag, cmp.Or(overridePrefix(parts[:i]), "the plan"))
		}
		child := mapValue(n, p.key)
		if last {
			if child != nil {
				*child = *val
			} else {
				n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: p.key, Line: val.Line}, val)
			}
			return nil
		}
		if child == nil {
			child = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: val.Line}
			n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: p.key, Line: val.Line}, child)
		}
		n = child
	}
	return nil
}

// overridePrefix renders parts as a path again.
func overridePrefix(parts []pathPart) string {
	var b strings.Builder
	for _, p := range parts {
		if p.index >= 0 {
			fmt.Fprintf(&b, "[%d]", p.index)
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(p.key)
	}
	return b.String()
}

// MaxEnv bounds a plan's env values.
const MaxEnv = 64

// LookupEnv is {{env}}'s lookup: the plan's env first, then agent, the
// agent's own environment.
func (p *Plan) LookupEnv(agent func(string) (string, bool)) func(string) (string, bool) {
	return func(name string) (string, bool) {
		if v, ok := p.Env[name]; ok {
			return v, true
		}
		return agent(name)
	}
}

// checkEnv validates the plan's env.
func checkEnv(l *errorList, p *Plan) {
	if len(p.Env) > MaxEnv {
		l.add("env", "%d values, at most %d", len(p.Env), MaxEnv)
	}
	for _, name := range sortedKeys(p.Env) {
		if !varName.MatchString(name) {
			l.addKey(joinPath("env", name), "name %q: want letters, digits and _, not starting with a digit", name)
		}
	}
}

// ScenarioOverride is --vus or --duration (key vus or duration) for the
// plan in src, which must have exactly one scenario.
func ScenarioOverride(src []byte, key, value, flag string) (Override, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(src, &root); err != nil || len(root.Content) == 0 {
		return Override{}, fmt.Errorf("%s: the plan does not decode; run surge validate", flag)
	}
	scens := mapValue(root.Content[0], "scenarios")
	if scens == nil || scens.Kind != yaml.MappingNode || len(scens.Content) != 2 {
		n := 0
		if scens != nil {
			n = len(scens.Content) / 2
		}
		return Override{}, fmt.Errorf("%s: only for a plan of one scenario, this one has %d: use --set scenarios.NAME.%s=%s", flag, n, key, value)
	}
	return Override{Path: "scenarios." + scens.Content[0].Value + "." + key, Value: value, Flag: flag}, nil
}
