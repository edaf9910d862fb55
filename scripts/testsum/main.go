// Command testsum reads `go test -json` on stdin and prints what plain `go
// test` prints (each package's result, each failed test's output), plus a
// line for every skipped test with its reason and, at the end, the count
// of passed, failed and skipped tests. -skips FILE appends one line per
// skipped test to FILE, so make test can total skips over several runs.
// It exits 1 when a test or build failed.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
)

func main() {
	skips := flag.String("skips", "", "append one line per skipped test to this file")
	flag.Parse()
	s := newSummary(os.Stdout)
	if err := s.read(os.Stdin); err != nil {
		fmt.Fprintf(os.Stderr, "testsum: %v\n", err)
		os.Exit(2)
	}
	s.finish()
	if *skips != "" {
		if err := appendLines(*skips, s.skipped); err != nil {
			fmt.Fprintf(os.Stderr, "testsum: %v\n", err)
			os.Exit(2)
		}
	}
	if s.failed > 0 || s.pkgFailed > 0 {
		os.Exit(1)
	}
}

func appendLines(path string, lines []string) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("skips file: %w", err)
	}
	for _, l := range lines {
		fmt.Fprintln(f, l)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("skips file: %w", err)
	}
	return nil
}

// scan reads one JSON event a line; a line that is not JSON (a go command
// message) is printed as it is.
func scan(r io.Reader, each func(event), raw func(string)) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil || e.Action == "" {
			raw(sc.Text())
			continue
		}
		each(e)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read: %w", err)
	}
	return nil
}
