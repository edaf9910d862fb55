package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/surgeload/surge/agent"
	"github.com/surgeload/surge/cluster/tlsconf"
	"github.com/surgeload/surge/cmd/surge/target"
	"github.com/surgeload/surge/controller"
	"github.com/surgeload/surge/controller/sink"
)

// readyTimeout bounds the wait for a daemon's gossip address to log it.
const readyTimeout = 30 * time.Second

// newLogger is the daemons' logger: slog text on stderr at level.
func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, usageErrorf("--log-level %q: want debug, info, warn or error", level)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}

// serve runs run(ctx) and, once ready() holds, calls onReady once; it
// returns what run returns.
func serve(ctx context.Context, run func(context.Context) error, ready func() bool, onReady func()) error {
	errc := make(chan error, 1)
	go func() { errc <- run(ctx) }()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.Now().Add(readyTimeout)
	for {
		select {
		case err := <-errc:
			return err
		case <-tick.C:
			if ready() || time.Now().After(deadline) {
				onReady()
				return <-errc
			}
		}
	}
}

// --- controller ---

type controllerOptions struct {
	cfg       controller.Config
	logLevel  string
	influx    sink.InfluxConfig
	prom      promOptions
	tls       tlsconf.Files
	gossipKey string
	// pprofAddr, if set, is a loopback address serving /debug/pprof/.
	pprofAddr string
}

func newControllerCmd(e env) *cobra.Command {
	var o controllerOptions
	cmd := &cobra.Command{
		Use:   "controller",
		Short: "Run a controller until interrupted",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.influx.Token == "" {
				o.influx.Token = e.getenv("SURGE_INFLUX_TOKEN")
			}
			if o.prom.cfg.Token == "" {
				o.prom.cfg.Token = e.getenv("SURGE_PROM_TOKEN")
			}
			if o.cfg.Token == "" {
				o.cfg.Token = e.getenv("SURGE_TOKEN")
			}
			return runController(cmd.Context(), o, e.stderr)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.cfg.Listen, "listen", "127.0.0.1:7070", "gRPC `ADDR` for agents and the CLI")
	f.StringVar(&o.cfg.Gossip.Bind, "gossip", "127.0.0.1:7946", "gossip (memberlist) `ADDR`")
	f.StringSliceVar(&o.cfg.Gossip.Join, "join", nil, "gossip seeds to join, `ADDR[,ADDR...]`")
	f.StringVar(&o.cfg.Gossip.Profile, "gossip-profile", "", "gossip timing profile: local, lan or wan (default by address)")
	f.StringVar(&o.cfg.DataDir, "data-dir", "", "`DIR` of the run store (required; created if missing)")
	f.StringVar(&o.cfg.ID, "id", "", "controller id (default \"controller\")")
	f.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	f.StringVar(&o.influx.URL, "influx-url", "", "write results to InfluxDB at `URL` (1.8+ or 2.x), e.g. http://127.0.0.1:8086")
	f.StringVar(&o.influx.Bucket, "influx-bucket", "", "InfluxDB `BUCKET` (InfluxDB 1.8: database/retention-policy)")
	f.StringVar(&o.influx.Org, "influx-org", "", "InfluxDB 2.x `ORG` (ignored by 1.8)")
	f.IntVar(&o.influx.Queue, "influx-queue", 0, "write items InfluxDB's queue holds in memory before spilling to the run store (default 1024)")
	f.StringVar(&o.influx.Token, "influx-token", "", "InfluxDB `TOKEN` (1.8: user:password); default $SURGE_INFLUX_TOKEN")
	promFlags(cmd, &o.prom)
	f.DurationVar(&o.cfg.AgentKeepalive, "agent-keepalive", controller.DefaultAgentKeepalive, "ping an agent whose stream was idle this long")
	f.DurationVar(&o.cfg.AgentKeepaliveTimeout, "agent-keepalive-timeout", controller.DefaultAgentKeepaliveTimeout, "drop an agent that does not answer a ping within this")
	f.DurationVar(&o.cfg.AgentLossConfirm, "agent-loss-confirm", controller.DefaultAgentLossConfirm, "declare an agent whose stream ended lost after this (gossip may decide sooner) and reshare its load")
	f.DurationVar(&o.cfg.RestoreGrace, "restore-grace", controller.DefaultRestoreGrace, "after a restart, how long restored runs wait for their agents to re-attach")
	f.StringVar(&o.cfg.Token, "token", "", "bearer `TOKEN` the CLI must present; default $SURGE_TOKEN (never shown here)")
	f.StringVar(&o.pprofAddr, "pprof-addr", "", "serve Go's /debug/pprof/ profiles and /debug/runtime metrics on this loopback `ADDR` (debugging), e.g. 127.0.0.1:6060")
	tlsFlags(cmd, &o.tls)
	gossipSecurityFlags(cmd, &o.gossipKey, &o.cfg.Gossip.Label)
	_ = cmd.MarkFlagRequired("data-dir")
	return cmd
}

