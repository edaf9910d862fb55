// Package agent runs a surge agent: it joins the cluster's gossip, dials the
// controller's AgentGateway, and runs the shares of plans it is assigned,
// generating open- and closed-model HTTP load, recording every latency in
// HdrHistograms and streaming interval snapshots to the controller.
package agent

import (
	"crypto/tls"
	"log/slog"
	"time"

	"github.com/surgeload/surge/cluster"
)

// Config configures an agent. Zero values take the documented defaults.
type Config struct {
	// ID is the agent's stable identity; required.
	ID string
	// Region and Zone label the agent; Region is required.
	Region string
	Zone   string
	// Controller, if set, is the controller's gRPC address and overrides
	// discovery through gossip.
	Controller string
	// Gossip is the agent's memberlist node; its key and label must match
	// the controller's.
	Gossip cluster.Gossip
	// Allow lists the hosts and CIDRs this agent may send traffic to,
	// checked at dial time on the resolved IP. Empty: loopback only.
	Allow []string
	// MaxRate and MaxVUs are the capacity the agent declares and enforces;
	// zero means unlimited.
	MaxRate float64
	MaxVUs  int64
	// ReconnectMin/Max bound the backoff between controller dial attempts;
	// defaults 100ms and 5s.
	ReconnectMin, ReconnectMax time.Duration
	// Logger; default discards.
	Logger *slog.Logger
	// Version is reported in Hello.
	Version string

	// OnSample, if set, is called with every latency the agent records (in
	// microseconds, before clamping). It runs on the hot path; it exists for
	// tests that check the controller's merge against raw values.
	OnSample func(scenario, request, status string, latencyUS int64)
	// Labels are reported in Hello.
	Labels map[string]string
	// SnapshotBuffer bounds the unacknowledged snapshots kept per run for
	// resending after a reconnect; default 600 (10 minutes at 1s).
	SnapshotBuffer int
	// ControllerLossGrace is how long runs keep going without a controller
	// session (snapshots are buffered and resent); past it they stop, so an
	// orphaned fleet never hammers a target. Default 60s. A plan's own
	// controller_loss_grace governs its run instead.
	ControllerLossGrace time.Duration
	// PauseThreshold: a gap this long in the agent's own ticking (SIGSTOP,
	// a frozen VM) suspends its runs until the controller confirms them
	// over a fresh stream. Default 3s: stalls of a loaded machine (GC, CPU
	// starvation, 1-2s seen under -race with thousands of sessions) are not
	// pauses.
	PauseThreshold time.Duration
	// TLS, when set, is used to dial the controller (mTLS with the agent's
	// certificate).
	TLS *tls.Config
	// PacingSpin: arrival-rate scenarios wake this long before each
	// arrival and busy-wait the rest, trading up to PacingSpin of CPU per
	// arrival for a send time that does not depend on how fast the machine
	// wakes a sleeping thread. 0 (the default) to 1ms
	// (executor.MaxPacingSpin).
	PacingSpin time.Duration
}

// Defaults for zero Config fields.
const (
	DefaultReconnectMin   = 100 * time.Millisecond
	DefaultReconnectMax   = 5 * time.Second
	DefaultSnapshotBuffer = 600
	DefaultControllerLoss = 60 * time.Second
	DefaultPauseThreshold = 3 * time.Second
)
