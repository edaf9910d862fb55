package target

import (
	"fmt"
	"log/slog"
	"net/http"
	"time"
)

// MaxBodySize bounds Config.BodySize and the bytes query parameter.
const MaxBodySize = 1 << 30

// Config configures a target. The zero value of every field but Listen is
// "off": an HTTP/1.1 server answering "ok\n" at once.
type Config struct {
	// Listen is host:port of the cleartext port; port 0 picks a free one.
	Listen string
	// Latency is the response delay distribution (see ParseLatency).
	Latency string
	// ErrorRate is the fraction of requests answered ErrorStatus, in [0, 1].
	ErrorRate float64
	// ErrorStatus is the status of those replies, 200–599; 0 means 500.
	ErrorStatus int
	// RetryAfter, when positive, is sent as a Retry-After header (seconds)
	// with every 429 and 503 reply.
	RetryAfter int
	// ResetRate is the fraction of requests answered by resetting, in
	// [0, 1]: HTTP/1 closes the TCP connection with RST (SO_LINGER 0),
	// HTTP/2 resets the request's stream (RST_STREAM, other streams live on).
	ResetRate float64
	// BodySize is the size in bytes of a successful reply's body
	// ("xxx…"); 0 means the 3-byte "ok\n".
	BodySize int
	// SlowBody spreads a successful reply's body over this long: the
	// headers go at once, the body in chunks, its last byte SlowBody later.
	SlowBody time.Duration
	// MaxConns bounds concurrently open connections (both ports together);
	// a connection beyond it is accepted and reset at once and counted in
	// Stats.ConnsRejected. 0: no bound.
	MaxConns int
	// H2C serves HTTP/2 with prior knowledge (h2c) on Listen, alongside
	// HTTP/1.1.
	H2C bool
	// H2MaxStreams is the SETTINGS_MAX_CONCURRENT_STREAMS advertised on
	// HTTP/2 connections (h2c and TLS); 0: Go's default (250).
	H2MaxStreams int
	// TLSListen, if set, is host:port of a second port serving the same
	// handlers over TLS, with ALPN h2 and http/1.1. It needs TLSCert and
	// TLSKey or TLSSelfSigned.
	TLSListen string
	// TLSCert and TLSKey are PEM files of the certificate (chain) and key.
	TLSCert, TLSKey string
	// TLSSelfSigned makes an in-memory CA and a certificate it signs for
	// localhost, 127.0.0.1, ::1 and TLSHosts; Server.CACertPEM returns
	// the CA and TLSCAOut, if set, is where it is written.
	TLSSelfSigned bool
	TLSHosts      []string
	TLSCAOut      string
	// WSEchoLatency delays each WebSocket echo (see ParseLatency).
	WSEchoLatency string
	// WSDropAfter, when positive, drops every WebSocket session abruptly
	// (its TCP connection closed, no close frame) this long after it opened.
	WSDropAfter time.Duration
	// Metrics serves MetricsPath: the request-duration histogram by route
	// and status, and the process's CPU and memory (metrics.go).
	Metrics bool
	// Logger; default discards.
	Logger *slog.Logger
}

// behaviour is what the load handler does by default; query parameters
// override it per request.
type behaviour struct {
	latency     Latency
	errorRate   float64
	errorStatus int
	retryAfter  int // seconds; < 0: no header
	resetRate   float64
	bodySize    int
	slowBody    time.Duration
}

func (cfg Config) listen() string {
	if cfg.Listen == "" {
		return "127.0.0.1:0"
	}
	return cfg.Listen
}

// behaviour validates the load handler's defaults.
func (cfg Config) behaviour() (behaviour, error) {
	lat, err := ParseLatency(cfg.Latency)
	if err != nil {
		return behaviour{}, fmt.Errorf("target: --latency %q: %w", cfg.Latency, err)
	}
	b := behaviour{
		latency:     lat,
		errorRate:   cfg.ErrorRate,
		errorStatus: cfg.ErrorStatus,
		retryAfter:  -1,
		resetRate:   cfg.ResetRate,
		bodySize:    cfg.BodySize,
		slowBody:    cfg.SlowBody,
	}
	if b.errorStatus == 0 {
		b.errorStatus = http.StatusInternalServerError
	}
	if cfg.RetryAfter > 0 {
		b.retryAfter = cfg.RetryAfter
	}
	switch {
	case !isFraction(cfg.ErrorRate):
		return b, fmt.Errorf("target: --error-rate %v: want a fraction between 0 and 1", cfg.ErrorRate)
	case !isStatus(b.errorStatus):
		return b, fmt.Errorf("target: --error-status %d: want an HTTP status 200-599", cfg.ErrorStatus)
	case cfg.RetryAfter < 0:
		return b, fmt.Errorf("target: --retry-after %d: want seconds, 0 (no header) or more", cfg.RetryAfter)
	case !isFraction(cfg.ResetRate):
		return b, fmt.Errorf("target: --reset-rate %v: want a fraction between 0 and 1", cfg.ResetRate)
	case cfg.BodySize < 0 || cfg.BodySize > MaxBodySize:
		return b, fmt.Errorf("target: --body-size %d: want 0 to %d bytes", cfg.BodySize, MaxBodySize)
	case cfg.SlowBody < 0:
		return b, fmt.Errorf("target: --slow-body %s: want 0 (off) or more", cfg.SlowBody)
	}
	return b, nil
}

func isFraction(f float64) bool { return f >= 0 && f <= 1 }
func isStatus(n int) bool       { return n >= 200 && n <= 599 }