// runController is `surge controller`.
func runController(ctx context.Context, o controllerOptions, stderr io.Writer) error {
	log, err := newLogger(stderr, o.logLevel)
	if err != nil {
		return err
	}
	cfg := o.cfg
	cfg.Logger = log
	cfg.Version = versionString()
	switch {
	case o.influx.URL != "":
		ic := o.influx
		cfg.Influx = &ic
	case o.influx.Bucket != "" || o.influx.Org != "":
		return usageErrorf("--influx-bucket and --influx-org need --influx-url")
	}
	if cfg.PromRW, err = o.prom.config(); err != nil {
		return err
	}
	if cfg.Gossip.Key, err = parseGossipKey(o.gossipKey); err != nil {
		return err
	}
	if o.tls.Enabled() {
		if cfg.TLS, err = o.tls.Server(); err != nil {
			return withExitCode(exitUsage, err)
		}
	}
	stopPprof, err := maybePprof(o.pprofAddr, log)
	if err != nil {
		return err
	}
	defer stopPprof()
	c, err := controller.New(cfg)
	if err != nil {
		return err
	}
	return serve(ctx, c.Run, func() bool { return c.GossipAddr() != "" }, func() {
		log.Info("controller ready", "grpc", c.Addr(), "gossip", c.GossipAddr(), "data_dir", cfg.DataDir, "version", cfg.Version)
	})
}

// --- agent ---

type agentOptions struct {
	cfg       agent.Config
	logLevel  string
	tls       tlsconf.Files
	gossipKey string
	// cpuProfile, if set, is a file the agent writes its CPU profile to
	// from start to exit (hidden: for benchmarks, see docs/benchmarks.md).
	cpuProfile string
	// pprofAddr, if set, is a loopback address serving /debug/pprof/.
	pprofAddr string
}

