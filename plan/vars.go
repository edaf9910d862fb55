package plan

import (
	"fmt"
	"strings"
)

// checkVars reports every {{var "NAME"}} that no earlier step can have
// set. A sequence's steps read what on_start extracted and what the steps
// before them in the same sequence extracted; the requests of a batch do
// not see each other's values. sp is the scenario's path.
func checkVars(l *errorList, sp string, s *Scenario) {
	start := map[string]bool{}
	for _, list := range s.stepLists(sp) {
		set := map[string]bool{}
		if list.flow != OnStartFlow {
			for k := range start {
				set[k] = true
			}
		}
		for i := range list.steps {
			st, ip := &list.steps[i], indexPath(list.path, i)
			var texts []templated
			paths, reqs := stepRequests(ip, st)
			for k, r := range reqs {
				texts = append(texts, requestTemplates(paths[k], r)...)
			}
			if st.WebSocket != nil {
				texts = append(texts, webSocketTemplates(joinPath(ip, "websocket"), st.WebSocket)...)
			}
			for _, t := range texts {
				for _, name := range templateVars(t.text) {
					if !set[name] {
						l.add(t.path, "template: {{var %q}}: %s", name, unsetVar(list.flow, name, set))
					}
				}
			}
			for _, r := range reqs {
				for name := range r.Extract {
					set[name] = true
				}
			}
		}
		if list.flow == OnStartFlow {
			start = set
		}
	}
}

// unsetVar says why name cannot be read in the sequence flow, where set
// are the names that can.
func unsetVar(flow, name string, set map[string]bool) string {
	where := fmt.Sprintf("no step before this one in flow %s, nor on_start, extracts %q", flow, name)
	if flow == OnStartFlow {
		where = fmt.Sprintf("no earlier step of on_start extracts %q", name)
	}
	if len(set) == 0 {
		return where + " (nothing is extracted before it)"
	}
	return where + " (extracted before it: " + strings.Join(sortedKeys(set), ", ") + ")"
}

// templateVars returns the names a template reads with {{var}}; none when
// it does not parse (reported elsewhere).
func templateVars(s string) []string {
	if !strings.Contains(s, "{{") {
		return nil
	}
	parts, err := ParseTemplate(s)
	if err != nil {
		return nil
	}
	var out []string
	for _, p := range parts {
		if p.Func == "var" {
			out = append(out, p.Args[0])
		}
	}
	return out
}
