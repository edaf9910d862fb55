package controller

import (
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
)

// Defaults of the fault-handling settings.
const (
	DefaultAgentKeepalive        = 10 * time.Second
	DefaultAgentKeepaliveTimeout = 5 * time.Second
	DefaultAgentLossConfirm      = time.Second
	DefaultRestoreGrace          = 15 * time.Second
	// MaxSendMsgSize bounds one message to an agent or the CLI: an Assign
	// carries the plan (at most maxPlanBytes of YAML, a little more as
	// JSON); agents accept the same.
	MaxSendMsgSize = 16 << 20
)

// applyFaultDefaults fills the fault-handling settings left zero.
func applyFaultDefaults(cfg *Config) {
	if cfg.AgentKeepalive <= 0 {
		cfg.AgentKeepalive = DefaultAgentKeepalive
	}
	if cfg.AgentKeepaliveTimeout <= 0 {
		cfg.AgentKeepaliveTimeout = DefaultAgentKeepaliveTimeout
	}
	if cfg.AgentLossConfirm <= 0 {
		cfg.AgentLossConfirm = DefaultAgentLossConfirm
	}
	if cfg.RestoreGrace <= 0 {
		cfg.RestoreGrace = DefaultRestoreGrace
	}
}

// serverOptions: keepalive (the server pings idle agents, and permits the
// agents' own pings every 5s: at most their client keepalive time of 10s,
// so they are never answered with GOAWAY too_many_pings), message size
// limits, TLS, the auth interceptors and the codec that decodes snapshots
// in place (agentCodec).
func (c *Controller) serverOptions() []grpc.ServerOption {
	opts := []grpc.ServerOption{
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: c.cfg.AgentKeepalive, Timeout: c.cfg.AgentKeepaliveTimeout}),
		grpc.MaxRecvMsgSize(MaxRecvMsgSize),
		grpc.MaxSendMsgSize(MaxSendMsgSize),
		grpc.ChainUnaryInterceptor(c.unaryAuth),
		grpc.ChainStreamInterceptor(c.streamAuth),
		grpc.ForceServerCodecV2(newAgentCodec()),
	}
	if c.cfg.TLS != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(c.cfg.TLS)))
	}
	return opts
}
