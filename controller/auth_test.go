package controller

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"log/slog"
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

// peerCtx is a context whose peer presented a verified certificate with
// role (no certificate when role is "-"; an unverified one when role is
// "unverified").
func peerCtx(role string) context.Context {
	ctx := context.Background()
	switch role {
	case "-":
		return ctx
	case "unverified":
		st := tls.ConnectionState{PeerCertificates: []*x509.Certificate{{Subject: pkix.Name{OrganizationalUnit: []string{tlsconf.RoleAgent}}}}}
		return peer.NewContext(ctx, &peer.Peer{AuthInfo: credentials.TLSInfo{State: st}})
	}
	cert := &x509.Certificate{Subject: pkix.Name{CommonName: "x", OrganizationalUnit: []string{role}}}
	st := tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{cert}}}
	return peer.NewContext(ctx, &peer.Peer{AuthInfo: credentials.TLSInfo{State: st}})
}

func withToken(ctx context.Context, v ...string) context.Context {
	md := metadata.MD{}
	for _, s := range v {
		md.Append("authorization", s)
	}
	return metadata.NewIncomingContext(ctx, md)
}

func TestAuthorize(t *testing.T) {
	const (
		agentCall = surgev1.AgentGateway_Connect_FullMethodName
		runsCall  = surgev1.Runs_Histograms_FullMethodName
		listCall  = surgev1.Agents_List_FullMethodName
	)
	tlsOn := &tls.Config{}
	cases := []struct {
		name   string
		tls    *tls.Config
		token  string
		ctx    context.Context
		method string
		want   codes.Code
	}{
		{"open: agent", nil, "", context.Background(), agentCall, codes.OK},
		{"open: cli", nil, "", context.Background(), runsCall, codes.OK},

		{"token: none given", nil, "tok", context.Background(), runsCall, codes.Unauthenticated},
		{"token: wrong", nil, "tok", withToken(context.Background(), "Bearer nope"), runsCall, codes.Unauthenticated},
		{"token: no Bearer prefix", nil, "tok", withToken(context.Background(), "tok"), listCall, codes.Unauthenticated},
		{"token: prefix of the token", nil, "tok", withToken(context.Background(), "Bearer to"), runsCall, codes.Unauthenticated},
		{"token: right", nil, "tok", withToken(context.Background(), "Bearer tok"), runsCall, codes.OK},
		{"token: right among others", nil, "tok", withToken(context.Background(), "Bearer x", "Bearer tok"), listCall, codes.OK},
		{"token: agents need none", nil, "tok", context.Background(), agentCall, codes.OK},

		{"tls: agent role on agent stream", tlsOn, "", peerCtx(tlsconf.RoleAgent), agentCall, codes.OK},
		{"tls: cli role on agent stream", tlsOn, "", peerCtx(tlsconf.RoleCLI), agentCall, codes.PermissionDenied},
		{"tls: controller role on agent stream", tlsOn, "", peerCtx(tlsconf.RoleController), agentCall, codes.PermissionDenied},
		{"tls: no peer on agent stream", tlsOn, "", peerCtx("-"), agentCall, codes.PermissionDenied},
		{"tls: unverified cert on agent stream", tlsOn, "", peerCtx("unverified"), agentCall, codes.PermissionDenied},
		{"tls: cli role on runs", tlsOn, "", peerCtx(tlsconf.RoleCLI), runsCall, codes.OK},
		{"tls: controller role on agents", tlsOn, "", peerCtx(tlsconf.RoleController), listCall, codes.OK},
		{"tls: agent role on runs", tlsOn, "", peerCtx(tlsconf.RoleAgent), runsCall, codes.PermissionDenied},
		{"tls: unknown role on runs", tlsOn, "", peerCtx("admin"), runsCall, codes.PermissionDenied},

		{"tls+token: cli without token", tlsOn, "tok", peerCtx(tlsconf.RoleCLI), runsCall, codes.Unauthenticated},
		{"tls+token: cli with token", tlsOn, "tok", withToken(peerCtx(tlsconf.RoleCLI), "Bearer tok"), runsCall, codes.OK},
		{"tls+token: token without cli cert", tlsOn, "tok", withToken(peerCtx(tlsconf.RoleAgent), "Bearer tok"), runsCall, codes.PermissionDenied},
		{"tls+token: agent without token", tlsOn, "tok", peerCtx(tlsconf.RoleAgent), agentCall, codes.OK},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := &Controller{cfg: Config{TLS: tc.tls, Token: tc.token}, log: slog.New(slog.DiscardHandler)}
			err := c.authorize(tc.ctx, tc.method)
			if got := status.Code(err); got != tc.want {
				t.Fatalf("authorize = %v (%v), want %v", got, err, tc.want)
			}
		})
	}
}

type ctxStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s ctxStream) Context() context.Context { return s.ctx }

func TestAuthInterceptors(t *testing.T) {
	c := &Controller{cfg: Config{Token: "tok"}, log: slog.New(slog.DiscardHandler)}
	info := &grpc.UnaryServerInfo{FullMethod: surgev1.Runs_Histograms_FullMethodName}
	called := 0
	h := func(context.Context, any) (any, error) { called++; return "ok", nil }
	if _, err := c.unaryAuth(context.Background(), nil, info, h); status.Code(err) != codes.Unauthenticated || called != 0 {
		t.Errorf("unary without token: err %v, handler called %d times", err, called)
	}
	if res, err := c.unaryAuth(withToken(context.Background(), "Bearer tok"), nil, info, h); err != nil || res != "ok" || called != 1 {
		t.Errorf("unary with token: %v, %v, handler called %d times", res, err, called)
	}

	c.cfg.TLS = &tls.Config{}
	sinfo := &grpc.StreamServerInfo{FullMethod: surgev1.AgentGateway_Connect_FullMethodName}
	scalled := 0
	sh := func(any, grpc.ServerStream) error { scalled++; return nil }
	if err := c.streamAuth(nil, ctxStream{ctx: peerCtx(tlsconf.RoleCLI)}, sinfo, sh); status.Code(err) != codes.PermissionDenied || scalled != 0 {
		t.Errorf("stream with a cli cert: err %v, handler called %d times", err, scalled)
	}
	if err := c.streamAuth(nil, ctxStream{ctx: peerCtx(tlsconf.RoleAgent)}, sinfo, sh); err != nil || scalled != 1 {
		t.Errorf("stream with an agent cert: err %v, handler called %d times", err, scalled)
	}
}
