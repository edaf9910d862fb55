// Package controller runs surge's controller: it accepts agents on the
// AgentGateway stream, takes plans from the CLI on the Runs service, splits
// them into shares, starts agents together, merges their snapshots exactly
// per interval, region and run, evaluates thresholds live and keeps every run
// in its embedded store.
package controller

import (
	"log/slog"
	"time"
)

// Config configures a controller. Zero values take the documented defaults.
type Config struct {
	// ID names this controller in gossip and logs; default "controller".
	ID string
	// Listen is the gRPC address (host:port; port 0 picks a free one).
	Listen string
	// GossipBind is the memberlist address (host:port; port 0 picks one).
	GossipBind string
	// GossipJoin are optional seeds (other controllers or agents).
	GossipJoin []string
	// GossipProfile is "local", "lan" or "wan"; default by address.
	GossipProfile string
	// DataDir holds the run store (runs.db). Required.
	DataDir string
	// Interval grace: how long after an interval ends the controller waits
	// for every live agent's snapshot before emitting it; default 2s.
	EmitGrace time.Duration
	// StartLead is how far ahead of now runs are scheduled to start, so every
	// agent receives its Assign in time; default 1s (the start is then
	// rounded up to a whole interval boundary of wall-clock time).
	StartLead time.Duration
	// Logger; default discards.
	Logger *slog.Logger
	// Version is reported to agents and the CLI.
	Version string
}
