package plan

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// planErrors flattens err into its *Error values.
func planErrors(t *testing.T, err error) []*Error {
	t.Helper()
	var out []*Error
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
			return
		}
		var pe *Error
		if !errors.As(e, &pe) {
			t.Fatalf("error %v (%T) is not a *plan.Error", e, e)
		}
		out = append(out, pe)
	}
	walk(err)
	return out
}

func TestParseGood(t *testing.T) {
	files, err := filepath.Glob("testdata/*.good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	examples, err := filepath.Glob("../examples/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, examples...)
	if len(files) < 4 {
		t.Fatalf("found only %d good files", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			// Data files are relative to the plan file, as `surge run` reads them.
			p, _, err := ParseWithData(filepath.Base(f), src, filepath.Dir(f))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if _, err := p.ThresholdSpecs(); err != nil {
				t.Fatalf("ThresholdSpecs: %v", err)
			}
			b, err := MarshalCanonical(p)
			if err != nil {
				t.Fatal(err)
			}
			q, err := FromJSON(b)
			if err != nil {
				t.Fatalf("FromJSON: %v\n%s", err, b)
			}
			b2, err := MarshalCanonical(q)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b, b2) {
				t.Fatalf("canonical JSON changed on round trip:\n%s\n%s", b, b2)
			}
			if _, err := Split(p, []AgentInfo{{ID: "a", Region: "us-east"}, {ID: "b", Region: "eu-west"}, {ID: "c", Region: "ap-south"}}); err != nil {
				t.Fatalf("Split: %v", err)
			}
		})
	}
}

// TestParseBad checks testdata/NAME.bad.yaml against NAME.bad.err: one
// expected error per line, each a substring of one reported error, in order.
func TestParseBad(t *testing.T) {
	files, err := filepath.Glob("testdata/*.bad.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 8 {
		t.Fatalf("found only %d bad files", len(files))
	}
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			wantText, err := os.ReadFile(strings.TrimSuffix(f, ".yaml") + ".err")
			if err != nil {
				t.Fatal(err)
			}
			want := strings.Split(strings.TrimSpace(string(wantText)), "\n")
			p, err := Parse(name, src)
			if err == nil {
				t.Fatalf("Parse succeeded: %+v", p)
			}
			got := planErrors(t, err)
			if len(got) != len(want) {
				t.Fatalf("got %d errors, want %d:\n%v", len(got), len(want), err)
			}
			for i, e := range got {
				if e.File != name || e.Line == 0 {
					t.Errorf("error %q has no position", e)
				}
				if !strings.Contains(e.Error(), want[i]) {
					t.Errorf("error %d:\n got %s\nwant %s", i, e, want[i])
				}
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	src := `
scenarios:
  s:
    executor: ramping-arrival-rate
    start_rate: 10
    stages: [{duration: 10s, target: 250}, {duration: 10s, target: 0}]
    requests:
      - url: http://h/{{vu}}
        method: post
`
	p, err := Parse("dir/my-plan.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	s := p.Scenarios["s"]
	r := s.Requests[0]
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"name", p.Name, "my-plan"},
		{"interval", p.Interval, DefaultInterval},
		{"time_unit", s.TimeUnit, DefaultTimeUnit},
		{"graceful_stop", s.GracefulStop, DefaultGracefulStop},
		{"pre_allocated_vus", s.PreAllocatedVUs, int64(250)},
		{"max_vus", s.MaxVUs, int64(250)},
		{"method", r.Method, "POST"},
		{"request name", r.Name, "POST http://h/{{vu}}"},
		{"timeout", r.Timeout, DefaultRequestTimeout},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestErrorFormat(t *testing.T) {
	for _, c := range []struct {
		e    Error
		want string
	}{
		{Error{File: "p.yaml", Line: 12, Col: 9, Path: "scenarios.burst.stages[2].target", Msg: "must be >= 0"}, "p.yaml:12:9: scenarios.burst.stages[2].target: must be >= 0"},
		{Error{File: "p.yaml", Line: 3, Msg: "invalid YAML: x"}, "p.yaml:3: invalid YAML: x"},
		{Error{File: "plan.json", Path: "name", Msg: "required"}, "plan.json: name: required"},
	} {
		if got := c.e.Error(); got != c.want {
			t.Errorf("got %q, want %q", got, c.want)
		}
	}
}

func TestFromJSONInvalid(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`{"name":"x","scenarios":{"s":{"executor":"constant-vus","vus":0,"duration":"1s","graceful_stop":"0s","requests":[{"url":"http://h/"}]}}}`, "plan.json: scenarios.s.vus: must be >= 1"},
		{`{"name":"x","bogus":1}`, `plan.json: json: unknown field "bogus"`},
		{`{"name":"x","interval":"1 s"}`, `invalid duration "1 s"`},
		{`{"name":"x","scenarios":{"s":{"executor":"constant-vus","vus":1,"duration":"1s","graceful_stop":"0s","requests":[{"url":"http://h/"}]}},"thresholds":{"iterations":["p(9)<1"]}}`, `thresholds.iterations[0]: aggregation "p" does not apply`},
	} {
		_, err := FromJSON([]byte(c.in))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("FromJSON(%s) = %v, want %q", c.in, err, c.want)
			continue
		}
		for _, e := range planErrors(t, err) {
			if e.Line != 0 || e.File != "plan.json" {
				t.Errorf("error %q: want file plan.json without position", e)
			}
		}
	}
}

func TestGracefulStopZeroSurvivesJSON(t *testing.T) {
	src := "scenarios:\n  s:\n    executor: constant-vus\n    vus: 1\n    duration: 1s\n    graceful_stop: 0s\n    requests: [{url: 'http://h/'}]\n"
	p, err := Parse("p.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	b, err := MarshalCanonical(p)
	if err != nil {
		t.Fatal(err)
	}
	q, err := FromJSON(b)
	if err != nil {
		t.Fatal(err)
	}
	if q.Scenarios["s"].GracefulStop != 0 {
		t.Fatalf("graceful_stop = %s after JSON round trip, want 0s", q.Scenarios["s"].GracefulStop)
	}
	if !strings.Contains(string(b), `"duration":"1s"`) {
		t.Fatalf("durations are not Go duration text in %s", b)
	}
}

func TestPlanTimes(t *testing.T) {
	src, err := os.ReadFile("testdata/full.good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p, err := Parse("full.good.yaml", src)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := p.ScenarioNames(), []string{"burst", "steady", "users"}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("ScenarioNames = %v, want %v", got, want)
	}
	if got, want := p.TotalDuration(), 130*time.Second; got != want {
		t.Errorf("TotalDuration = %s, want %s", got, want)
	}
}
