package httpclient

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	mrand "math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/surgeload/surge/plan"
)

// Vars are what templates expand from, per iteration.
type Vars struct {
	VU, Iter int64
	Region   string
	Now      func() time.Time
	Rand     *mrand.Rand
	// Env looks up {{env "NAME"}}; nil: every variable is unset.
	Env func(string) (string, bool)
	// Data looks up {{data "FEEDER" "column"}} in the iteration's row of the
	// feeder; nil: no feeder has rows.
	Data func(feeder, column string) (string, bool)
	// Var looks up {{var "NAME"}}, a value an earlier step extracted; nil:
	// none is set.
	Var func(name string) (string, bool)
}

// Template is a compiled template: expand many times without parsing.
type Template struct {
	parts  []plan.TemplatePart
	text   string // the whole text when there are no calls
	static bool
	env    bool // uses {{env}}
	lo, hi []int64
}

// CompileTemplate parses s once.
func CompileTemplate(s string) (*Template, error) {
	parts, err := plan.ParseTemplate(s)
	if err != nil {
		return nil, err
	}
	t := &Template{parts: parts, text: s, static: true}
	t.lo, t.hi = make([]int64, len(parts)), make([]int64, len(parts))
	for i, p := range parts {
		if p.Func == "" {
			continue
		}
		t.static = false
		switch p.Func {
		case "env":
			t.env = true
		case "rand_int":
			t.lo[i], _ = strconv.ParseInt(p.Args[0], 10, 64)
			t.hi[i], _ = strconv.ParseInt(p.Args[1], 10, 64)
		}
	}
	return t, nil
}

// Static reports whether the template has no calls.
func (t *Template) Static() bool { return t.static }

// Text is the template as written.
func (t *Template) Text() string { return t.text }

// Expand appends the expansion to dst. A {{env}} variable that is not set
// is an error naming the variable, never its value.
func (t *Template) Expand(dst []byte, v *Vars) ([]byte, error) {
	if t.static {
		return append(dst, t.text...), nil
	}
	for i, p := range t.parts {
		switch p.Func {
		case "":
			dst = append(dst, p.Text...)
		case "now_ms":
			now := time.Now
			if v.Now != nil {
				now = v.Now
			}
			dst = strconv.AppendInt(dst, now().UnixMilli(), 10)
		case "uuid":
			dst = appendUUID(dst)
		case "rand_int":
			n := t.lo[i]
			if span := t.hi[i] - t.lo[i] + 1; span > 0 && v.Rand != nil {
				n += v.Rand.Int64N(span)
			}
			dst = strconv.AppendInt(dst, n, 10)
		case "vu":
			dst = strconv.AppendInt(dst, v.VU, 10)
		case "iter":
			dst = strconv.AppendInt(dst, v.Iter, 10)
		case "region":
			dst = append(dst, v.Region...)
		case "env":
			var val string
			ok := false
			if v.Env != nil {
				val, ok = v.Env(p.Args[0])
			}
			if !ok {
				return dst, fmt.Errorf("template: environment variable %s is not set on this agent", p.Args[0])
			}
			dst = append(dst, val...)
		case "var":
			var val string
			ok := false
			if v.Var != nil {
				val, ok = v.Var(p.Args[0])
			}
			if !ok {
				return dst, fmt.Errorf("template: no value %q was extracted before this request", p.Args[0])
			}
			dst = append(dst, val...)
		case "data":
			var val string
			ok := false
			if v.Data != nil {
				val, ok = v.Data(p.Args[0], p.Args[1])
			}
			if !ok {
				return dst, fmt.Errorf("template: feeder %q has no column %q on this agent", p.Args[0], p.Args[1])
			}
			dst = append(dst, val...)
		}
	}
	return dst, nil
}

// appendUUID appends a random (version 4) UUID.
func appendUUID(dst []byte) []byte {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:], b[10:])
	return append(dst, s[:]...)
}

// redact replaces every secret in s by "[redacted]".
func redact(s string, secrets []string) string {
	for _, x := range secrets {
		if x != "" {
			s = strings.ReplaceAll(s, x, "[redacted]")
		}
	}
	return s
}
