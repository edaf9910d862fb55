package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/surgeload/surge/controller/sink"
)

// promOptions are the controller's Prometheus remote-write flags.
type promOptions struct {
	cfg     sink.PromConfig
	headers []string
	caFile  string
}

func promFlags(cmd *cobra.Command, o *promOptions) {
	f := cmd.Flags()
	f.StringVar(&o.cfg.URL, "prometheus-remote-write", "", "write results to a Prometheus remote-write `URL`, e.g. http://127.0.0.1:9090/api/v1/write")
	f.StringVar(&o.cfg.Token, "prometheus-remote-write-token", "", "bearer `TOKEN` for remote write; default $SURGE_PROM_TOKEN")
	f.StringArrayVar(&o.headers, "prometheus-remote-write-header", nil, "header `NAME=VALUE` sent with every remote write (repeatable), e.g. X-Scope-OrgID=staging")
	f.StringVar(&o.caFile, "prometheus-remote-write-ca", "", "PEM `FILE` of the CAs an https remote-write URL is verified against (default: the system's)")
	f.Float64SliceVar(&o.cfg.ClassicBuckets, "prometheus-classic-buckets", nil, "also write the latency as a classic histogram with these upper bounds in seconds, e.g. 0.005,0.01,0.05,0.1,0.5,1 (native histograms are always written)")
}

// config is the sink's configuration, nil without a URL.
func (o promOptions) config() (*sink.PromConfig, error) {
	cfg := o.cfg
	if cfg.URL == "" {
		if len(o.headers) > 0 || o.caFile != "" || len(cfg.ClassicBuckets) > 0 {
			return nil, usageErrorf("the --prometheus-remote-write-* and --prometheus-classic-buckets flags need --prometheus-remote-write")
		}
		return nil, nil
	}
	for _, h := range o.headers {
		k, v, ok := strings.Cut(h, "=")
		if !ok || k == "" || strings.ContainsAny(k, " :\r\n") || strings.ContainsAny(v, "\r\n") {
			return nil, usageErrorf("--prometheus-remote-write-header %q: want NAME=VALUE", h)
		}
		if cfg.Headers == nil {
			cfg.Headers = map[string]string{}
		}
		cfg.Headers[k] = v
	}
	if o.caFile != "" {
		pem, err := os.ReadFile(o.caFile)
		if err != nil {
			return nil, withExitCode(exitUsage, fmt.Errorf("--prometheus-remote-write-ca: %w", err))
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, usageErrorf("--prometheus-remote-write-ca %s: no PEM certificate in it", o.caFile)
		}
		cfg.TLS = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	if err := cfg.Validate(); err != nil {
		return nil, withExitCode(exitUsage, err)
	}
	return &cfg, nil
}
