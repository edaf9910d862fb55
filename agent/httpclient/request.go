package httpclient

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/surgeload/surge/plan"
)

// Request is a plan request prepared for sending.
type Request struct {
	Name    string
	Method  string
	URL     *url.URL
	Header  http.Header
	Body    string
	Timeout time.Duration
	// BytesOut is the request's size on the wire as HTTP/1.1 (request
	// line, headers, body); for templated requests, before expansion.
	BytesOut int64
	// Templates, compiled once; nil when the value has no {{...}}.
	urlT, bodyT *Template
	headerT     map[string]*Template
	usesEnv     bool
	// Checks on the response, their texts compiled; needBody when a check
	// or an extraction reads the body.
	Checks    *plan.Checks
	checkBody *Template
	jsonPaths []jsonPathCheck
	needBody  bool
	// extracts take values from the response (see extract.go); keep and
	// keepJar say which response headers to keep for them, keepJar with
	// Set-Cookie for the session's cookie jar.
	extracts      []extractor
	keep, keepJar *keepSpec
	// The static request, serialized once: where it goes and its bytes
	// with and without "Connection: close" (nil when templated).
	rt              route
	rtErr           error
	hdrs            []hdr // Header sorted, without the ones surge writes
	wire, wireClose []byte
}

// hdr is one header line.
type hdr struct{ k, v string }

// route is where a request goes.
type route struct {
	key  string // scheme://host:port: the pool key
	addr string // host:port, dialed
	host string // the host without port: SNI, hosts overrides
	tls  bool
}

// routeOf returns u's route.
func routeOf(u *url.URL) (route, error) {
	var r route
	port := u.Port()
	switch u.Scheme {
	case "http":
		if port == "" {
			port = "80"
		}
	case "https":
		r.tls = true
		if port == "" {
			port = "443"
		}
	default:
		return r, fmt.Errorf("unsupported URL scheme %q (want http or https)", u.Scheme)
	}
	r.host = u.Hostname()
	if r.host == "" {
		return r, fmt.Errorf("URL %q has no host", u.Redacted())
	}
	r.addr = net.JoinHostPort(r.host, port)
	r.key = u.Scheme + "://" + r.addr
	return r, nil
}

// maxCheckedBody bounds the body kept for body checks.
const maxCheckedBody = 1 << 20

// Prepare parses a plan request once, for many sends: its URL, and the
// templates of its URL, headers and body (expanded per send).
func Prepare(r plan.Request) (*Request, error) {
	pr := &Request{Checks: r.Checks}
	var err error
	if pr.checkBody, pr.jsonPaths, err = prepareChecks(r.Checks); err != nil {
		return nil, fmt.Errorf("request %q: %w", r.Name, err)
	}
	if c := r.Checks; c != nil && (c.BodyContains != "" || len(c.JSONPath) > 0) {
		pr.needBody = true
	}
	if err := pr.prepareExtracts(r.Extract); err != nil {
		return nil, fmt.Errorf("request %q: %w", r.Name, err)
	}
	ut, err := CompileTemplate(r.URL)
	if err != nil {
		return nil, fmt.Errorf("request %q: url: %w", r.Name, err)
	}
	var u *url.URL
	if ut.Static() {
		if u, err = url.Parse(r.URL); err != nil {
			return nil, fmt.Errorf("request %q: %w", r.Name, err)
		}
	} else {
		pr.urlT, pr.usesEnv = ut, ut.env
		// The placeholder-free parts still tell the host for BytesOut.
		if u, err = url.Parse(r.URL); err != nil {
			u = &url.URL{}
		}
	}
	h := make(http.Header, len(r.Headers))
	for k, v := range r.Headers {
		t, err := CompileTemplate(v)
		if err != nil {
			return nil, fmt.Errorf("request %q: header %s: %w", r.Name, k, err)
		}
		if !validHeader(k, v) {
			return nil, fmt.Errorf("request %q: header %q: invalid name or value", r.Name, k)
		}
		if !t.Static() {
			if pr.headerT == nil {
				pr.headerT = map[string]*Template{}
			}
			pr.headerT[k] = t
			pr.usesEnv = pr.usesEnv || t.env
			continue
		}
		h.Set(k, v)
	}
	bt, err := CompileTemplate(r.Body)
	if err != nil {
		return nil, fmt.Errorf("request %q: body: %w", r.Name, err)
	}
	if !bt.Static() {
		pr.bodyT, pr.usesEnv = bt, pr.usesEnv || bt.env
	}
	method := r.Method
	if method == "" {
		method = http.MethodGet
	}
	name := r.Name
	if name == "" {
		name = method + " " + r.URL
	}
	pr.Name, pr.Method, pr.URL, pr.Header, pr.Body, pr.Timeout = name, method, u, h, r.Body, r.Timeout.D()
	pr.hdrs = sortedHeaders(h, nil)
	if !pr.Templated() {
		pr.rt, pr.rtErr = routeOf(u)
		pr.wire = appendRequest(nil, method, u, pr.hdrs, r.Body, false)
		pr.wireClose = appendRequest(nil, method, u, pr.hdrs, r.Body, true)
	}
	pr.BytesOut = int64(len(appendRequest(nil, method, u, pr.hdrs, r.Body, false)))
	return pr, nil
}

