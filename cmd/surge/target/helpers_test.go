package target_test

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"testing"
	"time"

	"github.com/surgeload/surge/cmd/surge/target"
)

// transport is a client transport speaking the given protocols, trusting
// the target's self-signed CA if it has one; closed when the test ends.
func transport(t *testing.T, s *target.Server, protos ...func(*http.Protocols)) *http.Transport {
	t.Helper()
	p := new(http.Protocols)
	for _, set := range protos {
		set(p)
	}
	tr := &http.Transport{Protocols: p, MaxIdleConnsPerHost: 100}
	if ca := s.CACertPEM(); ca != nil {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(ca) {
			t.Fatal("CACertPEM: no certificate")
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	}
	t.Cleanup(tr.CloseIdleConnections)
	return tr
}

func http1(p *http.Protocols) { p.SetHTTP1(true) }
func h2(p *http.Protocols)    { p.SetHTTP2(true) }
func h2c(p *http.Protocols)   { p.SetUnencryptedHTTP2(true) }

func client(tr *http.Transport) *http.Client {
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}
