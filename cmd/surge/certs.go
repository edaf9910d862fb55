package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/surgeload/surge/cluster/tlsconf"
)

// tlsFlags adds --tls-ca, --tls-cert and --tls-key.
func tlsFlags(cmd *cobra.Command, f *tlsconf.Files) {
	fl := cmd.Flags()
	fl.StringVar(&f.CA, "tls-ca", "", "CA certificate `FILE`: with --tls-cert and --tls-key, use mTLS (see `surge certs`)")
	fl.StringVar(&f.Cert, "tls-cert", "", "this process's certificate `FILE`")
	fl.StringVar(&f.Key, "tls-key", "", "this process's private key `FILE`")
}

// gossipSecurityFlags adds --gossip-key and --gossip-label.
func gossipSecurityFlags(cmd *cobra.Command, key, label *string) {
	cmd.Flags().StringVar(key, "gossip-key", "", "base64 gossip encryption key of 16, 24 or 32 bytes (same on every node)")
	cmd.Flags().StringVar(label, "gossip-label", "", "cluster label: nodes with another label are ignored")
}

func parseGossipKey(s string) ([]byte, error) {
	if s == "" {
		return nil, nil
	}
	k, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, usageErrorf("--gossip-key: not base64: %v", err)
	}
	if n := len(k); n != 16 && n != 24 && n != 32 {
		return nil, usageErrorf("--gossip-key: %d bytes, want 16, 24 or 32", n)
	}
	return k, nil
}

func newCertsCmd(e env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "certs",
		Short: "Make a development CA and certificates for mTLS",
	}
	var dir string
	initCmd := &cobra.Command{
		Use:   "init",
		Short: "Create a development CA (ca.crt, ca.key) in --dir",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return certsInit(dir, e.stdout)
		},
	}
	initCmd.Flags().StringVar(&dir, "dir", "certs", "`DIR` of the CA and certificates")
	var name, role string
	var hosts []string
	issueCmd := &cobra.Command{
		Use:   "issue",
		Short: "Issue a certificate (NAME.crt, NAME.key) signed by the CA in --dir",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return certsIssue(dir, name, role, hosts, e.stdout)
		},
	}
	f := issueCmd.Flags()
	f.StringVar(&dir, "dir", "certs", "`DIR` of the CA and certificates")
	f.StringVar(&name, "name", "", "certificate `NAME` (file name)")
	f.StringVar(&role, "role", "", "role: controller, agent or cli")
	f.StringSliceVar(&hosts, "host", nil, "extra host names or IPs the certificate is valid for (loopback always is)")
	_ = issueCmd.MarkFlagRequired("name")
	_ = issueCmd.MarkFlagRequired("role")
	cmd.AddCommand(initCmd, issueCmd)
	return cmd
}

func certsInit(dir string, out io.Writer) error {
	if err := tlsconf.InitCA(dir); err != nil {
		return err
	}
	_, err := fmt.Fprintf(out, "development CA written to %s/%s (key %s/%s: keep it private)\n", dir, tlsconf.CAFile, dir, tlsconf.CAKeyFile)
	return err
}

func certsIssue(dir, name, role string, hosts []string, out io.Writer) error {
	if err := tlsconf.Issue(dir, name, role, hosts); err != nil {
		return withExitCode(exitUsage, err)
	}
	_, err := fmt.Fprintf(out, "%s certificate written to %s and %s\n", role, tlsconf.CertFile(dir, name), tlsconf.KeyFile(dir, name))
	return err
}

// clientAuth is how a CLI command proves itself to the controller: mTLS
// with a certificate of the cli role, and a bearer token. Each flag left
// empty falls back to its environment variable (clientAuthEnv).
type clientAuth struct {
	files  tlsconf.Files
	token  string
	getenv func(string) string
}

// The environment variables behind the CLI's credential flags.
const (
	envTLSCA   = "SURGE_TLS_CA"
	envTLSCert = "SURGE_TLS_CERT"
	envTLSKey  = "SURGE_TLS_KEY"
	envToken   = "SURGE_TOKEN"
)

// clientAuthFlags adds --tls-ca, --tls-cert, --tls-key and --token to a
// command that calls the controller, as persistent flags. Their defaults
// stay empty in the help (a token must not show there): the environment is
// read when the command dials.
func clientAuthFlags(cmd *cobra.Command, e env) *clientAuth {
	a := &clientAuth{getenv: e.getenv}
	fl := cmd.PersistentFlags()
	fl.StringVar(&a.files.CA, "tls-ca", "", "CA certificate `FILE` the controller's certificate is checked against; with --tls-cert and --tls-key, use mTLS (env "+envTLSCA+")")
	fl.StringVar(&a.files.Cert, "tls-cert", "", "client certificate `FILE` with the cli role, from `surge certs issue --role cli` (env "+envTLSCert+")")
	fl.StringVar(&a.files.Key, "tls-key", "", "private key `FILE` of --tls-cert (env "+envTLSKey+")")
	fl.StringVar(&a.token, "token", "", "bearer `TOKEN` the controller requires (env "+envToken+")")
	return a
}

// resolved is a with each empty value taken from the environment.
func (a *clientAuth) resolved() (tlsconf.Files, string) {
	or := func(v, key string) string {
		if v != "" || a.getenv == nil {
			return v
		}
		return a.getenv(key)
	}
	return tlsconf.Files{CA: or(a.files.CA, envTLSCA), Cert: or(a.files.Cert, envTLSCert), Key: or(a.files.Key, envTLSKey)},
		or(a.token, envToken)
}

// dialOptions are the transport credentials and per-call token of a; a nil
// a dials in clear without a token.
func (a *clientAuth) dialOptions() ([]grpc.DialOption, error) {
	if a == nil {
		return []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, nil
	}
	files, token := a.resolved()
	creds := insecure.NewCredentials()
	secure := false
	if files.Enabled() {
		cfg, err := files.Client()
		if err != nil {
			return nil, fmt.Errorf("--tls-ca, --tls-cert, --tls-key (or %s, %s, %s): %w", envTLSCA, envTLSCert, envTLSKey, err)
		}
		creds, secure = credentials.NewTLS(cfg), true
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(creds)}
	if token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(bearer{token: token, secure: secure}))
	}
	return opts, nil
}

// bearer sends "authorization: Bearer <token>" with every call.
type bearer struct {
	token  string
	secure bool
}

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + b.token}, nil
}

// RequireTransportSecurity: the token may cross loopback in clear; with
// TLS configured it always travels encrypted.
func (b bearer) RequireTransportSecurity() bool { return b.secure }
