package plan

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const feederPlan = `name: f
data:
  users: {file: users.%s, mode: %s}
scenarios:
  s:
    executor: per-vu-iterations
    vus: 2
    requests:
      - url: 'http://127.0.0.1:1/u/{{data "users" "%s"}}'
`

func feederPlanFmt(ext, mode, column string) string {
	s := strings.Replace(feederPlan, "%s", ext, 1)
	s = strings.Replace(s, "%s", mode, 1)
	return strings.Replace(s, "%s", column, 1)
}

func TestParseWithDataCSVAndJSON(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"users.csv":  "name,pass\nalice,a1\n\"b, ob\",b2\n",
		"users.json": `[{"name": "alice", "n": 1, "ok": true}, {"name": "bob", "n": 2.5, "ok": null}]`,
	})
	p, out, err := ParseWithData("plan.yaml", []byte(feederPlanFmt("csv", "random", "pass")), dir)
	if err != nil {
		t.Fatal(err)
	}
	f := p.Data["users"]
	if f.Mode != FeedRandom || f.File != "" || strings.Join(f.Inline.Columns, ",") != "name,pass" ||
		len(f.Inline.Rows) != 2 || f.Inline.Rows[1][0] != "b, ob" {
		t.Fatalf("feeder = %+v %+v", f, f.Inline)
	}
	// The inlined YAML parses on its own (as the controller parses it) to
	// the same canonical plan.
	q, err := Parse("plan.yaml", out)
	if err != nil {
		t.Fatalf("inlined YAML: %v\n%s", err, out)
	}
	a, _ := MarshalCanonical(p)
	b, _ := MarshalCanonical(q)
	if string(a) != string(b) {
		t.Fatalf("inlined plan differs:\n%s\n%s", a, b)
	}
	if _, err := FromJSON(a); err != nil {
		t.Fatal(err)
	}
	if _, err := Split(q, []AgentInfo{{ID: "a"}}); err != nil {
		t.Fatal(err)
	}

	p, _, err = ParseWithData("plan.yaml", []byte(feederPlanFmt("json", "sequential", "ok")), dir)
	if err != nil {
		t.Fatal(err)
	}
	r := p.Data["users"].Inline
	if strings.Join(r.Columns, ",") != "n,name,ok" || strings.Join(r.Rows[0], ",") != "1,alice,true" || strings.Join(r.Rows[1], ",") != "2.5,bob," {
		t.Fatalf("json rows = %+v", r)
	}
}

func TestParseWithDataErrors(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"users.csv":  "name,pass\nalice,a1\nbob\n",
		"good.csv":   "name\nx\n",
		"users.json": "[{\"name\": \"a\"},\n {\"name\": {\"x\": 1}}]",
	})
	for _, tc := range []struct {
		name, src, want string
	}{
		{"missing file", strings.Replace(feederPlanFmt("csv", "random", "name"), "users.csv", "nope.csv", 1),
			"plan.yaml:3:11: data.users.file: read data file: open "},
		{"malformed csv", feederPlanFmt("csv", "random", "name"),
			"users.csv:3:1: invalid CSV: wrong number of fields"},
		{"nested json", feederPlanFmt("json", "random", "name"),
			`users.json: element 1: key "name": want a string, number, boolean or null, got a nested value`},
		{"unknown column", strings.Replace(feederPlanFmt("csv", "random", "nope"), "users.csv", "good.csv", 1),
			`plan.yaml:9:14: scenarios.s.requests[0].url: template: feeder "users" has no column "nope" (columns: name)`},
		{"unknown feeder", strings.Replace(strings.Replace(feederPlanFmt("csv", "random", "name"), "users.csv", "good.csv", 1), `"users" "name"`, `"people" "name"`, 1),
			`plan.yaml:9:14: scenarios.s.requests[0].url: template: unknown feeder "people" (declare it under data)`},
		{"bad mode", strings.Replace(feederPlanFmt("csv", "shuffle", "name"), "users.csv", "good.csv", 1),
			`plan.yaml:3:33: data.users.mode: unknown mode "shuffle"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, _, err := ParseWithData("plan.yaml", []byte(tc.src), dir)
			if err == nil {
				t.Fatalf("no error: %+v", p)
			}
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("error %T is not a *plan.Error: %v", err, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v\nwant it to contain %q", err, tc.want)
			}
		})
	}
}

func TestParseInlineData(t *testing.T) {
	src := `name: f
data:
  users:
    inline: {columns: [a, b], rows: [[1, 2], [3]]}
scenarios:
  s:
    executor: per-vu-iterations
    vus: 1
    requests: [{url: 'http://127.0.0.1:1/{{data "users" "c"}}'}]
`
	_, err := Parse("p.yaml", []byte(src))
	for _, want := range []string{
		"p.yaml:4:46: data.users.inline.rows[1]: has 1 values, want one per column (2)",
		`p.yaml:9:22: scenarios.s.requests[0].url: template: feeder "users" has no column "c"`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error = %v\nwant it to contain %q", err, want)
		}
	}
	// A file: feeder that was never read parses (columns unknown) but is
	// not split: its rows were not shipped.
	p, err := Parse("p.yaml", []byte(strings.Replace(feederPlanFmt("csv", "random", "x"), "users.csv", "u.csv", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Split(p, []AgentInfo{{ID: "a"}}); err == nil || !strings.Contains(err.Error(), "data.users: file u.csv was not shipped") {
		t.Fatalf("Split error = %v", err)
	}
}

func TestFeederRow(t *testing.T) {
	var seq, uniq []int
	for i := range 5 {
		seq = append(seq, FeederRow(FeedSequential, 3, uint64(i), 1, 1, 0))
		uniq = append(uniq, FeederRow(FeedUniquePerVU, 3, uint64(i), int64(i+1), 0, 0))
	}
	if got := intsString(seq); got != "1,2,0,1,2" {
		t.Errorf("sequential from offset 1 = %s", got)
	}
	if got := intsString(uniq); got != "0,1,2,0,1" {
		t.Errorf("unique-per-vu for VUs 1..5 = %s", got)
	}
	if FeederRow(FeedRandom, 3, 0, 1, 2, 2) != 2 {
		t.Error("random does not take the draw")
	}
}

func intsString(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = string(rune('0' + x))
	}
	return strings.Join(s, ",")
}
