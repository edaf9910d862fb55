package tlsconf_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/surgeload/surge/cluster/tlsconf"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// newCA makes a CA in a fresh directory and issues name → role there.
func newCA(t *testing.T, roles map[string]string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "certs")
	if err := tlsconf.InitCA(dir); err != nil {
		t.Fatal(err)
	}
	for name, role := range roles {
		if err := tlsconf.Issue(dir, name, role, nil); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func files(dir, caDir, name string) tlsconf.Files {
	return tlsconf.Files{CA: filepath.Join(caDir, tlsconf.CAFile), Cert: tlsconf.CertFile(dir, name), Key: tlsconf.KeyFile(dir, name)}
}

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s: no PEM", path)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestInitCA(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	if err := tlsconf.InitCA(dir); err != nil {
		t.Fatal(err)
	}
	ca := readCert(t, filepath.Join(dir, tlsconf.CAFile))
	if !ca.IsCA || ca.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Errorf("CA cert: IsCA %v, key usage %v", ca.IsCA, ca.KeyUsage)
	}
	fi, err := os.Stat(filepath.Join(dir, tlsconf.CAKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("CA key mode %v, want 0600", fi.Mode().Perm())
	}
	if err := tlsconf.InitCA(dir); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("second InitCA = %v, want an already-exists error", err)
	}
	if got := readCert(t, filepath.Join(dir, tlsconf.CAFile)); !got.Equal(ca) {
		t.Error("second InitCA replaced the CA")
	}
}

func TestIssue(t *testing.T) {
	dir := newCA(t, nil)
	if err := tlsconf.Issue(dir, "agent-1", tlsconf.RoleAgent, []string{"10.77.0.5", "agent.example", ""}); err != nil {
		t.Fatal(err)
	}
	c := readCert(t, tlsconf.CertFile(dir, "agent-1"))
	if tlsconf.Role(c) != tlsconf.RoleAgent || c.Subject.CommonName != "agent-1" {
		t.Errorf("subject %v, role %q", c.Subject, tlsconf.Role(c))
	}
	if !slices.Equal(c.DNSNames, []string{"localhost", "agent.example"}) {
		t.Errorf("DNS names %v", c.DNSNames)
	}
	var ips []string
	for _, ip := range c.IPAddresses {
		ips = append(ips, ip.String())
	}
	for _, want := range []string{"127.0.0.1", "::1", "10.77.0.5"} {
		if !slices.Contains(ips, want) {
			t.Errorf("IPs %v lack %s", ips, want)
		}
	}
	pool := x509.NewCertPool()
	pool.AddCert(readCert(t, filepath.Join(dir, tlsconf.CAFile)))
	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		if _, err := c.Verify(x509.VerifyOptions{Roots: pool, DNSName: "agent.example", KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
			t.Errorf("verify for %v: %v", usage, err)
		}
	}

	bad := []struct{ name, role, want string }{
		{"x", "admin", "role"},
		{"", tlsconf.RoleCLI, "name"},
		{"ca", tlsconf.RoleCLI, "name"},
		{"a/b", tlsconf.RoleCLI, "name"},
	}
	for _, b := range bad {
		if err := tlsconf.Issue(dir, b.name, b.role, nil); err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("Issue(%q, %q) = %v, want an error about the %s", b.name, b.role, err, b.want)
		}
	}
	if err := tlsconf.Issue(t.TempDir(), "x", tlsconf.RoleCLI, nil); err == nil || !strings.Contains(err.Error(), "certs init") {
		t.Errorf("Issue without a CA = %v, want a hint to run certs init", err)
	}
}

func TestRole(t *testing.T) {
	if got := tlsconf.Role(nil); got != "" {
		t.Errorf("Role(nil) = %q", got)
	}
	if got := tlsconf.Role(&x509.Certificate{}); got != "" {
		t.Errorf("Role(no OU) = %q", got)
	}
}