// Templated reports whether the request expands templates per send.
func (r *Request) Templated() bool { return r.urlT != nil || r.bodyT != nil || r.headerT != nil }

// validHeader rejects names and values that would split the request.
func validHeader(k, v string) bool {
	return k != "" && !strings.ContainsAny(k, " :\r\n\t") && !strings.ContainsAny(v, "\r\n")
}

// sortedHeaders returns h plus extra as header lines sorted by name,
// without the headers surge writes itself (Content-Length,
// Transfer-Encoding).
func sortedHeaders(h http.Header, extra map[string]string) []hdr {
	out := make([]hdr, 0, len(h)+len(extra))
	for k, vs := range h {
		if _, over := extra[k]; over {
			continue
		}
		for _, v := range vs {
			out = append(out, hdr{k, v})
		}
	}
	for k, v := range extra {
		out = append(out, hdr{http.CanonicalHeaderKey(k), v})
	}
	n := 0
	for _, x := range out {
		switch x.k {
		case "Content-Length", "Transfer-Encoding":
			continue
		}
		out[n] = x
		n++
	}
	out = out[:n]
	sort.SliceStable(out, func(i, j int) bool { return out[i].k < out[j].k })
	return out
}

// appendRequest appends the HTTP/1.1 request to dst: request line, Host
// (the URL's unless a Host header is given), the headers, a User-Agent
// unless given, Content-Length when there is a body or the method carries
// one, "Connection: close" when close, and the body.
func appendRequest(dst []byte, method string, u *url.URL, hdrs []hdr, body string, close bool) []byte {
	dst = append(dst, method...)
	dst = append(dst, ' ')
	dst = append(dst, u.RequestURI()...)
	dst = append(dst, " HTTP/1.1\r\n"...)
	host, ua := u.Host, false
	for _, x := range hdrs {
		switch x.k {
		case "Host":
			host = x.v
		case "User-Agent":
			ua = true
		}
	}
	dst = append(dst, "Host: "...)
	dst = append(dst, host...)
	dst = append(dst, "\r\n"...)
	for _, x := range hdrs {
		if x.k == "Host" {
			continue
		}
		dst = append(dst, x.k...)
		dst = append(dst, ": "...)
		dst = append(dst, x.v...)
		dst = append(dst, "\r\n"...)
	}
	if !ua {
		dst = append(dst, "User-Agent: surge\r\n"...)
	}
	if body != "" || method == http.MethodPost || method == http.MethodPut || method == http.MethodPatch {
		dst = append(dst, "Content-Length: "...)
		dst = strconv.AppendInt(dst, int64(len(body)), 10)
		dst = append(dst, "\r\n"...)
	}
	if close {
		dst = append(dst, "Connection: close\r\n"...)
	}
	dst = append(dst, "\r\n"...)
	return append(dst, body...)
}
