package plan

import (
	"math"
	"net"
	"strconv"
	"strings"
	"time"
)

// Client behaviour: how a scenario's VUs hold connections (Connection), retry
// failed requests (Retry) and speak WebSocket (WebSocket steps). Validation is
// in checkConnection, checkRetry and checkWebSocket.

// Connection reuse modes.
const (
	// ReusePerVU gives each VU its own connections, kept alive between its
	// requests (k6's behaviour; the default).
	ReusePerVU = "per-vu"
	// ReusePool shares PoolSize connections per host among all the
	// scenario's VUs on an agent; a request waits for a free one.
	ReusePool = "pool"
	// ReuseNever opens a connection per request and closes it after.
	ReuseNever = "never"
)

// HTTP/2 modes.
const (
	HTTP2Off = "off" // HTTP/1.1 only (default)
	HTTP2H2  = "h2"  // HTTP/2 over TLS, negotiated by ALPN (https URLs)
	HTTP2H2C = "h2c" // HTTP/2 with prior knowledge over cleartext (http URLs)
)

// Connection configures how a scenario's clients hold connections. The zero
// value is per-VU keep-alive HTTP/1.1 with no lifetime limit.
type Connection struct {
	// Reuse is per-vu (default), pool or never.
	Reuse string `yaml:"reuse,omitempty" json:"reuse,omitempty"`
	// PoolSize bounds the connections per host of a pool, per agent
	// (reuse: pool); default: the scenario's peak VUs on the agent.
	PoolSize int64 `yaml:"pool_size,omitempty" json:"pool_size,omitempty"`
	// MaxLifetime closes a connection once it is this old (drawn per
	// connection), after its request in flight.
	MaxLifetime *Dist `yaml:"max_lifetime,omitempty" json:"max_lifetime,omitempty"`
	// IdleTimeout closes a connection idle this long (drawn per
	// connection); default 90s.
	IdleTimeout *Dist `yaml:"idle_timeout,omitempty" json:"idle_timeout,omitempty"`
	// MaxRequestsPerConnection closes a connection after this many
	// requests; 0: unlimited.
	MaxRequestsPerConnection int64 `yaml:"max_requests_per_connection,omitempty" json:"max_requests_per_connection,omitempty"`
	// HTTP2 is off (default), h2 or h2c.
	HTTP2 string `yaml:"http2,omitempty" json:"http2,omitempty"`
	// MaxConcurrentStreams bounds the streams surge opens on one HTTP/2
	// connection (the server's own limit applies too); default 100.
	MaxConcurrentStreams int64 `yaml:"max_concurrent_streams,omitempty" json:"max_concurrent_streams,omitempty"`
	// DialTimeout bounds one TCP connect; default 10s.
	DialTimeout Duration `yaml:"dial_timeout,omitempty" json:"dial_timeout,omitempty"`
	// TLS configures https and wss connections.
	TLS *TLS `yaml:"tls,omitempty" json:"tls,omitempty"`
	// Hosts overrides name resolution: host name → IP address (or
	// IP:port), like /etc/hosts, for aiming a production plan at staging.
	// The allow-list applies to the address.
	Hosts map[string]string `yaml:"hosts,omitempty" json:"hosts,omitempty"`
	// SourceAddresses are local IP addresses new connections are spread
	// over, round robin, to pass the ~28k ephemeral ports per address pair.
	SourceAddresses []string `yaml:"source_addresses,omitempty" json:"source_addresses,omitempty"`
	// Cookies gives each VU a cookie jar (default true, as browsers, k6,
	// Gatling and Locust do): cookies the responses set are sent back by
	// the VU's later requests, and dropped when the VU ends.
	Cookies *bool `yaml:"cookies,omitempty" json:"cookies,omitempty"`
}

// CookiesOn reports whether the scenario's VUs keep cookies.
func (c *Connection) CookiesOn() bool { return c == nil || c.Cookies == nil || *c.Cookies }

