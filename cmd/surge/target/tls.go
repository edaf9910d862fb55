package target

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"time"
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
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("ca key: %w", err)
	}
	caTmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: "surge target CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(selfSignedValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	if caTmpl.SerialNumber, err = serial(); err != nil {
		return tls.Certificate{}, nil, err
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("ca certificate: %w", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("ca certificate: %w", err)
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("server key: %w", err)
	}
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: "surge target"},
		NotBefore:   caTmpl.NotBefore,
		NotAfter:    caTmpl.NotAfter,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	for _, h := range hosts {
		switch ip := net.ParseIP(h); {
		case ip != nil:
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		case h == "":
			return tls.Certificate{}, nil, errors.New("--tls-host: empty name")
		default:
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	if tmpl.SerialNumber, err = serial(); err != nil {
		return tls.Certificate{}, nil, err
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("server certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("server certificate: %w", err)
	}
	cert := tls.Certificate{Certificate: [][]byte{der, caDER}, PrivateKey: key, Leaf: leaf}
	return cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), nil
}

func serial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("serial number: %w", err)
	}
	return n, nil
}
