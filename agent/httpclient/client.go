package httpclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/surgeload/surge/plan"
)

// Status values for results that carry no HTTP status.
const (
	StatusTimeout = "timeout"
	StatusRefused = "refused"
	StatusReset   = "reset"
	StatusTLS     = "tls"
	StatusDNS     = "dns"
	StatusBlocked = "blocked"
	StatusOther   = "other"
)

// Options configure a Client.
type Options struct {
	// Allow is enforced on every dial; nil means loopback only.
	Allow *AllowList
	// Resolver resolves target names; nil uses a zero net.Resolver.
	Resolver *net.Resolver
	// MaxIdleConnsPerHost should be at least the number of VUs.
	MaxIdleConnsPerHost int
	// Conns, if set, counts open connections (shared across clients).
	Conns *atomic.Int64
	// DialTimeout bounds one TCP connect; default 10s.
	DialTimeout time.Duration
}

// Client sends plan requests through an allow-listed transport. It is safe
// for concurrent use.
type Client struct {
	hc *http.Client
	tr *http.Transport
}

// New returns a client with its own keep-alive transport.
func New(opts Options) *Client {
	if opts.Allow == nil {
		opts.Allow, _ = ParseAllowList(nil)
	}
	if opts.Resolver == nil {
		opts.Resolver = &net.Resolver{}
	}
	if opts.DialTimeout == 0 {
		opts.DialTimeout = 10 * time.Second
	}
	d := &dialer{allow: opts.Allow, resolver: opts.Resolver, conns: opts.Conns,
		nd: net.Dialer{Timeout: opts.DialTimeout, KeepAlive: 30 * time.Second, Resolver: opts.Resolver}}
	tr := &http.Transport{
		Proxy:                 nil, // a proxy would bypass the allow-list
		DialContext:           d.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          0,
		MaxIdleConnsPerHost:   max(opts.MaxIdleConnsPerHost, http.DefaultMaxIdleConnsPerHost),
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
	}
	return &Client{hc: &http.Client{Transport: tr}, tr: tr}
}

// Close releases idle connections.
func (c *Client) Close() { c.tr.CloseIdleConnections() }

// dialer checks every resolved address of the target against the allow-list
// and dials only checked addresses.
type dialer struct {
	allow    *AllowList
	resolver *net.Resolver
	conns    *atomic.Int64
	nd       net.Dialer
}

func (d *dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	ips, err := d.allow.Resolve(ctx, d.resolver, host)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	var conn net.Conn
	if ips == nil { // allowed by name
		conn, err = d.nd.DialContext(ctx, network, addr)
	} else {
		var errs []error
		for _, ip := range ips {
			conn, err = d.nd.DialContext(ctx, network, net.JoinHostPort(ip.String(), port))
			if err == nil {
				break
			}
			errs = append(errs, err)
			if ctx.Err() != nil {
				break
			}
		}
		if conn == nil {
			err = errors.Join(errs...)
		}
	}
	if err != nil {
		return nil, err
	}
	if d.conns == nil {
		return conn, nil
	}
	d.conns.Add(1)
	return &countedConn{Conn: conn, n: d.conns}, nil
}

type countedConn struct {
	net.Conn
	n      *atomic.Int64
	closed atomic.Bool
}

func (c *countedConn) Close() error {
	if c.closed.CompareAndSwap(false, true) {
		c.n.Add(-1)
	}
	return c.Conn.Close()
}

// Request is a plan request prepared for sending.
type Request struct {
	Name    string
	Method  string
	URL     *url.URL
	Header  http.Header
	Body    string
	Timeout time.Duration
	// BytesOut approximates the bytes on the wire: request line, headers
	// and body.
	BytesOut int64
	// Templates, compiled once; nil when the value has no {{...}}.
	urlT, bodyT *Template
	headerT     map[string]*Template
	usesEnv     bool
	// Checks on the response; needBody when a check reads the body.
	Checks   *plan.Checks
	needBody bool
}

// maxCheckedBody bounds the body kept for body checks.
const maxCheckedBody = 1 << 20

