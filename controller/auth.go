package controller

import (
	"context"
	"crypto/subtle"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/surgeload/surge/cluster/tlsconf"
)

// authorize checks a call: with TLS on, the peer's verified certificate
// must carry the role the service is for (agent for AgentGateway, cli or
// controller for Runs and Agents); with a token set, Runs and Agents calls
// must carry it as "authorization: Bearer <token>".
func (c *Controller) authorize(ctx context.Context, method string) error {
	agentCall := strings.HasPrefix(method, "/surge.v1.AgentGateway/")
	if c.cfg.TLS != nil {
		role := ""
		if p, ok := peer.FromContext(ctx); ok {
			if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(ti.State.VerifiedChains) > 0 && len(ti.State.VerifiedChains[0]) > 0 {
				role = tlsconf.Role(ti.State.VerifiedChains[0][0])
			}
		}
		switch {
		case agentCall && role != tlsconf.RoleAgent:
			return status.Errorf(codes.PermissionDenied, "agent streams need a client certificate with the agent role, got %q", role)
		case !agentCall && role != tlsconf.RoleCLI && role != tlsconf.RoleController:
			return status.Errorf(codes.PermissionDenied, "CLI calls need a client certificate with the cli role, got %q", role)
		}
	}
	if agentCall || c.cfg.Token == "" {
		return nil
	}
	md, _ := metadata.FromIncomingContext(ctx)
	for _, v := range md.Get("authorization") {
		tok, ok := strings.CutPrefix(v, "Bearer ")
		if ok && subtle.ConstantTimeCompare([]byte(tok), []byte(c.cfg.Token)) == 1 {
			return nil
		}
	}
	return status.Error(codes.Unauthenticated, "a valid bearer token is required (--token or SURGE_TOKEN)")
}

func (c *Controller) unaryAuth(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if err := c.authorize(ctx, info.FullMethod); err != nil {
		c.log.Warn("call refused", "method", info.FullMethod, "err", err)
		return nil, err
	}
	return h(ctx, req)
}

func (c *Controller) streamAuth(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	if err := c.authorize(ss.Context(), info.FullMethod); err != nil {
		c.log.Warn("stream refused", "method", info.FullMethod, "err", err)
		return err
	}
	return h(srv, ss)
}