func newAgentCmd(e env) *cobra.Command {
	var o agentOptions
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run an agent until interrupted",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runAgent(cmd.Context(), o, e.stderr)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.cfg.ID, "id", "", "agent id, stable across restarts (required)")
	f.StringVar(&o.cfg.Region, "region", "", "region label (required)")
	f.StringVar(&o.cfg.Zone, "zone", "", "zone label")
	f.StringSliceVar(&o.cfg.Gossip.Join, "join", nil, "gossip seeds, usually the controller's gossip address, `ADDR[,ADDR...]`")
	f.StringVar(&o.cfg.Gossip.Bind, "gossip", "127.0.0.1:0", "gossip (memberlist) `ADDR`")
	f.StringVar(&o.cfg.Gossip.Profile, "gossip-profile", "", "gossip timing profile: local, lan or wan (default by address)")
	f.StringVar(&o.cfg.Controller, "controller", "", "controller gRPC `ADDR` (default: discovered through gossip)")
	f.StringSliceVar(&o.cfg.Allow, "allow", nil, "targets this agent may load, `CIDR|HOST[,...]` (default: loopback only)")
	f.Float64Var(&o.cfg.MaxRate, "max-rate", 0, "most arrivals per second this agent takes (0: unlimited)")
	f.Int64Var(&o.cfg.MaxVUs, "max-vus", 0, "most VUs this agent runs (0: unlimited)")
	f.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	f.DurationVar(&o.cfg.ControllerLossGrace, "controller-loss-grace", agent.DefaultControllerLoss, "keep running without a controller this long, then stop")
	f.DurationVar(&o.cfg.PauseThreshold, "pause-threshold", agent.DefaultPauseThreshold, "a stall this long (SIGSTOP) suspends runs until the controller confirms them")
	f.IntVar(&o.cfg.SnapshotBuffer, "snapshot-buffer", agent.DefaultSnapshotBuffer, "unacknowledged snapshots kept per run before queued ones are merged")
	f.DurationVar(&o.cfg.PacingSpin, "pacing-spin", 0, "wake this long before each open-model arrival and busy-wait the rest: steadier send times for up to this much CPU per arrival, `DURATION` 0 to 1ms")
	f.StringVar(&o.pprofAddr, "pprof-addr", "", "serve Go's /debug/pprof/ profiles and /debug/runtime metrics on this loopback `ADDR` (debugging), e.g. 127.0.0.1:6061")
	f.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the agent's whole life to `FILE`")
	_ = f.MarkHidden("cpuprofile")
	tlsFlags(cmd, &o.tls)
	gossipSecurityFlags(cmd, &o.gossipKey, &o.cfg.Gossip.Label)
	_ = cmd.MarkFlagRequired("id")
	_ = cmd.MarkFlagRequired("region")
	return cmd
}

// runAgent is `surge agent`.
func runAgent(ctx context.Context, o agentOptions, stderr io.Writer) error {
	if len(o.cfg.Gossip.Join) == 0 && o.cfg.Controller == "" {
		return usageErrorf("agent: give --join (the controller's gossip address) or --controller")
	}
	log, err := newLogger(stderr, o.logLevel)
	if err != nil {
		return err
	}
	cfg := o.cfg
	cfg.Logger = log
	cfg.Version = versionString()
	if cfg.Gossip.Key, err = parseGossipKey(o.gossipKey); err != nil {
		return err
	}
	if o.tls.Enabled() {
		if cfg.TLS, err = o.tls.Client(); err != nil {
			return withExitCode(exitUsage, err)
		}
	}
	a, err := agent.New(cfg)
	if err != nil {
		return withExitCode(exitUsage, err)
	}
	stopPprof, err := maybePprof(o.pprofAddr, log)
	if err != nil {
		return err
	}
	defer stopPprof()
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return withExitCode(exitUsage, fmt.Errorf("agent: --cpuprofile: %w", err))
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("agent: --cpuprofile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	return serve(ctx, a.Run, func() bool { return cfg.Gossip.Bind == "" || a.GossipAddr() != "" }, func() {
		log.Info("agent ready", "id", cfg.ID, "region", cfg.Region, "gossip", a.GossipAddr(),
			"join", strings.Join(cfg.Gossip.Join, ","), "controller", cfg.Controller, "version", cfg.Version)
	})
}

// --- target ---

type targetOptions struct {
	cfg      target.Config
	logLevel string
}