// Prepare parses a plan request once, for many sends: its URL, and the
// templates of its URL, headers and body (expanded per send by DoWith).
func Prepare(r plan.Request) (*Request, error) {
	pr := &Request{Checks: r.Checks}
	if c := r.Checks; c != nil && (c.BodyContains != "" || len(c.JSONPath) > 0) {
		pr.needBody = true
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
	out := int64(len(method) + 1 + len(u.RequestURI()) + len(" HTTP/1.1\r\n"))
	out += int64(len("Host: \r\n") + len(u.Host))
	for k, vs := range h {
		for _, v := range vs {
			out += int64(len(k) + 2 + len(v) + 2)
		}
	}
	if r.Body != "" {
		out += int64(len("Content-Length: \r\n") + len(strconv.Itoa(len(r.Body))))
	}
	out += 2 + int64(len(r.Body))
	name := r.Name
	if name == "" {
		name = method + " " + r.URL
	}
	pr.Name, pr.Method, pr.URL, pr.Header, pr.Body, pr.Timeout, pr.BytesOut = name, method, u, h, r.Body, r.Timeout.D(), out
	return pr, nil
}

// Templated reports whether the request expands templates per send.
func (r *Request) Templated() bool { return r.urlT != nil || r.bodyT != nil || r.headerT != nil }

// Result is the outcome of one request.
type Result struct {
	// Status is "2xx".."5xx" or an error kind (StatusTimeout, ...).
	Status string
	Code   int
	Err    error
	// Sent is when the request was handed to the transport; End when the
	// body was read or the request failed.
	Sent, End time.Time
	BytesIn   int64
	BytesOut  int64
	// Body holds up to 1 MiB of the response body when a check needs it.
	Body []byte
}

// Failed reports a failure as k6's http_req_failed: an error or a status
// of 400 and above.
func (r Result) Failed() bool { return r.Err != nil || r.Code >= 400 }

// Do sends req, reads and discards the whole body, and classifies the
// outcome. now supplies the timestamps.
func (c *Client) Do(ctx context.Context, req *Request, now func() time.Time) Result {
	return c.DoWith(ctx, req, nil, now)
}

// DoWith is Do expanding req's templates from v. Errors of requests that
// use {{env}} are redacted: they never carry an expanded value.
func (c *Client) DoWith(ctx context.Context, req *Request, v *Vars, now func() time.Time) Result {
	res := c.do(ctx, req, v, now)
	if res.Err != nil && req.usesEnv {
		res.Err = errors.New(redactEnv(res.Err.Error(), req, v))
	}
	return res
}

// redactEnv removes the values of the env variables req uses from s.
func redactEnv(s string, req *Request, v *Vars) string {
	if v == nil || v.Env == nil {
		return s
	}
	var secrets []string
	for _, t := range append([]*Template{req.urlT, req.bodyT}, mapValues(req.headerT)...) {
		if t == nil {
			continue
		}
		for _, p := range t.parts {
			if p.Func == "env" {
				if val, ok := v.Env(p.Args[0]); ok {
					secrets = append(secrets, val)
				}
			}
		}
	}
	return redact(s, secrets)
}

func mapValues(m map[string]*Template) []*Template {
	out := make([]*Template, 0, len(m))
	for _, t := range m {
		out = append(out, t)
	}
	return out
}

func (c *Client) do(ctx context.Context, req *Request, v *Vars, now func() time.Time) Result {
	if req.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, req.Timeout)
		defer cancel()
	}
	fail := func(err error) Result {
		t := now()
		return Result{Status: StatusOther, Err: err, Sent: t, End: t}
	}
	if v == nil {
		v = &Vars{}
	}
	target := ""
	if req.urlT != nil {
		b, err := req.urlT.Expand(nil, v)
		if err != nil {
			return fail(fmt.Errorf("request %q: url: %w", req.Name, err))
		}
		u, err := url.Parse(string(b))
		if err != nil {
			return fail(fmt.Errorf("request %q: the expanded URL is invalid", req.Name))
		}
		if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
			return fail(fmt.Errorf("request %q: the expanded URL is not absolute", req.Name))
		}
		target = u.String()
	} else {
		target = req.URL.String()
	}
	var body io.Reader
	if req.bodyT != nil {
		b, err := req.bodyT.Expand(nil, v)
		if err != nil {
			return fail(fmt.Errorf("request %q: body: %w", req.Name, err))
		}
		body = strings.NewReader(string(b))
	} else if req.Body != "" {
		body = strings.NewReader(req.Body)
	}
	hr, err := http.NewRequestWithContext(ctx, req.Method, target, body)
	if err != nil {
		return fail(fmt.Errorf("build request: %w", err))
	}
	hr.Header = req.Header.Clone()
	for k, t := range req.headerT {
		b, err := t.Expand(nil, v)
		if err != nil {
			return fail(fmt.Errorf("request %q: header %s: %w", req.Name, k, err))
		}
		hr.Header.Set(k, string(b))
	}
	res := Result{Sent: now(), BytesOut: req.BytesOut}
	resp, err := c.hc.Do(hr)
	if err != nil {
		res.End = now()
		res.Err = err
		res.Status = Classify(err)
		return res
	}
	var n int64
	if req.needBody {
		res.Body, err = io.ReadAll(io.LimitReader(resp.Body, maxCheckedBody))
		n = int64(len(res.Body))
		if err == nil {
			var m int64
			m, err = io.Copy(io.Discard, resp.Body)
			n += m
		}
	} else {
		n, err = io.Copy(io.Discard, resp.Body)
	}
	resp.Body.Close()
	res.End = now()
	res.BytesIn = n
	res.Code = resp.StatusCode
	if err != nil {
		res.Err = fmt.Errorf("read body: %w", err)
		res.Status = Classify(err)
		return res
	}
	res.Status = StatusClass(resp.StatusCode)
	return res
}

// StatusClass returns "1xx".."5xx" for an HTTP status code, StatusOther
// outside 100..599.
func StatusClass(code int) string {
	if code < 100 || code > 599 {
		return StatusOther
	}
	return strconv.Itoa(code/100) + "xx"
}

// Classify maps a request error to an error kind.
func Classify(err error) string {
	var (
		blocked *BlockedError
		dnsErr  *net.DNSError
		netErr  net.Error
		recErr  tls.RecordHeaderError
		certErr *tls.CertificateVerificationError
		alert   tls.AlertError
		unknown x509.UnknownAuthorityError
		hostErr x509.HostnameError
		invalid x509.CertificateInvalidError
	)
	switch {
	case err == nil:
		return ""
	case errors.As(err, &blocked):
		return StatusBlocked
	case errors.As(err, &dnsErr):
		return StatusDNS
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded),
		errors.As(err, &netErr) && netErr.Timeout():
		return StatusTimeout
	case errors.Is(err, syscall.ECONNREFUSED):
		return StatusRefused
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.ECONNABORTED),
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return StatusReset
	case errors.As(err, &recErr), errors.As(err, &certErr), errors.As(err, &alert),
		errors.As(err, &unknown), errors.As(err, &hostErr), errors.As(err, &invalid):
		return StatusTLS
	}
	return StatusOther
}
