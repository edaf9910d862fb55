package pki

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"testing"
	"time"
)

func TestSignedLeafVerifiesAgainstTheCA(t *testing.T) {
	now := time.Now()
	ca, err := NewCA(pkix.Name{CommonName: "test ca"}, now.Add(-time.Hour), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	c, err := ca.Sign(Leaf{Subject: pkix.Name{CommonName: "srv"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		Usage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, Hosts: []string{"example.test", "10.1.2.3", ""}})
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"localhost", "127.0.0.1", "::1", "example.test", "10.1.2.3"} {
		if _, err := c.Leaf.Verify(x509.VerifyOptions{DNSName: host, Roots: ca.Pool()}); err != nil {
			t.Errorf("verify for %s: %v", host, err)
		}
	}
	if _, err := c.Leaf.Verify(x509.VerifyOptions{DNSName: "other.test", Roots: ca.Pool()}); err == nil {
		t.Error("verify for a host not asked for: want an error")
	}
	other, err := NewCA(pkix.Name{CommonName: "other ca"}, now.Add(-time.Hour), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Leaf.Verify(x509.VerifyOptions{DNSName: "localhost", Roots: other.Pool()}); err == nil {
		t.Error("verify against another CA: want an error")
	}
}
