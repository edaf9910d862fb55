package plan

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// Template functions and their argument counts.
var templateFuncs = map[string]int{
	"now_ms": 0, "uuid": 0, "rand_int": 2, "vu": 0, "iter": 0, "region": 0, "env": 1, "data": 2, "var": 1,
	"seq": 0, // WebSocket send.message only: the message's number in its session
}

// TemplatePart is a piece of a parsed template: literal Text, or a call of
// Func with Args.
type TemplatePart struct {
	Text string
	Func string
	Args []string
}

// ParseTemplate splits s into literal text and {{func args}} calls:
// {{now_ms}}, {{uuid}}, {{rand_int 1 100}}, {{vu}}, {{iter}}, {{region}},
// {{env "NAME"}}, {{data "FEEDER" "column"}}, {{var "NAME"}} (a value an
// earlier step extracted), {{seq}}. Parse once and expand many times.
func ParseTemplate(s string) ([]TemplatePart, error) {
	var parts []TemplatePart
	for s != "" {
		i := strings.Index(s, "{{")
		if i < 0 {
			parts = append(parts, TemplatePart{Text: s})
			break
		}
		if i > 0 {
			parts = append(parts, TemplatePart{Text: s[:i]})
		}
		j := strings.Index(s[i:], "}}")
		if j < 0 {
			return nil, fmt.Errorf("template: unclosed {{ at %q", s[i:])
		}
		call := strings.Fields(s[i+2 : i+j])
		s = s[i+j+2:]
		if len(call) == 0 {
			return nil, fmt.Errorf("template: empty {{}}")
		}
		n, ok := templateFuncs[call[0]]
		if !ok {
			return nil, fmt.Errorf("template: unknown function %q (valid: %s)", call[0], strings.Join(sortedKeys(templateFuncs), ", "))
		}
		args := call[1:]
		if len(args) != n {
			return nil, fmt.Errorf("template: %s takes %d arguments, got %d", call[0], n, len(args))
		}
		switch call[0] {
		case "rand_int":
			a, err1 := strconv.ParseInt(args[0], 10, 64)
			b, err2 := strconv.ParseInt(args[1], 10, 64)
			if err1 != nil || err2 != nil || a > b {
				return nil, fmt.Errorf("template: rand_int wants two integers a <= b, got %q %q", args[0], args[1])
			}
		case "env", "var":
			name, err := strconv.Unquote(args[0])
			if err != nil || name == "" {
				return nil, fmt.Errorf("template: %s wants a quoted variable name, got %s", call[0], args[0])
			}
			args = []string{name}
		case "data":
			feeder, err1 := strconv.Unquote(args[0])
			column, err2 := strconv.Unquote(args[1])
			if err1 != nil || err2 != nil || feeder == "" || column == "" {
				return nil, fmt.Errorf("template: data wants a quoted feeder and column name, got %s %s", args[0], args[1])
			}
			args = []string{feeder, column}
		}
		parts = append(parts, TemplatePart{Func: call[0], Args: args})
	}
	return parts, nil
}

// placeholder expands a template with a neutral value per call, for
// validating the surrounding text (a templated URL must still parse).
func placeholder(parts []TemplatePart) string {
	var b strings.Builder
	for _, p := range parts {
		if p.Func == "" {
			b.WriteString(p.Text)
		} else {
			b.WriteString("0")
		}
	}
	return b.String()
}

// checkTemplate validates a templated value at path.
func checkTemplate(l *errorList, path, s string) []TemplatePart {
	parts, err := ParseTemplate(s)
	if err != nil {
		l.add(path, "%v", err)
	}
	checkNoSeq(l, path, parts)
	return parts
}

// checkNoSeq reports a {{seq}}, which only a WebSocket message may hold.
func checkNoSeq(l *errorList, path string, parts []TemplatePart) {
	for _, p := range parts {
		if p.Func == "seq" {
			l.add(path, "template: {{seq}} numbers WebSocket messages; it is allowed only in a websocket step's send.message")
			return
		}
	}
}

// checkRequestTemplates validates the templates of a request's URL,
// headers, body and checks; it returns the URL with placeholders for the
// URL check.
func checkRequestTemplates(l *errorList, path string, r *Request) (string, bool) {
	up := joinPath(path, "url")
	parts, err := ParseTemplate(r.URL)
	if err != nil {
		l.add(up, "%v", err)
	}
	checkNoSeq(l, up, parts)
	for _, t := range requestTemplates(path, r)[1:] { // the URL comes first
		checkTemplate(l, t.path, t.text)
	}
	return placeholder(parts), err == nil
}

// parseURL is url.Parse for validation of templated URLs.
func parseURL(s string) (*url.URL, error) { return url.Parse(s) }
