package plan

import (
	"strings"
	"testing"
)

const baseURLPlan = `name: paths
base_url: http://127.0.0.1:9000/
scenarios:
  s:
    executor: constant-vus
    vus: 1
    duration: 1s
    requests:
      - url: /a?x={{uuid}}
      - url: http://127.0.0.2:7000/abs
  f:
    executor: constant-vus
    vus: 1
    duration: 1s
    flows:
      main:
        steps:
          - {method: post, url: /b}
          - batch: [{url: /c}]
          - websocket: {url: /ws, hold: 1s}
`

// urls lists a plan's request and websocket URLs and names, in order.
func urls(p *Plan) (got, names []string) {
	for _, sc := range []string{"f", "s"} {
		s := p.Scenarios[sc]
		for _, r := range s.allRequests() {
			got, names = append(got, r.URL), append(names, r.Name)
		}
		for _, f := range s.Flows {
			for _, st := range f.Steps {
				if st.WebSocket != nil {
					got, names = append(got, st.WebSocket.URL), append(names, st.WebSocket.Name)
				}
			}
		}
	}
	return got, names
}

func TestBaseURLResolves(t *testing.T) {
	for _, tc := range []struct {
		name, override, http, ws string
	}{
		{"plan's own", "", "http://127.0.0.1:9000", "ws://127.0.0.1:9000"},
		{"overridden", "https://example.test:8443/v1", "https://example.test:8443/v1", "wss://example.test:8443/v1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, out, err := ParseFile("paths.yaml", []byte(baseURLPlan), Options{BaseURL: tc.override})
			if err != nil {
				t.Fatal(err)
			}
			want := []string{tc.http + "/b", tc.http + "/c", tc.ws + "/ws", tc.http + "/a?x={{uuid}}", "http://127.0.0.2:7000/abs"}
			got, names := urls(p)
			if strings.Join(got, " ") != strings.Join(want, " ") {
				t.Errorf("URLs\n got %q\nwant %q", got, want)
			}
			// Names keep the path as written: the same whatever the base.
			wantNames := []string{"POST /b", "GET /c", "/ws", "GET /a?x={{uuid}}", "GET http://127.0.0.2:7000/abs"}
			if strings.Join(names, " ") != strings.Join(wantNames, " ") {
				t.Errorf("names\n got %q\nwant %q", names, wantNames)
			}
			// What is submitted to a controller carries the override and
			// resolves to the same URLs there.
			q, err := Parse("paths.yaml", out)
			if err != nil {
				t.Fatalf("submitted YAML: %v\n%s", err, out)
			}
			if g, _ := urls(q); strings.Join(g, " ") != strings.Join(want, " ") {
				t.Errorf("submitted YAML resolves to %q, want %q\n%s", g, want, out)
			}
			// The agents' canonical JSON is already absolute.
			b, err := MarshalCanonical(p)
			if err != nil {
				t.Fatal(err)
			}
			r, err := FromJSON(b)
			if err != nil {
				t.Fatal(err)
			}
			if g, _ := urls(r); strings.Join(g, " ") != strings.Join(want, " ") {
				t.Errorf("canonical JSON resolves to %q, want %q", g, want)
			}
		})
	}
}

func TestBaseURLOverrideCompletesAPlanWithout(t *testing.T) {
	src := strings.Replace(baseURLPlan, "base_url: http://127.0.0.1:9000/\n", "", 1)
	if _, err := Parse("paths.yaml", []byte(src)); err == nil || !strings.Contains(err.Error(), "pass --base-url") {
		t.Fatalf("a plan of paths without base_url: got %v, want an error naming --base-url", err)
	}
	p, out, err := ParseFile("paths.yaml", []byte(src), Options{BaseURL: "http://127.0.0.1:9001"})
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Scenarios["s"].Requests[0].URL; got != "http://127.0.0.1:9001/a?x={{uuid}}" {
		t.Errorf("URL %q", got)
	}
	if !strings.Contains(string(out), "base_url: http://127.0.0.1:9001\n") {
		t.Errorf("submitted YAML has no base_url:\n%s", out)
	}
	set, err := SetBaseURL([]byte(src), "http://127.0.0.1:9002")
	if err != nil {
		t.Fatal(err)
	}
	if q, err := Parse("paths.yaml", set); err != nil || q.BaseURL != "http://127.0.0.1:9002" {
		t.Fatalf("SetBaseURL: %v\n%s", err, set)
	}
}

func TestCheckBaseURL(t *testing.T) {
	for s, want := range map[string]string{
		"http://127.0.0.1:8080":       "",
		"https://h/api/":              "",
		"127.0.0.1:8080":              "scheme http or https",
		"ws://h":                      "scheme http or https",
		"http://":                     "no host",
		"http://h/?a=1":               "query or fragment",
		"http://h/#x":                 "query or fragment",
		`{{env "BASE"}}`:              "no templates",
		"http://h:bad":                "invalid URL",
		"http://127.0.0.1:8080/x y\n": "invalid URL",
	} {
		err := CheckBaseURL(s)
		switch {
		case want == "" && err != nil:
			t.Errorf("%q: %v", s, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("%q: got %v, want %q", s, err, want)
		}
	}
}
