package plan

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
}

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
