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
}

// Prepare parses a plan request once, for many sends.
func Prepare(r plan.Request) (*Request, error) {
	u, err := url.Parse(r.URL)
	if err != nil {
		return nil, fmt.Errorf("request %q: %w", r.Name, err)
	}
	h := make(http.Header, len(r.Headers))
	for k, v := range r.Headers {
		h.Set(k, v)
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
	return &Request{Name: name, Method: method, URL: u, Header: h, Body: r.Body, Timeout: r.Timeout.D(), BytesOut: out}, nil
}

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
}

// Failed reports a failure as k6's http_req_failed: an error or a status
// of 400 and above.
func (r Result) Failed() bool { return r.Err != nil || r.Code >= 400 }

// Do sends req, reads and discards the whole body, and classifies the
// outcome. now supplies the timestamps.
func (c *Client) Do(ctx context.Context, req *Request, now func() time.Time) Result {
	if req.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, req.Timeout)
		defer cancel()
	}
	var body io.Reader
	if req.Body != "" {
		body = strings.NewReader(req.Body)
	}
	hr, err := http.NewRequestWithContext(ctx, req.Method, req.URL.String(), body)
	if err != nil {
		t := now()
		return Result{Status: StatusOther, Err: fmt.Errorf("build request: %w", err), Sent: t, End: t}
	}
	hr.Header = req.Header.Clone()
	res := Result{Sent: now(), BytesOut: req.BytesOut}
	resp, err := c.hc.Do(hr)
	if err != nil {
		res.End = now()
		res.Err = err
		res.Status = Classify(err)
		return res
	}
	n, err := io.Copy(io.Discard, resp.Body)
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
