package plan

// Lifecycle flows: a VU runs OnStartFlow once before its first iteration
// and OnStopFlow once when it ends; their series carry these flow names.
const (
	OnStartFlow = "on_start"
	OnStopFlow  = "on_stop"
)

// stepList is one sequence of a scenario's steps with the plan path that
// indexes them: a flow's steps, the requests shorthand (as request
// steps), on_start or on_stop.
type stepList struct {
	flow  string // DefaultFlow, a flow's name, OnStartFlow or OnStopFlow
	path  string // step i is at indexPath(path, i)
	steps []Step
}

// stepLists returns the scenario's step sequences, sp its path: on_start,
// then the flows by name (or the requests shorthand), then on_stop. The
// steps point into the scenario, so a change to a step's request sticks.
func (s *Scenario) stepLists(sp string) []stepList {
	var out []stepList
	if s.OnStart != nil {
		out = append(out, stepList{OnStartFlow, joinPath(joinPath(sp, OnStartFlow), "steps"), s.OnStart.Steps})
	}
	if len(s.Requests) > 0 {
		steps := make([]Step, len(s.Requests))
		for i := range s.Requests {
			steps[i] = Step{Request: &s.Requests[i]}
		}
		out = append(out, stepList{DefaultFlow, joinPath(sp, "requests"), steps})
	}
	for _, name := range sortedKeys(s.Flows) {
		if f := s.Flows[name]; f != nil {
			out = append(out, stepList{name, joinPath(joinPath(joinPath(sp, "flows"), name), "steps"), f.Steps})
		}
	}
	if s.OnStop != nil {
		out = append(out, stepList{OnStopFlow, joinPath(joinPath(sp, OnStopFlow), "steps"), s.OnStop.Steps})
	}
	return out
}

// stepRequests returns the requests of a step with their paths: the step's
// own (at path), or its batch's.
func stepRequests(path string, st *Step) ([]string, []*Request) {
	if st.Request != nil {
		return []string{path}, []*Request{st.Request}
	}
	var paths []string
	var reqs []*Request
	for j := range st.Batch {
		paths = append(paths, indexPath(joinPath(path, "batch"), j))
		reqs = append(reqs, &st.Batch[j])
	}
	return paths, reqs
}

// eachRequest calls fn with every request of the scenario (sp its path)
// and the request's path, in stepLists order.
func (s *Scenario) eachRequest(sp string, fn func(path string, r *Request)) {
	for _, list := range s.stepLists(sp) {
		for i := range list.steps {
			paths, reqs := stepRequests(indexPath(list.path, i), &list.steps[i])
			for k, r := range reqs {
				fn(paths[k], r)
			}
		}
	}
}

// templated is one templated value of a plan with its path.
type templated struct{ path, text string }

// requestTemplates returns the templated values of a request at path: its
// URL, headers, body, and the expected texts of its checks.
func requestTemplates(path string, r *Request) []templated {
	out := []templated{{joinPath(path, "url"), r.URL}}
	for _, k := range sortedKeys(r.Headers) {
		out = append(out, templated{joinPath(joinPath(path, "headers"), k), r.Headers[k]})
	}
	out = append(out, templated{joinPath(path, "body"), r.Body})
	if c := r.Checks; c != nil {
		cp := joinPath(path, "checks")
		if c.BodyContains != "" {
			out = append(out, templated{joinPath(cp, "body_contains"), c.BodyContains})
		}
		for _, k := range sortedKeys(c.JSONPath) {
			out = append(out, templated{joinPath(joinPath(cp, "json_path"), k), c.JSONPath[k]})
		}
	}
	return out
}

// webSocketTemplates returns the templated values of a websocket step at
// path: its URL, headers and message.
func webSocketTemplates(path string, w *WebSocket) []templated {
	out := []templated{{joinPath(path, "url"), w.URL}}
	for _, k := range sortedKeys(w.Headers) {
		out = append(out, templated{joinPath(joinPath(path, "headers"), k), w.Headers[k]})
	}
	if w.Send != nil {
		out = append(out, templated{joinPath(joinPath(path, "send"), "message"), w.Send.Message})
	}
	return out
}
