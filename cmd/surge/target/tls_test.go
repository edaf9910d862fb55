package target_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/surgeload/surge/cmd/surge/target"
	"github.com/surgeload/surge/internal/pki"
	"github.com/surgeload/surge/internal/poll"
)

// A self-signed target serves h2 and HTTP/1.1 over TLS to clients that
// trust the CA it wrote, and counts handshakes, failed ones too.
func TestTLSSelfSigned(t *testing.T) {
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	s := start(t, target.Config{TLSListen: "127.0.0.1:0", TLSSelfSigned: true, TLSCAOut: caFile, TLSHosts: []string{"api.example.test"}})
	written, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(written, s.CACertPEM()) || !bytes.HasPrefix(written, []byte("-----BEGIN CERTIFICATE-----")) {
		t.Fatalf("--tls-ca-out wrote %q, want the CA PEM", written)
	}
	base := "https://" + s.TLSAddr()

	h2Client := client(transport(t, s, h2))
	for range 3 {
		if code, proto := getProto(t, h2Client, base+"/t"); code != 200 || proto != "HTTP/2.0" {
			t.Fatalf("h2 over TLS: %d %s", code, proto)
		}
	}
	h1Client := client(transport(t, s, http1))
	if code, proto := getProto(t, h1Client, base+"/t"); code != 200 || proto != "HTTP/1.1" {
		t.Fatalf("HTTP/1.1 over TLS: %d %s", code, proto)
	}
	// The extra name is in the certificate.
	named := transport(t, s, http1)
	named.TLSClientConfig.ServerName = "api.example.test"
	if code, _ := getProto(t, client(named), base+"/t"); code != 200 {
		t.Fatalf("with SNI api.example.test: %d", code)
	}
	// The cleartext port serves too.
	if code, proto := getProto(t, client(transport(t, s, http1)), "http://"+s.Addr()+"/t"); code != 200 || proto != "HTTP/1.1" {
		t.Fatalf("cleartext: %d %s", code, proto)
	}

	// A client that does not trust the CA fails its handshake.
	untrusting := transport(t, s, http1)
	untrusting.TLSClientConfig = &tls.Config{}
	_, err = client(untrusting).Get(base + "/t")
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) {
		t.Fatalf("client without the CA: err = %v, want unknown authority", err)
	}
	poll.Eventually(t, 10*time.Second, "the failed handshake counted", func() bool { return s.Stats().TLSHandshakeErrors == 1 })

	st := s.Stats()
	if st.Requests != 6 || st.RequestsTLS != 5 || st.RequestsH2 != 3 || st.RequestsHTTP1 != 3 {
		t.Errorf("requests %d, tls %d, h2 %d, http1 %d; want 6, 5, 3, 3", st.Requests, st.RequestsTLS, st.RequestsH2, st.RequestsHTTP1)
	}
	if st.TLSHandshakes != 3 || st.TLSHandshakeErrors != 1 || st.H2Conns != 1 || st.ConnsAccepted != 5 {
		t.Errorf("handshakes %d, failed %d, h2 conns %d, conns %d; want 3, 1, 1, 5", st.TLSHandshakes, st.TLSHandshakeErrors, st.H2Conns, st.ConnsAccepted)
	}
}

// writeCert writes a certificate for 127.0.0.1 and its key as PEM files
// and returns their paths and the CA that signed it.
func writeCert(t *testing.T) (certFile, keyFile string, ca *x509.Certificate) {
	t.Helper()
	now := time.Now()
	auth, err := pki.NewCA(pkix.Name{CommonName: "test ca"}, now.Add(-time.Hour), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := auth.Sign(pki.Leaf{Subject: pkix.Name{CommonName: "test"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		Usage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	if err != nil {
		t.Fatal(err)
	}
	key, err := pki.KeyPEM(leaf.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pki.CertPEM(leaf.Certificate[0]), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, key, 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, auth.Cert
}

// A target with certificate files serves h2 over TLS with them.
func TestTLSCertFiles(t *testing.T) {
	certFile, keyFile, cert := writeCert(t)
	s := start(t, target.Config{TLSListen: "127.0.0.1:0", TLSCert: certFile, TLSKey: keyFile})
	if s.CACertPEM() != nil {
		t.Error("CACertPEM with certificate files: want nil")
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	tr := transport(t, s, h2)
	tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	if code, proto := getProto(t, client(tr), "https://"+s.TLSAddr()+"/f"); code != 200 || proto != "HTTP/2.0" {
		t.Fatalf("h2 over TLS: %d %s", code, proto)
	}
	if st := s.Stats(); st.TLSHandshakes != 1 || st.RequestsH2 != 1 {
		t.Errorf("handshakes %d, h2 requests %d; want 1, 1", st.TLSHandshakes, st.RequestsH2)
	}
}

// The TLS port does not speak cleartext HTTP, nor the cleartext port TLS.
func TestTLSPortsApart(t *testing.T) {
	s := start(t, target.Config{TLSListen: "127.0.0.1:0", TLSSelfSigned: true})
	if resp, err := client(transport(t, s, http1)).Get("http://" + s.TLSAddr() + "/x"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("cleartext request to the TLS port: %s, want 400 or an error", resp.Status)
		}
	}
	if _, err := client(transport(t, s, http1)).Get("https://" + s.Addr() + "/x"); err == nil {
		t.Error("TLS request to the cleartext port: want an error")
	}
	if st := s.Stats(); st.Requests != 0 {
		t.Errorf("requests = %d, want 0", st.Requests)
	}
}
