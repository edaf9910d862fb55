package plan

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"go.yaml.in/yaml/v3"
)

// BaseURLEnv is the environment variable that `surge run` and `surge
// validate` read for --base-url.
const BaseURLEnv = "SURGE_BASE_URL"

// isPath reports whether a request or websocket URL is written as a path
// ("/api/items"), which the plan's base_url completes. "//host/x" is not.
func isPath(u string) bool {
	return strings.HasPrefix(u, "/") && !strings.HasPrefix(u, "//")
}

// CheckBaseURL reports whether s can be a plan's base_url: an absolute
// http or https URL with a host, no query, fragment or template.
func CheckBaseURL(s string) error {
	if strings.Contains(s, "{{") {
		return errors.New("takes no templates (pass --base-url or set " + BaseURLEnv + " to vary it)")
	}
	u, err := url.Parse(s)
	switch {
	case !strings.HasPrefix(s, "http://") && !strings.HasPrefix(s, "https://"):
		return errors.New("must be an absolute URL with scheme http or https, such as http://127.0.0.1:8080")
	case err != nil:
		return fmt.Errorf("invalid URL: %w", errUnwrapURL(err))
	case u.Host == "":
		return errors.New("has no host")
	case u.RawQuery != "" || u.Fragment != "" || strings.ContainsAny(s, "?#"):
		return errors.New("must not have a query or fragment")
	}
	return nil
}

// resolveURLs completes every URL written as a path with the plan's
// base_url (ws:// or wss:// for websocket steps). It runs after the
// requests were checked, so default request names keep the path as
// written ("GET /api/items") whatever the base. Without a base_url each
// such URL is an error saying how to give one.
func resolveURLs(l *errorList, p *Plan) {
	base := p.BaseURL
	if base != "" {
		if err := CheckBaseURL(base); err != nil {
			l.add("base_url", "%q %v", base, err)
			return // the URLs are not wrong: the base is
		}
		base = strings.TrimRight(base, "/")
	}
	wsBase := "ws" + strings.TrimPrefix(base, "http")
	resolve := func(path string, u *string, b string) {
		if !isPath(*u) {
			return
		}
		if base == "" {
			l.add(path, "URL %q is a path and the plan has no base_url: set base_url (e.g. base_url: http://127.0.0.1:8080) or pass --base-url (env %s)", *u, BaseURLEnv)
			return
		}
		*u = b + *u
	}
	for _, name := range p.ScenarioNames() {
		s := p.Scenarios[name]
		if s == nil {
			continue
		}
		for _, list := range s.stepLists(joinPath("scenarios", name)) {
			for i := range list.steps {
				st, ip := &list.steps[i], indexPath(list.path, i)
				paths, reqs := stepRequests(ip, st)
				for k, r := range reqs {
					resolve(joinPath(paths[k], "url"), &r.URL, base)
				}
				if st.WebSocket != nil {
					resolve(joinPath(joinPath(ip, "websocket"), "url"), &st.WebSocket.URL, wsBase)
				}
			}
		}
	}
}

// Options are what the command line gives beside a plan file.
type Options struct {
	// BaseDir is where feeders' data files are read from, normally the
	// plan file's directory; "" reads none (as Parse).
	BaseDir string
	// BaseURL, if set, replaces the plan's base_url (--base-url); check it
	// with CheckBaseURL first.
	BaseURL string
	// Overrides set plan keys (--set, -e, --vus, --duration), in order.
	Overrides []Override
}

// ParseFile is Parse for a plan file with the command line's options: data
// files read (see ParseWithData) and base_url overridden. It returns the
// plan and the YAML to submit to a controller, which has the data inline
// and the overriding base_url. Errors name positions in src as written.
func ParseFile(file string, src []byte, o Options) (*Plan, []byte, error) {
	p, err := parse(file, src, o.Overrides, func(p *Plan, ps *positions) error {
		if o.BaseURL != "" {
			p.BaseURL = o.BaseURL
		}
		if o.BaseDir == "" {
			return nil
		}
		return loadData(file, p, ps, o.BaseDir)
	})
	if err != nil {
		return nil, nil, err
	}
	out, err := submittedYAML(src, p, o.BaseURL, o.Overrides)
	if err != nil {
		return nil, nil, &Error{File: file, Msg: err.Error()}
	}
	return p, out, nil
}

// SetBaseURL returns src with its top-level base_url set to base, replacing
// the plan's own or adding one. The rest of the plan (comments included)
// stays as written, though YAML is re-encoded.
func SetBaseURL(src []byte, base string) ([]byte, error) {
	return submittedYAML(src, &Plan{}, base, nil)
}

// submittedYAML is src with the overrides applied, p's feeder rows inline
// (inlineYAML) and, if base is set, base_url set to it; src itself when
// none applies.
func submittedYAML(src []byte, p *Plan, base string, overrides []Override) ([]byte, error) {
	if base == "" && !hasInline(p) && len(overrides) == 0 {
		return src, nil
	}
	var root yaml.Node
	if err := yaml.Unmarshal(src, &root); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	doc := &root
	if doc.Kind == yaml.DocumentNode && len(doc.Content) > 0 {
		doc = doc.Content[0]
	}
	if doc.Kind != yaml.MappingNode {
		return nil, errors.New("the plan is not a mapping")
	}
	if err := applyOverrides(&root, overrides); err != nil {
		return nil, err
	}
	if err := inlineYAML(doc, p); err != nil {
		return nil, fmt.Errorf("inline data: %w", err)
	}
	if base != "" {
		setMapValue(doc, "base_url", base)
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&root); err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	return buf.Bytes(), nil
}

// setMapValue sets the string value of key in mapping n, adding the key
// after name (or first) when n has none.
func setMapValue(n *yaml.Node, key, value string) {
	v := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: value}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			n.Content[i+1] = v
			return
		}
	}
	at := 0
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == "name" || n.Content[i].Value == "description" {
			at = i + 2
		}
	}
	k := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}
	n.Content = append(n.Content[:at], append([]*yaml.Node{k, v}, n.Content[at:]...)...)
}
