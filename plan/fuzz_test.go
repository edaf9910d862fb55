package plan_test

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/surgeload/surge/plan"
)

// fuzzFile is the file name the fuzzed plans are parsed under.
const fuzzFile = "fuzz.yaml"

// positioned matches an error line that starts with the file and a line.
var positioned = regexp.MustCompile(`^` + regexp.QuoteMeta(fuzzFile) + `:[1-9][0-9]*:`)

// FuzzParse: Parse never panics, and every problem it reports carries
// file:line — each *plan.Error has a line and each line of the message
// starts with "fuzz.yaml:N:". A plan it accepts survives the wire trip unchanged.
func FuzzParse(f *testing.F) {
	seeds, err := filepath.Glob(filepath.Join("testdata", "*.yaml"))
	if err != nil {
		f.Fatal(err)
	}
	for _, p := range seeds {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(""))
	f.Add([]byte("name: x\n---\nname: y\n"))
	f.Add([]byte("\"")) // once reported without a line
	f.Add([]byte("scenarios: {a: {executor: ramping-vus, stages: [{duration: 1s, target: 2}], requests: [{url: 'http://127.0.0.1/{{vu}}'}]}}\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		p, err := plan.Parse(fuzzFile, src)
		if err != nil {
			if p != nil {
				t.Fatalf("Parse returned a plan and an error: %v", err)
			}
			var pe *plan.Error
			if !errors.As(err, &pe) {
				t.Fatalf("error %T is not a *plan.Error: %v", err, err)
			}
			for line := range strings.SplitSeq(err.Error(), "\n") {
				if !positioned.MatchString(line) {
					t.Fatalf("error line without file:line: %q (in %q)", line, err)
				}
			}
			return
		}
		b, err := plan.MarshalCanonical(p)
		if err != nil {
			t.Fatalf("a parsed plan does not marshal: %v", err)
		}
		back, err := plan.FromJSON(b)
		if err != nil {
			t.Fatalf("a parsed plan does not survive the wire: %v\n%s", err, b)
		}
		if !reflect.DeepEqual(back, p) {
			again, _ := plan.MarshalCanonical(back)
			t.Fatalf("the wire trip changed the plan:\nsent %s\ngot  %s", b, again)
		}
	})
}
