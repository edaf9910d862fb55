// Package controller runs surge's controller: it accepts agents on the
// AgentGateway stream, takes plans from the CLI on the Runs service, splits
// them into shares, starts agents together, merges their snapshots exactly
// per interval, region and run, evaluates thresholds live and keeps every run
// in its embedded store.
package controller

import (
	"crypto/tls"
	"log/slog"
	"time"

	"github.com/surgeload/surge/cluster"
	"github.com/surgeload/surge/controller/sink"
)

// Config configures a controller. Zero values take the documented defaults.
type Config struct {
	// ID names this controller in gossip and logs; default "controller".
	ID string
	// Listen is the gRPC address (host:port; port 0 picks a free one).
	Listen string
	// Gossip is the controller's memberlist node; its seeds (other
	// controllers or agents) are optional.
	Gossip cluster.Gossip
	// DataDir holds the run store (runs.db); created if missing. Required.
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

	// Fault handling and security (see fault.go, restore.go, serveropts.go, auth.go).
	//
	// AgentKeepalive and AgentKeepaliveTimeout: the server pings an agent
	// whose stream was idle this long and drops it when the ping is not
	// answered in the timeout; defaults 10s and 5s.
	AgentKeepalive, AgentKeepaliveTimeout time.Duration
	// AgentLossConfirm is how long an agent whose stream ended may take to
	// reconnect before it is declared lost and its share reshared (gossip
	// declaring it gone decides sooner); default 1s.
	AgentLossConfirm time.Duration
	// RestoreGrace is how long a restarted controller waits for the agents
	// of the runs it restores to re-attach; default 15s.
	RestoreGrace time.Duration
	// TLS, when set, serves gRPC over TLS; with ClientCAs and
	// RequireAndVerifyClientCert it is mTLS, and agent streams need a
	// certificate with the agent role.
	TLS *tls.Config
	// Token, when set, is the bearer token the Runs and Agents services
	// require.
	Token string
	// Influx, when set, writes every run's results to InfluxDB (its URL and
	// Bucket are required; the controller supplies Spill and Logger).
	Influx *sink.InfluxConfig
	// PromRW, when set, writes every run's results to a Prometheus
	// remote-write receiver (URL required; the controller supplies Spill,
	// Logger and Hold).
	PromRW *sink.PromConfig
	// SinkCloseTimeout bounds how long shutdown waits for the sinks to
	// write what they hold (InfluxDB backlog); what is left stays spilled
	// in the run store for the next start. Default 10s.
	SinkCloseTimeout time.Duration
}
