// Package tlsconf makes and loads surge's certificates: a development CA
// (`surge certs init`), certificates for controllers, agents and the CLI
// signed by it (`surge certs issue`), and the TLS configurations of both
// ends of a mutually authenticated gRPC connection. A certificate's role is
// its subject's organizational unit, so the controller can tell an agent
// from a CLI client.
package tlsconf

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/surgeload/surge/internal/pki"
)

// Roles a certificate can carry.
const (
	RoleController = "controller"
	RoleAgent      = "agent"
	RoleCLI        = "cli"
)

// File names inside a certificate directory.
const (
	CAFile    = "ca.crt"
	CAKeyFile = "ca.key"
)

// CertFile and KeyFile name a certificate's files inside a directory.
func CertFile(dir, name string) string { return filepath.Join(dir, name+".crt") }

// KeyFile is the private key file of name in dir.
func KeyFile(dir, name string) string { return filepath.Join(dir, name+".key") }

const (
	caValidity   = 10 * 365 * 24 * time.Hour
	certValidity = 365 * 24 * time.Hour
)

func writePEM(path string, b []byte, mode os.FileMode) error {
	if err := os.WriteFile(path, b, mode); err != nil {
		return fmt.Errorf("tlsconf: write %s: %w", path, err)
	}
	return nil
}

func writeKey(path string, k crypto.PrivateKey) error {
	b, err := pki.KeyPEM(k)
	if err != nil {
		return fmt.Errorf("tlsconf: %w", err)
	}
	return writePEM(path, b, 0o600)
}

// InitCA creates a development CA in dir (ca.crt, ca.key). It refuses to
// overwrite an existing one.
func InitCA(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("tlsconf: %w", err)
	}
	if _, err := os.Stat(filepath.Join(dir, CAFile)); err == nil {
		return fmt.Errorf("tlsconf: %s already exists", filepath.Join(dir, CAFile))
	}
	now := time.Now()
	ca, err := pki.NewCA(pkix.Name{CommonName: "surge development CA", Organization: []string{"surge"}}, now.Add(-time.Hour), now.Add(caValidity))
	if err != nil {
		return fmt.Errorf("tlsconf: %w", err)
	}
	if err := writeKey(filepath.Join(dir, CAKeyFile), ca.Key); err != nil {
		return err
	}
	return writePEM(filepath.Join(dir, CAFile), ca.PEM(), 0o644)
}

// Issue signs a certificate for name with role using the CA in dir and
// writes name.crt and name.key there. The certificate serves and
// authenticates (server and client auth) for localhost, the loopback
// addresses and hosts (names or IPs).
func Issue(dir, name, role string, hosts []string) error {
	if !slices.Contains([]string{RoleController, RoleAgent, RoleCLI}, role) {
		return fmt.Errorf("tlsconf: role %q: want controller, agent or cli", role)
	}
	if name == "" || filepath.Base(name) != name || name == "ca" {
		return fmt.Errorf("tlsconf: name %q: want a plain file name other than \"ca\"", name)
	}
	ca, err := loadCA(dir)
	if err != nil {
		return err
	}
	now := time.Now()
	cert, err := ca.Sign(pki.Leaf{
		Subject:   pkix.Name{CommonName: name, Organization: []string{"surge"}, OrganizationalUnit: []string{role}},
		NotBefore: now.Add(-time.Hour),
		NotAfter:  now.Add(certValidity),
		Usage:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		Hosts:     hosts,
	})
	if err != nil {
		return fmt.Errorf("tlsconf: %w", err)
	}
	if err := writeKey(KeyFile(dir, name), cert.PrivateKey); err != nil {
		return err
	}
	return writePEM(CertFile(dir, name), pki.CertPEM(cert.Certificate[0]), 0o644)
}

func loadCA(dir string) (*pki.CA, error) {
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, CAFile), filepath.Join(dir, CAKeyFile))
	if err != nil {
		return nil, fmt.Errorf("tlsconf: load CA from %s (run `surge certs init` first): %w", dir, err)
	}
	ca, err := pki.Load(pair)
	if err != nil {
		return nil, fmt.Errorf("tlsconf: %w", err)
	}
	return ca, nil
}

// Files are a process's TLS files: the CA that signs its peers, and its
// own certificate and key. The zero value means TLS is off.
type Files struct {
	CA, Cert, Key string
}

// Enabled reports whether any file is set.
func (f Files) Enabled() bool { return f.CA != "" || f.Cert != "" || f.Key != "" }

func (f Files) load() (*x509.CertPool, tls.Certificate, error) {
	if f.CA == "" || f.Cert == "" || f.Key == "" {
		return nil, tls.Certificate{}, errors.New("tlsconf: give all of the CA, certificate and key files")
	}
	b, err := os.ReadFile(f.CA)
	if err != nil {
		return nil, tls.Certificate{}, fmt.Errorf("tlsconf: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, tls.Certificate{}, fmt.Errorf("tlsconf: %s holds no PEM certificate", f.CA)
	}
	cert, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		return nil, tls.Certificate{}, fmt.Errorf("tlsconf: %w", err)
	}
	return pool, cert, nil
}

// Server is the controller's TLS configuration: its certificate, and every
// client must present one signed by the CA (mTLS).
func (f Files) Server() (*tls.Config, error) {
	pool, cert, err := f.load()
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS13,
	}, nil
}

// Client is an agent's or the CLI's TLS configuration: it verifies the
// controller against the CA and presents its own certificate.
func (f Files) Client() (*tls.Config, error) {
	pool, cert, err := f.load()
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		RootCAs:      pool,
		MinVersion:   tls.VersionTLS13,
	}, nil
}

// Role is the role of a verified peer certificate ("" if none).
func Role(c *x509.Certificate) string {
	if c == nil || len(c.Subject.OrganizationalUnit) == 0 {
		return ""
	}
	return c.Subject.OrganizationalUnit[0]
}