func newTargetCmd(e env) *cobra.Command {
	var o targetOptions
	cmd := &cobra.Command{
		Use:   "target",
		Short: "Run the built-in test target until interrupted",
		Long: `Target is a small server to load: HTTP/1.1 keep-alive (and h2c with --h2c) on
--listen, HTTP/2 and HTTP/1.1 over TLS on --tls-listen, and a WebSocket echo at
/ws. It answers "ok" after a delay drawn from --latency; --error-rate,
--reset-rate, --slow-body and friends make it misbehave, and query parameters
(?delay=, ?status=, ?fail_rate=, ?reset=, ?bytes=, ?slow=, ?retry_after=)
override them per request. GET /__surge/stats reports its counters as JSON;
POST /__surge/reset zeroes them; POST /__surge/ws/drop?n=N drops N WebSocket
sessions abruptly. See docs/target.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runTarget(cmd.Context(), o, e.stdout, e.stderr)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.cfg.Listen, "listen", "127.0.0.1:8080", "cleartext HTTP `ADDR`")
	f.StringVar(&o.cfg.Latency, "latency", "0", "response delay: a duration, uniform(a,b), normal(mean,sd) or exp(mean)")
	f.Float64Var(&o.cfg.ErrorRate, "error-rate", 0, "fraction of requests answered --error-status, 0 to 1")
	f.IntVar(&o.cfg.ErrorStatus, "error-status", 500, "`STATUS` of the --error-rate replies, 200-599")
	f.IntVar(&o.cfg.RetryAfter, "retry-after", 0, "send Retry-After: `SECONDS` with every 429 and 503 reply (0: no header)")
	f.Float64Var(&o.cfg.ResetRate, "reset-rate", 0, "fraction of requests answered by a reset (HTTP/1: TCP RST; HTTP/2: RST_STREAM), 0 to 1")
	f.IntVar(&o.cfg.BodySize, "body-size", 0, "reply body size in `BYTES` (0: \"ok\\n\")")
	f.DurationVar(&o.cfg.SlowBody, "slow-body", 0, "stream each reply body over this `DURATION` (headers at once, last byte DURATION later)")
	f.IntVar(&o.cfg.MaxConns, "max-conns", 0, "most open connections; more are accepted and reset at once (0: no bound)")
	f.BoolVar(&o.cfg.H2C, "h2c", false, "serve HTTP/2 with prior knowledge (h2c) on --listen alongside HTTP/1.1")
	f.BoolVar(&o.cfg.Metrics, "metrics", false, "serve /metrics: the request duration histogram by route and status (OpenTelemetry's http_server_request_duration_seconds) and process CPU and memory, for Prometheus to scrape")
	f.IntVar(&o.cfg.H2MaxStreams, "h2-max-streams", 0, "SETTINGS_MAX_CONCURRENT_STREAMS advertised on HTTP/2 connections (0: Go's default, 250)")
	f.StringVar(&o.cfg.TLSListen, "tls-listen", "", "also serve HTTP/2 and HTTP/1.1 over TLS on `ADDR`")
	f.StringVar(&o.cfg.TLSCert, "tls-cert", "", "TLS certificate chain PEM `FILE`")
	f.StringVar(&o.cfg.TLSKey, "tls-key", "", "TLS private key PEM `FILE`")
	f.BoolVar(&o.cfg.TLSSelfSigned, "tls-self-signed", false, "make an in-memory CA and a certificate for localhost, 127.0.0.1, ::1")
	f.StringSliceVar(&o.cfg.TLSHosts, "tls-host", nil, "extra `NAME` or IP in the self-signed certificate (repeatable)")
	f.StringVar(&o.cfg.TLSCAOut, "tls-ca-out", "", "write the self-signed certificate's CA PEM to `FILE`, for clients to trust")
	f.StringVar(&o.cfg.WSEchoLatency, "ws-echo-latency", "0", "delay of each WebSocket echo: a duration or a distribution, as --latency")
	f.DurationVar(&o.cfg.WSDropAfter, "ws-drop-after", 0, "drop each WebSocket session abruptly (no close frame) this `DURATION` after it opened (0: never)")
	f.StringVar(&o.logLevel, "log-level", "warn", "log level: debug, info, warn, error")
	return cmd
}

// runTarget is `surge target`.
func runTarget(ctx context.Context, o targetOptions, stdout, stderr io.Writer) error {
	log, err := newLogger(stderr, o.logLevel)
	if err != nil {
		return err
	}
	cfg := o.cfg
	cfg.Logger = log
	s, err := target.New(cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "target listening on http://%s\n", s.Addr())
	if a := s.TLSAddr(); a != "" {
		fmt.Fprintf(stdout, "target listening on https://%s\n", a)
	}
	if cfg.TLSCAOut != "" {
		fmt.Fprintf(stdout, "target CA written to %s\n", cfg.TLSCAOut)
	}
	return s.Run(ctx)
}
