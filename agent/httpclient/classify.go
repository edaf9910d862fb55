package httpclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// Status values for results that carry no HTTP status.
const (
	StatusTimeout  = "timeout"
	StatusRefused  = "refused"
	StatusReset    = "reset"
	StatusTLS      = "tls"
	StatusDNS      = "dns"
	StatusProtocol = "protocol"
	StatusBlocked  = "blocked"
	StatusOther    = "other"
)

// ProtocolError is a response surge cannot parse: a malformed status line,
// header or chunk, or an HTTP/2 protocol violation.
type ProtocolError struct{ Msg string }

func (e *ProtocolError) Error() string { return "protocol error: " + e.Msg }

// protoErr returns a ProtocolError quoting at most 64 bytes of what was
// received.
func protoErr(what string, got []byte) error {
	if len(got) > 64 {
		got = got[:64]
	}
	if got == nil {
		return &ProtocolError{Msg: what}
	}
	return &ProtocolError{Msg: what + ": " + strconv.Quote(string(got))}
}

// connectError marks a failure to make the connection (resolve, connect),
// for the retry condition "connect"; Classify sees through it.
type connectError struct{ err error }

func (e *connectError) Error() string { return e.err.Error() }
func (e *connectError) Unwrap() error { return e.err }

// StatusClass returns "1xx".."5xx" for an HTTP status code, StatusOther
// outside 100..599.
func StatusClass(code int) string {
	switch {
	case code < 100 || code > 599:
		return StatusOther
	case code < 200:
		return "1xx"
	case code < 300:
		return "2xx"
	case code < 400:
		return "3xx"
	case code < 500:
		return "4xx"
	}
	return "5xx"
}

// Classify maps a request error to an error kind: timeout, refused, reset,
// tls, dns, protocol, blocked or other.
func Classify(err error) string {
	var (
		blocked  *BlockedError
		proto    *ProtocolError
		dnsErr   *net.DNSError
		netErr   net.Error
		recErr   tls.RecordHeaderError
		certErr  *tls.CertificateVerificationError
		alert    tls.AlertError
		unknown  x509.UnknownAuthorityError
		hostErr  x509.HostnameError
		invalid  x509.CertificateInvalidError
		alpnFail *alpnError
		opErr    *net.OpError
	)
	switch {
	case err == nil:
		return ""
	case errors.As(err, &blocked):
		return StatusBlocked
	case errors.As(err, &proto), errors.As(err, &alpnFail):
		return StatusProtocol
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
		errors.As(err, &unknown), errors.As(err, &hostErr), errors.As(err, &invalid),
		errors.As(err, &opErr) && opErr.Op == "remote error": // a TLS alert from the peer
		return StatusTLS
	}
	// net/http's HTTP/2 errors are of unexported types: known by their
	// text.
	switch msg := err.Error(); {
	case strings.Contains(msg, "stream error: "), strings.Contains(msg, "server sent GOAWAY"):
		return StatusReset
	case strings.Contains(msg, "connection error: "), strings.Contains(msg, "http2: invalid"),
		strings.Contains(msg, "http2: response"), strings.Contains(msg, "malformed HTTP"):
		return StatusProtocol
	}
	return StatusOther
}
