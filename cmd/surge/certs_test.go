package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/surgeload/surge/cluster/tlsconf"
	surgev1 "github.com/surgeload/surge/gen/surge/v1"
)

// startSecure serves f over mTLS with the controller certificate in dir,
// requiring a client certificate with the cli role and "Bearer token" on
// every call, as the controller does.
func (f *fakeController) startSecure(t *testing.T, dir, token string) string {
	t.Helper()
	cfg, err := tlsconf.Files{CA: filepath.Join(dir, tlsconf.CAFile), Cert: tlsconf.CertFile(dir, "ctl"), Key: tlsconf.KeyFile(dir, "ctl")}.Server()
	if err != nil {
		t.Fatal(err)
	}
	check := func(ctx context.Context) error {
		role := ""
		if p, ok := peer.FromContext(ctx); ok {
			if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(ti.State.VerifiedChains) > 0 {
				role = tlsconf.Role(ti.State.VerifiedChains[0][0])
			}
		}
		if role != tlsconf.RoleCLI {
			return status.Errorf(codes.PermissionDenied, "client certificate role %q", role)
		}
		md, _ := metadata.FromIncomingContext(ctx)
		if got := md.Get("authorization"); len(got) != 1 || got[0] != "Bearer "+token {
			return status.Errorf(codes.Unauthenticated, "a valid bearer token is required")
		}
		return nil
	}
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(cfg)),
		grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			if err := check(ctx); err != nil {
				return nil, err
			}
			return h(ctx, req)
		}),
		grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			if err := check(ss.Context()); err != nil {
				return err
			}
			return h(srv, ss)
		}))
	surgev1.RegisterRunsServer(srv, f)
	surgev1.RegisterAgentsServer(srv, agentsServer{f: f})
	return serveGRPC(t, srv)
}

// The client commands take their credentials from --tls-ca, --tls-cert,
// --tls-key and --token, each defaulting to its environment variable; a
// flag wins over the environment.
func TestClientCredentialFlags(t *testing.T) {
	dir := t.TempDir()
	if err := tlsconf.InitCA(dir); err != nil {
		t.Fatal(err)
	}
	for name, role := range map[string]string{"ctl": tlsconf.RoleController, "cli": tlsconf.RoleCLI, "agt": tlsconf.RoleAgent} {
		if err := tlsconf.Issue(dir, name, role, nil); err != nil {
			t.Fatal(err)
		}
	}
	const token = "s3cret-token"
	f := &fakeController{summary: summary("finished", "pass", true)}
	addr := f.startSecure(t, dir, token)
	ca := filepath.Join(dir, tlsconf.CAFile)
	tlsFlags := []string{"--tls-ca", ca, "--tls-cert", tlsconf.CertFile(dir, "cli"), "--tls-key", tlsconf.KeyFile(dir, "cli")}
	tlsEnv := map[string]string{"SURGE_TLS_CA": ca, "SURGE_TLS_CERT": tlsconf.CertFile(dir, "cli"), "SURGE_TLS_KEY": tlsconf.KeyFile(dir, "cli")}
	with := func(m map[string]string, kv ...string) map[string]string {
		out := map[string]string{}
		for k, v := range m {
			out[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	planFile := writeFile(t, "p.yaml", goodPlan)
	cases := []struct {
		name   string
		vars   map[string]string
		args   []string
		code   int
		stderr string // a substring of stderr when the command fails
	}{
		{"run with flags", nil, append([]string{"run", planFile, "--quiet", "--token", token}, tlsFlags...), 0, ""},
		{"runs with flags", nil, append([]string{"runs", "--token", token}, tlsFlags...), 0, ""},
		{"agents from env", with(tlsEnv, "SURGE_TOKEN", token), []string{"agents"}, 0, ""},
		{"report: flag wins over env", with(tlsEnv, "SURGE_TOKEN", "stale"), []string{"report", "r-1", "--token", token}, 0, ""},
		{"stop: tls flags win over env", with(map[string]string{"SURGE_TLS_CERT": tlsconf.CertFile(dir, "agt"), "SURGE_TLS_KEY": tlsconf.KeyFile(dir, "agt")}, "SURGE_TOKEN", token),
			append([]string{"stop", "r-1"}, tlsFlags...), 0, ""},
		{"compare with flags", nil, append([]string{"compare", "r-1", "r-2", "--token", token}, tlsFlags...), -1, ""},
		{"wrong token from env", with(tlsEnv, "SURGE_TOKEN", "guess"), []string{"runs"}, 1, "bearer token"},
		{"no token", tlsEnv, []string{"runs"}, 1, "bearer token"},
		{"agent certificate", nil, []string{"runs", "--token", token, "--tls-ca", ca, "--tls-cert", tlsconf.CertFile(dir, "agt"), "--tls-key", tlsconf.KeyFile(dir, "agt")}, 1, "role \"agent\""},
		{"no TLS", map[string]string{"SURGE_TOKEN": token}, []string{"runs"}, 1, "unavailable"},
		{"CA only", nil, []string{"runs", "--tls-ca", ca}, 2, "--tls-ca, --tls-cert, --tls-key (or SURGE_TLS_CA, SURGE_TLS_CERT, SURGE_TLS_KEY)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := cli(t, tc.vars, append(tc.args, "--controller", addr)...)
			if tc.code == -1 { // the fake has no Compare: authenticated, then unimplemented
				if r.code != 1 || !strings.Contains(r.stderr, "Compare not implemented") {
					t.Errorf("want the call to reach the controller:\n%s", r)
				}
				return
			}
			if r.code != tc.code || (tc.stderr != "" && !strings.Contains(r.stderr, tc.stderr)) {
				t.Errorf("want exit %d and %q in stderr:\n%s", tc.code, tc.stderr, r)
			}
		})
	}

	// Help names the variable behind each flag and never shows a value.
	for _, cmd := range []string{"run", "agents", "runs", "report", "stop", "compare"} {
		r := cli(t, with(tlsEnv, "SURGE_TOKEN", token), cmd, "--help")
		for _, want := range []string{"--token TOKEN", "(env SURGE_TOKEN)", "--tls-ca FILE", "(env SURGE_TLS_CA)", "(env SURGE_TLS_CERT)", "(env SURGE_TLS_KEY)"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("surge %s --help lacks %q:\n%s", cmd, want, r.stdout)
			}
		}
		if strings.Contains(r.stdout, token) || strings.Contains(r.stdout, ca) {
			t.Errorf("surge %s --help shows a value from the environment:\n%s", cmd, r.stdout)
		}
	}
}