func TestFilesErrors(t *testing.T) {
	dir := newCA(t, map[string]string{"c": tlsconf.RoleCLI})
	if (tlsconf.Files{}).Enabled() {
		t.Error("zero Files enabled")
	}
	if !(tlsconf.Files{Key: "k"}).Enabled() {
		t.Error("Files with a key not enabled")
	}
	notPEM := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	good := files(dir, dir, "c")
	cases := map[string]tlsconf.Files{
		"missing key":  {CA: good.CA, Cert: good.Cert},
		"missing CA":   {Cert: good.Cert, Key: good.Key},
		"no such CA":   {CA: filepath.Join(dir, "nope.crt"), Cert: good.Cert, Key: good.Key},
		"CA not PEM":   {CA: notPEM, Cert: good.Cert, Key: good.Key},
		"key mismatch": {CA: good.CA, Cert: good.Cert, Key: filepath.Join(dir, tlsconf.CAKeyFile)},
	}
	for name, f := range cases {
		if _, err := f.Server(); err == nil {
			t.Errorf("%s: Server() succeeded", name)
		}
		if _, err := f.Client(); err == nil {
			t.Errorf("%s: Client() succeeded", name)
		}
	}
}

// handshake runs a TLS handshake between server and client configs over an
// in-memory pipe; it returns the server's error and the role of the
// client's verified certificate.
func handshake(t *testing.T, server, client *tls.Config) (string, error) {
	t.Helper()
	sc, cc := net.Pipe()
	defer sc.Close()
	defer cc.Close()
	client = client.Clone()
	client.ServerName = "localhost"
	type result struct {
		role string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		s := tls.Server(sc, server)
		err := s.Handshake()
		var role string
		if st := s.ConnectionState(); err == nil && len(st.VerifiedChains) > 0 {
			role = tlsconf.Role(st.VerifiedChains[0][0])
		}
		// Close so a client still waiting for the server's verdict on its
		// certificate (TLS 1.3 sends it after the client's Finished) sees it.
		_ = s.Close()
		done <- result{role, err}
	}()
	c := tls.Client(cc, client)
	cerr := c.Handshake()
	if cerr == nil {
		// Under TLS 1.3 the client finishes first; a rejection of its
		// certificate shows up on its first read.
		_, cerr = c.Read(make([]byte, 1))
		if errors.Is(cerr, net.ErrClosed) || cerr != nil && strings.Contains(cerr.Error(), "EOF") {
			cerr = nil
		}
	}
	_ = c.Close()
	r := <-done
	return r.role, errors.Join(r.err, cerr)
}

func TestMutualTLS(t *testing.T) {
	dir := newCA(t, map[string]string{"ctl": tlsconf.RoleController, "ag": tlsconf.RoleAgent, "cli": tlsconf.RoleCLI})
	other := newCA(t, map[string]string{"rogue": tlsconf.RoleAgent, "fake-ctl": tlsconf.RoleController})
	server, err := files(dir, dir, "ctl").Server()
	if err != nil {
		t.Fatal(err)
	}
	if server.ClientAuth != tls.RequireAndVerifyClientCert || server.MinVersion < tls.VersionTLS13 {
		t.Errorf("server: client auth %v, min version %x", server.ClientAuth, server.MinVersion)
	}
	for name, want := range map[string]string{"ag": tlsconf.RoleAgent, "cli": tlsconf.RoleCLI} {
		client, err := files(dir, dir, name).Client()
		if err != nil {
			t.Fatal(err)
		}
		role, err := handshake(t, server, client)
		if err != nil || role != want {
			t.Errorf("%s: handshake role %q, err %v; want %q", name, role, err, want)
		}
	}

	// A client certificate from another CA (trusting ours, so only its own
	// certificate is wrong), and no client certificate at all.
	rogue, err := files(other, dir, "rogue").Client()
	if err != nil {
		t.Fatal(err)
	}
	if role, err := handshake(t, server, rogue); err == nil {
		t.Errorf("a certificate from another CA was accepted (role %q)", role)
	}
	noCert := &tls.Config{RootCAs: rogue.RootCAs, MinVersion: tls.VersionTLS13}
	if role, err := handshake(t, server, noCert); err == nil {
		t.Errorf("a client without a certificate was accepted (role %q)", role)
	}

	// A client refuses a controller whose certificate another CA signed.
	fakeServer, err := files(other, other, "fake-ctl").Server()
	if err != nil {
		t.Fatal(err)
	}
	agent, err := files(dir, dir, "ag").Client()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := handshake(t, fakeServer, agent); err == nil {
		t.Error("an agent accepted a controller from another CA")
	}
}
