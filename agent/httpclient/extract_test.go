package httpclient

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/surgeload/surge/plan"
)

func TestJSONFind(t *testing.T) {
	doc := []byte(` {"a": {"b": [10, {"c": "x\"y"}, 12345678901234567890]}, "esc\u0061ped": true,
		"skip": {"deep": [[1, "]"], {"}": 2}]}, "s": "plain", "n": null, "o": {"k": [1, 2]}} trailing garbage`)
	for _, tc := range []struct{ path, want string }{
		{"$.a.b.0", "10"},
		{"a.b[1].c", `x"y`},
		{"$.a.b[2]", "12345678901234567890"},
		{"escaped", "true"},
		{"s", "plain"},
		{"n", "null"},
		{"o", `{"k": [1, 2]}`},
	} {
		raw, ok := jsonFind(doc, splitJSONPath(tc.path))
		if got := jsonRawText(raw); !ok || got != tc.want {
			t.Errorf("%s: %q %v, want %q", tc.path, got, ok, tc.want)
		}
	}
	for _, path := range []string{"missing", "a.b.3", "a.b.x", "s.t", "a.b.-1"} {
		if raw, ok := jsonFind(doc, splitJSONPath(path)); ok {
			t.Errorf("%s: found %q, want nothing", path, raw)
		}
	}
	for _, bad := range []string{``, `{`, `{"a" 1}`, `{"a": "unterminated`, `[1 2]`} {
		if raw, ok := jsonFind([]byte(bad), splitJSONPath("a")); ok {
			t.Errorf("%q: found %q in malformed JSON", bad, raw)
		}
	}
}

// Each kind of extraction over HTTP/1.1 and HTTP/2, a default, a value not
// found, and a request that failed.
func TestExtract(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Request-Id", "req-7")
		http.SetCookie(w, &http.Cookie{Name: "session", Value: "s-42", Path: "/"})
		_, _ = fmt.Fprint(w, `{"user": {"id": 9001, "name": "ada"}, "html": "<a href=/orders/o17>"}`)
	})
	def := "none"
	ex := map[string]*plan.Extract{
		"id":       {JSON: "$.user.id"},
		"order":    {Regex: `/orders/(o\d+)`},
		"rid":      {Header: "x-request-id"},
		"session":  {Cookie: "session"},
		"fallback": {JSON: "$.nope", Default: &def},
	}
	want := "fallback=none id=9001 order=o17 rid=req-7 session=s-42 "
	for _, mode := range []string{"", "h2"} {
		s := newServer(t, mode, h)
		conn := &plan.Connection{TLS: &plan.TLS{InsecureSkipVerify: true}}
		if mode == "h2" {
			conn.HTTP2 = plan.HTTP2H2
		}
		sess := newClient(t, Options{Conn: conn}).Session()
		req := prep(t, plan.Request{Name: "r", URL: s.URL, Extract: ex})
		res := sess.Do(context.Background(), req, nil, time.Now)
		xs, ok := req.Extract(&res, nil)
		got := ""
		for _, x := range xs {
			got += x.Name + "=" + x.Value + " "
		}
		if !ok || got != want {
			t.Errorf("%q: extracted %q (ok %v), want %q", mode, got, ok, want)
		}
		missing := prep(t, plan.Request{Name: "m", URL: s.URL, Extract: map[string]*plan.Extract{"x": {Header: "X-Absent"}}})
		res = sess.Do(context.Background(), missing, nil, time.Now)
		if xs, ok := missing.Extract(&res, nil); ok || len(xs) != 0 {
			t.Errorf("%q: a header the response lacks extracted %v (ok %v)", mode, xs, ok)
		}
		sess.Close()
	}
	failed := prep(t, plan.Request{Name: "f", URL: "http://127.0.0.1:1/", Extract: ex})
	res := newClient(t, Options{}).Do(context.Background(), failed, time.Now)
	if xs, ok := failed.Extract(&res, nil); ok || len(xs) != 1 || xs[0].Value != "none" {
		t.Errorf("a failed request extracted %v (ok %v), want only the default", xs, ok)
	}
}
