package httpclient

import (
	"context"
	"crypto/tls"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/surgeload/surge/plan"
)

func TestTLSOptions(t *testing.T) {
	srv := newServer(t, "tls", http.HandlerFunc(okHandler))
	ca := caFile(t, srv.Server)

	// The CA file makes the server trusted; the handshake is a phase of
	// the request that dialed, not of the next one.
	c := newClient(t, Options{Conn: &plan.Connection{TLS: &plan.TLS{CAFile: ca}}})
	s := c.Session()
	defer s.Close()
	req := get(t, srv.URL+"/")
	res := s.Do(context.Background(), req, nil, time.Now)
	if res.Status != "2xx" || res.Phases&(HasConnect|HasTLS|HasTTFB) != HasConnect|HasTLS|HasTTFB || res.TLS <= 0 {
		t.Fatalf("with the CA: %q %v phases %b tls %v", res.Status, res.Err, res.Phases, res.TLS)
	}
	if res := s.Do(context.Background(), req, nil, time.Now); res.Phases != HasTTFB || res.TLS != 0 {
		t.Errorf("reused connection: phases %b tls %v, want ttfb only", res.Phases, res.TLS)
	}

	// Without it, the server's certificate is unknown.
	c2 := newClient(t, Options{})
	if res := c2.Do(context.Background(), req, time.Now); res.Status != StatusTLS {
		t.Errorf("unknown CA: %q %v, want tls", res.Status, res.Err)
	}
	// Unless verification is off.
	c3 := newClient(t, Options{Conn: &plan.Connection{TLS: &plan.TLS{InsecureSkipVerify: true}}})
	if res := c3.Do(context.Background(), req, time.Now); res.Status != "2xx" {
		t.Errorf("insecure_skip_verify: %q %v", res.Status, res.Err)
	}

	// min_version 1.3 against a TLS 1.2 server fails as tls.
	old := tls12Server(t)
	c4 := newClient(t, Options{Conn: &plan.Connection{TLS: &plan.TLS{CAFile: caFile(t, old.Server), MinVersion: "1.3"}}})
	if res := c4.Do(context.Background(), get(t, old.URL+"/"), time.Now); res.Status != StatusTLS {
		t.Errorf("min_version 1.3 to a 1.2 server: %q %v, want tls", res.Status, res.Err)
	}
	c5 := newClient(t, Options{Conn: &plan.Connection{TLS: &plan.TLS{CAFile: caFile(t, old.Server), MinVersion: "1.2"}}})
	if res := c5.Do(context.Background(), get(t, old.URL+"/"), time.Now); res.Status != "2xx" {
		t.Errorf("min_version 1.2 to a 1.2 server: %q %v", res.Status, res.Err)
	}
}

func TestTLSServerNameAndClientCert(t *testing.T) {
	p := newPKI(t)
	var mu sync.Mutex
	var sni []string
	srv := &testServer{remotes: map[string]int{}}
	srv.Server = newUnstartedTLS(http.HandlerFunc(okHandler), &tls.Config{
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: p.caPool,
		GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
			mu.Lock()
			sni = append(sni, h.ServerName)
			mu.Unlock()
			return nil, nil
		},
	})
	t.Cleanup(srv.Close)
	ca := caFile(t, srv.Server)
	req := get(t, srv.URL+"/")

	// The test certificate is valid for example.com: SNI and verification
	// use server_name.
	c := newClient(t, Options{Conn: &plan.Connection{TLS: &plan.TLS{CAFile: ca, ServerName: "example.com", CertFile: p.certFile, KeyFile: p.keyFile}}})
	if res := c.Do(context.Background(), req, time.Now); res.Status != "2xx" {
		t.Fatalf("client certificate: %q %v", res.Status, res.Err)
	}
	mu.Lock()
	if len(sni) != 1 || sni[0] != "example.com" {
		t.Errorf("SNI %q, want example.com", sni)
	}
	mu.Unlock()
	c2 := newClient(t, Options{Conn: &plan.Connection{TLS: &plan.TLS{CAFile: ca}}})
	if res := c2.Do(context.Background(), req, time.Now); res.Status != StatusTLS {
		t.Errorf("no client certificate: %q %v, want tls", res.Status, res.Err)
	}
	// TLSConfig is a copy with the same trust and certificate.
	cfg := c.TLSConfig()
	if cfg.RootCAs == nil || len(cfg.Certificates) != 1 || cfg.ServerName != "example.com" {
		t.Errorf("TLSConfig: %+v", cfg)
	}
	cfg.ServerName = "changed"
	if c.TLSConfig().ServerName != "example.com" {
		t.Error("TLSConfig is not a copy")
	}
}

func TestNewErrorsNameTheField(t *testing.T) {
	p := newPKI(t)
	for _, tc := range []struct {
		opts Options
		want string
	}{
		{Options{Conn: &plan.Connection{TLS: &plan.TLS{CAFile: "/nonexistent/ca.pem"}}}, "connection.tls.ca_file: open /nonexistent/ca.pem"},
		{Options{Conn: &plan.Connection{TLS: &plan.TLS{CAFile: p.keyFile}}}, "connection.tls.ca_file: "},
		{Options{Conn: &plan.Connection{TLS: &plan.TLS{CertFile: p.certFile, KeyFile: "/nonexistent/key"}}}, "connection.tls.cert_file: "},
		{Options{Conn: &plan.Connection{TLS: &plan.TLS{CertFile: p.certFile}}}, "cert_file and key_file go together"},
		{Options{Conn: &plan.Connection{TLS: &plan.TLS{MinVersion: "1.1"}}}, "connection.tls.min_version"},
		{Options{Conn: &plan.Connection{Hosts: map[string]string{"api.test": "not-an-ip"}}}, "connection.hosts.api.test"},
		{Options{Conn: &plan.Connection{Hosts: map[string]string{"api.test": "127.0.0.1:99999"}}}, "connection.hosts.api.test: invalid port"},
		{Options{Conn: &plan.Connection{SourceAddresses: []string{"127.0.0.1", "bogus"}}}, "connection.source_addresses[1]"},
		{Options{Conn: &plan.Connection{SourceAddresses: []string{"192.0.2.1"}}}, "connection.source_addresses[0]: 192.0.2.1 is not an address of this machine"},
		{Options{Conn: &plan.Connection{Reuse: "sometimes"}}, "connection.reuse"},
		{Options{Conn: &plan.Connection{HTTP2: "h3"}}, "connection.http2"},
		{Options{Retry: &plan.Retry{Attempts: 0}}, "retry.attempts"},
		{Options{Retry: &plan.Retry{Attempts: 2, On: []string{"5xx", "teapot"}}}, "retry.on[1]"},
		{Options{Retry: &plan.Retry{Attempts: 2, Backoff: &plan.Backoff{Type: "linear"}}}, "retry.backoff.type"},
	} {
		c, err := New(tc.opts)
		if err == nil {
			c.Close()
			t.Errorf("want an error containing %q", tc.want)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error %q, want it to contain %q", err, tc.want)
		}
	}
}
