package plan

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Error is one problem in a plan, with its position.
type Error struct {
	File string
	Line int    // 1-based; 0 when unknown (plans decoded from JSON)
	Col  int    // 1-based; 0 when unknown (YAML syntax errors carry only a line)
	Path string // e.g. scenarios.burst.rate
	Msg  string
	// Override is the command-line override the problem is in (--set
	// PATH=VALUE), in place of a line.
	Override string
}

// Error renders "file:line:col: path: message", leaving out the parts that
// are unknown.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(e.Line))
		if e.Col > 0 {
			b.WriteByte(':')
			b.WriteString(strconv.Itoa(e.Col))
		}
	}
	b.WriteString(": ")
	if e.Override != "" {
		b.WriteString(e.Override)
		b.WriteString(": ")
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// pos is a 1-based line and column.
type pos struct{ line, col int }

// positions indexes the YAML source by dotted path: where each value and
// each mapping key starts. It is empty for plans decoded from JSON.
type positions struct {
	val map[string]pos
	key map[string]pos
	// overrides name the command-line overrides: a position on line -i
	// is in override i-1 (override.go).
	overrides []string
}

func newPositions() *positions {
	return &positions{val: map[string]pos{}, key: map[string]pos{}}
}

// has reports whether path was written in the source.
func (p *positions) has(path string) bool {
	if p == nil {
		return false
	}
	_, ok := p.val[path]
	return ok
}

// at finds the position of path's value, or of its nearest written ancestor
// (a missing key is reported where its parent mapping starts).
func (p *positions) at(path string) pos {
	if p == nil {
		return pos{}
	}
	for {
		if q, ok := p.val[path]; ok {
			return q
		}
		parent, ok := parentPath(path)
		if !ok {
			return pos{}
		}
		path = parent
	}
}

// keyAt finds the position of the mapping key that introduces path, falling
// back to at(path).
func (p *positions) keyAt(path string) pos {
	if p != nil {
		if q, ok := p.key[path]; ok {
			return q
		}
	}
	return p.at(path)
}

// parentPath strips the last ".name" or "[i]" of path.
func parentPath(path string) (string, bool) {
	if path == "" {
		return "", false
	}
	if strings.HasSuffix(path, "]") {
		if i := strings.LastIndexByte(path, '['); i >= 0 {
			return path[:i], true
		}
	}
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		return path[:i], true
	}
	return "", true
}

// joinPath appends a mapping key to path.
func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// indexPath appends a sequence index to path.
func indexPath(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}

// errorList collects every problem of a plan.
type errorList struct {
	file string
	pos  *positions
	errs []error
	// skip holds paths already reported: problems at or under them are
	// consequences, not news, and are left out.
	skip map[string]bool
}

// skipped reports whether path or one of its ancestors is in l.skip.
func (l *errorList) skipped(path string) bool {
	if len(l.skip) == 0 {
		return false
	}
	for {
		if l.skip[path] {
			return true
		}
		parent, ok := parentPath(path)
		if !ok {
			return false
		}
		path = parent
	}
}

// skippedUnder reports whether a path under path is in l.skip: one of
// its keys was reported.
func (l *errorList) skippedUnder(path string) bool {
	for p := range l.skip {
		if strings.HasPrefix(p, path+".") {
			return true
		}
	}
	return false
}

// flatten lists the errors of an errors.Join tree.
func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	if err == nil {
		return nil
	}
	return []error{err}
}

// add records a problem with path's value.
func (l *errorList) add(path, format string, args ...any) {
	l.addAt(l.pos.at(path), path, fmt.Sprintf(format, args...))
}

// addKey records a problem with the key that introduces path.
func (l *errorList) addKey(path, format string, args ...any) {
	l.addAt(l.pos.keyAt(path), path, fmt.Sprintf(format, args...))
}

func (l *errorList) addAt(p pos, path, msg string) {
	if l.skipped(path) {
		return
	}
	e := &Error{File: l.file, Line: p.line, Col: p.col, Path: path, Msg: msg}
	if i := -p.line - 1; i >= 0 && l.pos != nil && i < len(l.pos.overrides) {
		e.Line, e.Col, e.Override = 0, 0, l.pos.overrides[i]
	}
	l.errs = append(l.errs, e)
}

// err returns nil, the single *Error, or an errors.Join of them all.
func (l *errorList) err() error {
	sort.SliceStable(l.errs, func(i, j int) bool {
		a, aok := l.errs[i].(*Error)
		b, bok := l.errs[j].(*Error)
		if !aok || !bok || a.File != b.File {
			return false // other files' errors (data files) keep their place
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
	switch len(l.errs) {
	case 0:
		return nil
	case 1:
		return l.errs[0]
	}
	return errors.Join(l.errs...)
}