// TLS configures a scenario's TLS connections. File paths are read by each
// agent, on the agent's machine.
type TLS struct {
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify,omitempty" json:"insecure_skip_verify,omitempty"`
	CAFile             string `yaml:"ca_file,omitempty" json:"ca_file,omitempty"`
	CertFile           string `yaml:"cert_file,omitempty" json:"cert_file,omitempty"`
	KeyFile            string `yaml:"key_file,omitempty" json:"key_file,omitempty"`
	// ServerName is the SNI name and the name verified; default the URL's
	// host.
	ServerName string `yaml:"server_name,omitempty" json:"server_name,omitempty"`
	// MinVersion is "1.2" (default) or "1.3".
	MinVersion string `yaml:"min_version,omitempty" json:"min_version,omitempty"`
}

// Retry conditions: the failures a request is retried on.
const (
	Retry5xx     = "5xx"     // any 5xx status
	Retry429     = "429"     // Too Many Requests
	RetryTimeout = "timeout" // the attempt timed out
	RetryReset   = "reset"   // the connection was reset or closed mid-request
	RetryConnect = "connect" // the connection could not be made (refused, dns, connect timeout)
)

// Retry makes a scenario's requests retry failed attempts. Each retry is
// counted; each attempt's own latency is recorded as http_req_attempt, and
// the request's latency runs from its (intended) start to its last attempt's
// end.
type Retry struct {
	// Attempts is the most attempts per request, the first included
	// (1: no retries).
	Attempts int64 `yaml:"attempts" json:"attempts"`
	// On lists the failures retried; default [5xx, 429, timeout, reset,
	// connect]. A code such as "503" is accepted too.
	On []string `yaml:"on,omitempty" json:"on,omitempty"`
	// Backoff between attempts; default exponential from 100ms, cap 10s,
	// full jitter.
	Backoff *Backoff `yaml:"backoff,omitempty" json:"backoff,omitempty"`
	// RetryAfter honours a 429/503 reply's Retry-After (seconds or an HTTP
	// date), capped at Backoff.Max; default true.
	RetryAfter *bool `yaml:"retry_after,omitempty" json:"retry_after,omitempty"`
}

// Backoff defaults.
const (
	DefaultBackoffBase       = 100 * time.Millisecond
	DefaultBackoffMax        = 10 * time.Second
	DefaultBackoffMultiplier = 2.0
)

// Backoff types.
const (
	BackoffConstant    = "constant"
	BackoffExponential = "exponential"
)

// Backoff is the wait before retry n (n = 1, 2, ...): constant Base, or
// exponential Base·Multiplier^(n-1), capped at Max, then jittered: Jitter is
// the fraction of the wait drawn uniformly at random (0: none, 1: "full
// jitter", uniform in [0, wait]).
type Backoff struct {
	Type       string   `yaml:"type,omitempty" json:"type,omitempty"`
	Base       Duration `yaml:"base,omitempty" json:"base,omitempty"`
	Max        Duration `yaml:"max,omitempty" json:"max,omitempty"`
	Multiplier float64  `yaml:"multiplier,omitempty" json:"multiplier,omitempty"`
	Jitter     *float64 `yaml:"jitter,omitempty" json:"jitter,omitempty"`
}

// Wait is the wait before retry n (n >= 1), with u uniform in [0, 1) for
// the jitter. A nil b, and each zero field, takes its default.
func (b *Backoff) Wait(n int64, u float64) time.Duration {
	base, capd, mult, jitter, exp := DefaultBackoffBase, DefaultBackoffMax, DefaultBackoffMultiplier, 1.0, true
	if b != nil {
		if b.Base > 0 {
			base = b.Base.D()
			capd = max(capd, base)
		}
		if b.Max > 0 {
			capd = b.Max.D()
		}
		if b.Multiplier >= 1 {
			mult = b.Multiplier
		}
		if b.Jitter != nil {
			jitter = *b.Jitter
		}
		exp = b.Type != BackoffConstant
	}
	w := float64(base)
	if exp {
		w *= math.Pow(mult, float64(max(n, 1)-1))
	}
	w = min(w, float64(capd))
	return time.Duration(w - jitter*w*u)
}

