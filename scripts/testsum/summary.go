package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
)

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Action     string
	Package    string
	Test       string
	Output     string
	ImportPath string
}

type testID struct{ pkg, test string }

// summary keeps each running test's output until it ends: printed if it
// failed, reduced to its reason if it skipped, dropped if it passed.
type summary struct {
	w              io.Writer
	out            map[testID][]string
	passed, failed int
	pkgFailed      int
	skipped        []string
	buildOut       map[string][]string
}

func newSummary(w io.Writer) *summary {
	return &summary{w: w, out: map[testID][]string{}, buildOut: map[string][]string{}}
}

func (s *summary) read(r io.Reader) error {
	return scan(r, s.event, func(line string) { fmt.Fprintln(s.w, line) })
}

func (s *summary) event(e event) {
	id := testID{e.Package, e.Test}
	switch {
	case e.Action == "build-output":
		s.buildOut[e.ImportPath] = append(s.buildOut[e.ImportPath], e.Output)
	case e.Action == "build-fail":
		fmt.Fprint(s.w, strings.Join(s.buildOut[e.ImportPath], ""))
		s.pkgFailed++
	case e.Test == "":
		s.pkgEvent(e)
	case e.Action == "output":
		s.out[id] = append(s.out[id], e.Output)
	case e.Action == "pass":
		s.passed++
		delete(s.out, id)
	case e.Action == "fail":
		s.failed++
		s.print(s.out[id])
		delete(s.out, id)
	case e.Action == "skip":
		line := fmt.Sprintf("SKIP %s %s: %s", e.Package, e.Test, reason(s.out[id]))
		fmt.Fprintln(s.w, line)
		s.skipped = append(s.skipped, line)
		delete(s.out, id)
	}
}

// pkgEvent prints a package's own output (its ok/FAIL line, a panic
// outside any test); a failed package also prints the output of tests
// that never ended (a timeout's stacks).
func (s *summary) pkgEvent(e event) {
	switch e.Action {
	case "output":
		if e.Output != "PASS\n" {
			fmt.Fprint(s.w, e.Output)
		}
	case "fail":
		s.pkgFailed++
		var left []testID
		for id := range s.out {
			if id.pkg == e.Package {
				left = append(left, id)
			}
		}
		sort.Slice(left, func(i, j int) bool { return left[i].test < left[j].test })
		for _, id := range left {
			s.print(s.out[id])
			delete(s.out, id)
		}
	}
}

func (s *summary) print(lines []string) {
	for _, l := range lines {
		if !progress(l) {
			fmt.Fprint(s.w, l)
		}
	}
}

// progress: the === RUN/PAUSE/CONT/NAME lines of -v, noise in a summary.
func progress(l string) bool {
	return strings.HasPrefix(strings.TrimLeft(l, " "), "=== ")
}

// reason is a skipped test's output without its progress and --- SKIP
// lines, on one line.
func reason(lines []string) string {
	var parts []string
	for _, l := range lines {
		t := strings.TrimSpace(l)
		if t == "" || progress(l) || strings.HasPrefix(t, "--- SKIP") {
			continue
		}
		parts = append(parts, t)
	}
	if len(parts) == 0 {
		return "(no reason given)"
	}
	return strings.Join(parts, " ")
}

func (s *summary) finish() {
	fmt.Fprintf(s.w, "tests: %d passed, %d failed, %d skipped\n", s.passed, s.failed, len(s.skipped))
}
