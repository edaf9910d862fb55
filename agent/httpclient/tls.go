package httpclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/surgeload/surge/plan"
)

// buildTLS turns a plan's TLS options into the client's base configuration.
// Errors name the plan field.
func buildTLS(t *plan.TLS) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ClientSessionCache: tls.NewLRUClientSessionCache(0)}
	if t == nil {
		return cfg, nil
	}
	cfg.InsecureSkipVerify = t.InsecureSkipVerify
	cfg.ServerName = t.ServerName
	switch t.MinVersion {
	case "", "1.2":
	case "1.3":
		cfg.MinVersion = tls.VersionTLS13
	default:
		return nil, fmt.Errorf("connection.tls.min_version: unknown TLS version %q (valid: 1.2, 1.3)", t.MinVersion)
	}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("connection.tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("connection.tls.ca_file: %s holds no PEM certificate", t.CAFile)
		}
		cfg.RootCAs = pool
	}
	switch {
	case t.CertFile != "" && t.KeyFile != "":
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("connection.tls.cert_file: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	case t.CertFile != "" || t.KeyFile != "":
		return nil, errors.New("connection.tls: cert_file and key_file go together")
	}
	return cfg, nil
}

// TLSConfig returns a copy of the client's TLS configuration (CA, client
// certificate, SNI override, minimum version), for clients of other
// protocols such as WebSocket. ServerName is empty unless the plan set it:
// set it to the target host.
func (c *Client) TLSConfig() *tls.Config { return c.tls.Clone() }

// alpnError is a TLS server that did not agree to speak HTTP/2.
type alpnError struct{ got string }

func (e *alpnError) Error() string {
	return fmt.Sprintf("the server did not negotiate HTTP/2 over TLS (ALPN: %s); use http2: off for HTTP/1.1 targets", e.got)
}

// handshake runs a TLS client handshake on raw for host, offering alpn,
// bounded by the dial timeout. On error raw is closed.
func (c *Client) handshake(ctx context.Context, raw net.Conn, host, alpn string) (*tls.Conn, error) {
	cfg := c.tls.Clone()
	if cfg.ServerName == "" {
		cfg.ServerName = host
	}
	cfg.NextProtos = []string{alpn}
	tc := tls.Client(raw, cfg)
	hctx, cancel := context.WithTimeout(ctx, c.dialTimeout)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		raw.Close()
		if alpn == "h2" && strings.Contains(err.Error(), "no application protocol") {
			return nil, &alpnError{got: "none: " + err.Error()}
		}
		return nil, fmt.Errorf("tls handshake with %s: %w", host, err)
	}
	if alpn == "h2" {
		if p := tc.ConnectionState().NegotiatedProtocol; p != "h2" {
			tc.Close()
			return nil, &alpnError{got: strconv.Quote(p)}
		}
	}
	return tc, nil
}