// Cap is the longest wait: Max, default 10s (and never under Base).
func (b *Backoff) Cap() time.Duration {
	if b != nil && b.Max > 0 {
		return b.Max.D()
	}
	if b != nil {
		return max(DefaultBackoffMax, b.Base.D())
	}
	return DefaultBackoffMax
}

// WebSocket is a flow step that holds one WebSocket session: connect (with
// headers), send messages at a rate or after think times, expect replies,
// hold the session for a duration drawn from Hold, then close. Its metrics
// are ws_* (session duration, connect time, message round trip, messages in
// and out, sessions active, abnormal closures); the connect is also recorded
// as a request named Name, so its errors are classified like any request's.
type WebSocket struct {
	// Name labels the step's metrics; default the URL.
	Name string `yaml:"name,omitempty" json:"name,omitempty"`
	// URL is ws:// or wss://; templated.
	URL     string            `yaml:"url" json:"url"`
	Headers map[string]string `yaml:"headers,omitempty" json:"headers,omitempty"`
	// Subprotocols offered in the handshake.
	Subprotocols []string `yaml:"subprotocols,omitempty" json:"subprotocols,omitempty"`
	// ConnectTimeout bounds the handshake; default 10s.
	ConnectTimeout Duration `yaml:"connect_timeout,omitempty" json:"connect_timeout,omitempty"`
	// Hold is how long the session stays open; required.
	Hold *Dist `yaml:"hold" json:"hold"`
	// Send, if set, sends messages while the session is held.
	Send *WSSend `yaml:"send,omitempty" json:"send,omitempty"`
	// Expect, if set, says which received messages are replies.
	Expect *WSExpect `yaml:"expect,omitempty" json:"expect,omitempty"`
	// Reconnect, if set, reopens a session that closed abnormally before
	// its hold ended.
	Reconnect *WSReconnect `yaml:"reconnect,omitempty" json:"reconnect,omitempty"`
}

// WSSend sends Message (templated; {{seq}} numbers messages within a session)
// Rate times a second, or after each Every think time; at most Count
// messages per session when Count > 0.
type WSSend struct {
	Message string  `yaml:"message" json:"message"`
	Rate    float64 `yaml:"rate,omitempty" json:"rate,omitempty"`
	Every   *Dist   `yaml:"every,omitempty" json:"every,omitempty"`
	Count   int64   `yaml:"count,omitempty" json:"count,omitempty"`
	// Binary sends binary frames instead of text.
	Binary bool `yaml:"binary,omitempty" json:"binary,omitempty"`
}

// WSExpect matches replies. A reply is the next received message (echo
// semantics) that contains Contains, when given. The round trip of a sent
// message is measured to its reply; a message with no reply within Timeout
// counts as missed.
type WSExpect struct {
	Contains string   `yaml:"contains,omitempty" json:"contains,omitempty"`
	Timeout  Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	// Count, when > 0, is the replies a session must receive; fewer is a
	// failed check.
	Count int64 `yaml:"count,omitempty" json:"count,omitempty"`
}

// WSReconnect reopens an abnormally closed session up to Max times per step,
// waiting Backoff between attempts.
type WSReconnect struct {
	Max     int64    `yaml:"max" json:"max"`
	Backoff *Backoff `yaml:"backoff,omitempty" json:"backoff,omitempty"`
}

