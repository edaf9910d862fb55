package target

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/surgeload/surge/internal/pki"
)

// selfSignedValidity is how long a TLSSelfSigned certificate is valid.
const selfSignedValidity = 365 * 24 * time.Hour

// tlsConfig checks the TLS fields and builds the server's TLS
// configuration: nil without TLSListen. caPEM is the CA of a self-signed
// certificate.
func (cfg Config) tlsConfig() (_ *tls.Config, caPEM []byte, _ error) {
	hasFiles := cfg.TLSCert != "" || cfg.TLSKey != ""
	switch {
	case cfg.TLSListen == "" && (hasFiles || cfg.TLSSelfSigned):
		return nil, nil, errors.New("target: --tls-cert/--tls-key/--tls-self-signed: give --tls-listen ADDR for the TLS port")
	case cfg.TLSListen == "" && (cfg.TLSCAOut != "" || len(cfg.TLSHosts) > 0):
		return nil, nil, errors.New("target: --tls-ca-out/--tls-host: give --tls-listen ADDR and --tls-self-signed")
	case cfg.TLSListen == "":
		return nil, nil, nil
	case hasFiles && cfg.TLSSelfSigned:
		return nil, nil, errors.New("target: --tls-self-signed: give it or --tls-cert/--tls-key, not both")
	case !hasFiles && !cfg.TLSSelfSigned:
		return nil, nil, errors.New("target: --tls-listen: give --tls-cert and --tls-key, or --tls-self-signed")
	case hasFiles && (cfg.TLSCert == "" || cfg.TLSKey == ""):
		return nil, nil, errors.New("target: --tls-cert/--tls-key: give both")
	case !cfg.TLSSelfSigned && (cfg.TLSCAOut != "" || len(cfg.TLSHosts) > 0):
		return nil, nil, errors.New("target: --tls-ca-out/--tls-host: only with --tls-self-signed")
	}
	var cert tls.Certificate
	var err error
	if cfg.TLSSelfSigned {
		cert, caPEM, err = selfSigned(cfg.TLSHosts, time.Now())
		if err != nil {
			return nil, nil, fmt.Errorf("target: --tls-self-signed: %w", err)
		}
	} else if cert, err = tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey); err != nil {
		return nil, nil, fmt.Errorf("target: --tls-cert/--tls-key: %w", err)
	}
	// NextProtos must name h2 before http.Server's first Serve call: the
	// cleartext Serve may be the one that sets HTTP/2 up, and it does so
	// only for a TLS config that asks for h2.
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
		NextProtos:   []string{"h2", "http/1.1"},
	}, caPEM, nil
}

// selfSigned makes a CA and a server certificate it signs for localhost,
// 127.0.0.1, ::1 and hosts (names or IP addresses), valid from an hour
// before now for selfSignedValidity. It returns the certificate with its
// key, and the CA's PEM.
func selfSigned(hosts []string, now time.Time) (tls.Certificate, []byte, error) {
	if slices.Contains(hosts, "") {
		return tls.Certificate{}, nil, errors.New("--tls-host: empty name")
	}
	from, to := now.Add(-time.Hour), now.Add(selfSignedValidity)
	ca, err := pki.NewCA(pkix.Name{CommonName: "surge target CA"}, from, to)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	cert, err := ca.Sign(pki.Leaf{
		Subject:   pkix.Name{CommonName: "surge target"},
		NotBefore: from,
		NotAfter:  to,
		Usage:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		Hosts:     hosts,
	})
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	cert.Certificate = append(cert.Certificate, ca.DER)
	return cert, ca.PEM(), nil
}
