package httpclient

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/surgeload/surge/internal/pki"
	"github.com/surgeload/surge/plan"
)

// newClient returns a client closed at the test's end.
func newClient(t testing.TB, opts Options) *Client {
	t.Helper()
	c, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// prep prepares a request.
func prep(t testing.TB, r plan.Request) *Request {
	t.Helper()
	if r.Timeout == 0 {
		r.Timeout = plan.Duration(5 * time.Second)
	}
	pr, err := Prepare(r)
	if err != nil {
		t.Fatal(err)
	}
	return pr
}

func get(t testing.TB, url string) *Request { return prep(t, plan.Request{Name: "r", URL: url}) }

// testServer is an httptest server that counts accepted connections,
// connections open, and the remote addresses seen.
type testServer struct {
	*httptest.Server
	accepted atomic.Int64
	open     atomic.Int64
	mu       sync.Mutex
	remotes  map[string]int // remote IP → connections
}

type countingListener struct {
	net.Listener
	s *testServer
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.s.accepted.Add(1)
		host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
		l.s.mu.Lock()
		l.s.remotes[host]++
		l.s.mu.Unlock()
	}
	return c, err
}

// newServer starts h as mode "" (HTTP/1.1), "tls" (HTTP/1.1 over TLS),
// "h2" (HTTP/2 over TLS) or "h2c".
func newServer(t testing.TB, mode string, h http.Handler, configure ...func(*http.Server)) *testServer {
	t.Helper()
	s := &testServer{remotes: map[string]int{}}
	s.Server = httptest.NewUnstartedServer(h)
	s.Listener = countingListener{Listener: s.Listener, s: s}
	s.Config.ErrorLog = log.New(io.Discard, "", 0)
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		switch st {
		case http.StateNew:
			s.open.Add(1)
		case http.StateClosed, http.StateHijacked:
			s.open.Add(-1)
		}
	}
	for _, f := range configure {
		f(s.Config)
	}
	switch mode {
	case "":
		s.Start()
	case "tls":
		s.StartTLS()
	case "h2":
		s.EnableHTTP2 = true
		s.StartTLS()
	case "h2c":
		s.Config.Protocols = new(http.Protocols)
		s.Config.Protocols.SetHTTP1(true)
		s.Config.Protocols.SetUnencryptedHTTP2(true)
		s.Start()
	default:
		t.Fatalf("unknown server mode %q", mode)
	}
	t.Cleanup(s.Close)
	return s
}

func (s *testServer) remoteIPs() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for k, v := range s.remotes {
		out[k] = v
	}
	return out
}

// caFile writes the server's certificate as a PEM CA file.
func caFile(t testing.TB, s *httptest.Server) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ca.pem")
	b := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw})
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// testPKI is a throwaway CA and a client certificate it signed.
type testPKI struct {
	caPool            *x509.CertPool
	caFile            string
	certFile, keyFile string
}

func newPKI(t testing.TB) testPKI {
	t.Helper()
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	now := time.Now()
	ca, err := pki.NewCA(pkix.Name{CommonName: "test ca"}, now.Add(-time.Hour), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Sign(pki.Leaf{Subject: pkix.Name{CommonName: "surge client"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		Usage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	if err != nil {
		t.Fatal(err)
	}
	key, err := pki.KeyPEM(leaf.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	return testPKI{
		caPool:   ca.Pool(),
		caFile:   write("ca.pem", ca.PEM()),
		certFile: write("client.pem", pki.CertPEM(leaf.Certificate[0])),
		keyFile:  write("client-key.pem", key),
	}
}

// tls12Server is an HTTPS server speaking at most TLS 1.2.
func tls12Server(t testing.TB) *testServer {
	t.Helper()
	s := &testServer{remotes: map[string]int{}}
	s.Server = newUnstartedTLS(http.HandlerFunc(okHandler), &tls.Config{MaxVersion: tls.VersionTLS12})
	t.Cleanup(s.Close)
	return s
}

// newUnstartedTLS starts h over TLS with cfg (the test certificate added).
func newUnstartedTLS(h http.Handler, cfg *tls.Config) *httptest.Server {
	s := httptest.NewUnstartedServer(h)
	s.Config.ErrorLog = log.New(io.Discard, "", 0)
	s.TLS = cfg
	s.StartTLS()
	return s
}