// checkConnection validates a scenario's connection settings.
func checkConnection(l *errorList, path string, c *Connection) {
	if c == nil {
		return
	}
	switch c.Reuse {
	case "", ReusePerVU, ReusePool, ReuseNever:
	default:
		l.add(joinPath(path, "reuse"), "unknown reuse %q (valid: per-vu, pool, never)", c.Reuse)
	}
	if c.PoolSize < 0 {
		l.add(joinPath(path, "pool_size"), "must be >= 0, got %d", c.PoolSize)
	}
	if c.PoolSize > 0 && c.Reuse != ReusePool {
		l.add(joinPath(path, "pool_size"), "applies to reuse: pool only")
	}
	if c.MaxLifetime != nil {
		checkDist(l, joinPath(path, "max_lifetime"), c.MaxLifetime)
		if c.MaxLifetime.Mean() <= 0 {
			l.add(joinPath(path, "max_lifetime"), "must be > 0")
		}
	}
	if c.IdleTimeout != nil {
		checkDist(l, joinPath(path, "idle_timeout"), c.IdleTimeout)
		if c.IdleTimeout.Mean() <= 0 {
			l.add(joinPath(path, "idle_timeout"), "must be > 0")
		}
	}
	if c.MaxRequestsPerConnection < 0 {
		l.add(joinPath(path, "max_requests_per_connection"), "must be >= 0, got %d", c.MaxRequestsPerConnection)
	}
	switch c.HTTP2 {
	case "", HTTP2Off, HTTP2H2, HTTP2H2C:
	default:
		l.add(joinPath(path, "http2"), "unknown http2 mode %q (valid: off, h2, h2c)", c.HTTP2)
	}
	if c.MaxConcurrentStreams < 0 {
		l.add(joinPath(path, "max_concurrent_streams"), "must be >= 0, got %d", c.MaxConcurrentStreams)
	}
	if c.DialTimeout < 0 {
		l.add(joinPath(path, "dial_timeout"), "must be >= 0, got %s", c.DialTimeout)
	}
	if t := c.TLS; t != nil {
		tp := joinPath(path, "tls")
		switch t.MinVersion {
		case "", "1.2", "1.3":
		default:
			l.add(joinPath(tp, "min_version"), "unknown TLS version %q (valid: 1.2, 1.3)", t.MinVersion)
		}
		if (t.CertFile == "") != (t.KeyFile == "") {
			l.add(tp, "cert_file and key_file go together")
		}
	}
	for _, name := range sortedKeys(c.Hosts) {
		hp := joinPath(joinPath(path, "hosts"), name)
		addr := c.Hosts[name]
		host := addr
		if h, port, err := net.SplitHostPort(addr); err == nil {
			host = h
			if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
				l.add(hp, "invalid port in %q", addr)
				continue
			}
		}
		if net.ParseIP(host) == nil {
			l.add(hp, "want an IP address or IP:port, got %q", addr)
		}
	}
	for i, a := range c.SourceAddresses {
		if net.ParseIP(a) == nil {
			l.add(indexPath(joinPath(path, "source_addresses"), i), "want an IP address, got %q", a)
		}
	}
}

// retryConditions are the names Retry.On takes besides status codes.
func retryCondition(s string) bool {
	switch s {
	case Retry5xx, Retry429, RetryTimeout, RetryReset, RetryConnect:
		return true
	}
	n, err := strconv.Atoi(s)
	return err == nil && n >= 400 && n <= 599
}

// checkRetry validates a scenario's retry policy.
func checkRetry(l *errorList, path string, r *Retry) {
	if r == nil {
		return
	}
	if r.Attempts < 1 || r.Attempts > 100 {
		l.add(joinPath(path, "attempts"), "must be in [1, 100], got %d", r.Attempts)
	}
	for i, on := range r.On {
		if !retryCondition(on) {
			l.add(indexPath(joinPath(path, "on"), i),
				"unknown retry condition %q (valid: 5xx, 429, timeout, reset, connect, or a status code 400-599)", on)
		}
	}
	checkBackoff(l, joinPath(path, "backoff"), r.Backoff)
}

// checkBackoff validates a backoff.
func checkBackoff(l *errorList, path string, b *Backoff) {
	if b == nil {
		return
	}
	switch b.Type {
	case "", BackoffConstant, BackoffExponential:
	default:
		l.add(joinPath(path, "type"), "unknown backoff %q (valid: constant, exponential)", b.Type)
	}
	if b.Base < 0 {
		l.add(joinPath(path, "base"), "must be >= 0, got %s", b.Base)
	}
	if b.Max < 0 || b.Max > 0 && b.Max < b.Base {
		l.add(joinPath(path, "max"), "must be >= base (%s), got %s", b.Base, b.Max)
	}
	if b.Multiplier != 0 && !(b.Multiplier >= 1) || math.IsInf(b.Multiplier, 0) {
		l.add(joinPath(path, "multiplier"), "must be a finite number >= 1, got %v", b.Multiplier)
	}
	if j := b.Jitter; j != nil && !(*j >= 0 && *j <= 1) {
		l.add(joinPath(path, "jitter"), "must be in [0, 1], got %v", *j)
	}
}

// checkWebSocket validates a websocket step.
func checkWebSocket(l *errorList, path string, w *WebSocket) {
	up := joinPath(path, "url")
	parts, err := ParseTemplate(w.URL)
	switch {
	case err != nil:
		l.add(up, "%v", err)
	case w.URL == "":
		l.add(up, "required")
	default:
		checkNoSeq(l, up, parts)
		u, err := parseURL(placeholder(parts))
		switch {
		case err != nil:
			l.add(up, "invalid URL %q: %v", w.URL, errUnwrapURL(err))
		case isPath(w.URL) && u.Scheme == "" && u.Host == "":
			// a path: resolveURLs completes it with base_url
		case u.Scheme != "ws" && u.Scheme != "wss":
			l.add(up, "URL %q must be absolute with scheme ws or wss, or a path (\"/...\") that base_url completes", w.URL)
		case u.Host == "":
			l.add(up, "URL %q has no host", w.URL)
		}
	}
	if w.Name == "" {
		w.Name = w.URL
	}
	for _, k := range sortedKeys(w.Headers) {
		hp := joinPath(joinPath(path, "headers"), k)
		if k == "" || strings.ContainsAny(k, " \t\r\n:") {
			l.addKey(hp, "invalid header name %q", k)
		}
		checkTemplate(l, hp, w.Headers[k])
	}
	if w.ConnectTimeout < 0 {
		l.add(joinPath(path, "connect_timeout"), "must be >= 0, got %s", w.ConnectTimeout)
	}
	if w.Hold == nil {
		l.add(joinPath(path, "hold"), "required: how long the session stays open (a duration or distribution)")
	} else {
		checkDist(l, joinPath(path, "hold"), w.Hold)
	}
	if s := w.Send; s != nil {
		sp := joinPath(path, "send")
		if _, err := ParseTemplate(s.Message); err != nil {
			l.add(joinPath(sp, "message"), "%v", err)
		}
		switch {
		case s.Rate < 0 || math.IsInf(s.Rate, 0) || math.IsNaN(s.Rate):
			l.add(joinPath(sp, "rate"), "must be a finite number >= 0, got %v", s.Rate)
		case (s.Rate > 0) == (s.Every != nil):
			l.add(sp, "give rate (messages per second) or every (a think time), not both or neither")
		}
		if s.Every != nil {
			checkDist(l, joinPath(sp, "every"), s.Every)
		}
		if s.Count < 0 {
			l.add(joinPath(sp, "count"), "must be >= 0, got %d", s.Count)
		}
	}
	if e := w.Expect; e != nil {
		ep := joinPath(path, "expect")
		if e.Timeout < 0 {
			l.add(joinPath(ep, "timeout"), "must be >= 0, got %s", e.Timeout)
		}
		if e.Count < 0 {
			l.add(joinPath(ep, "count"), "must be >= 0, got %d", e.Count)
		}
	}
	if r := w.Reconnect; r != nil {
		rp := joinPath(path, "reconnect")
		if r.Max < 0 {
			l.add(joinPath(rp, "max"), "must be >= 0, got %d", r.Max)
		}
		checkBackoff(l, joinPath(rp, "backoff"), r.Backoff)
	}
}
