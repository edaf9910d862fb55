package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"

	"github.com/surgeload/surge/cluster"
	"github.com/surgeload/surge/controller/journal"
	"github.com/surgeload/surge/controller/sink"
	"github.com/surgeload/surge/controller/store"
	surgev1 "github.com/surgeload/surge/gen/surge/v1"
)

// A journal record holds any snapshot the server accepts (compile-time check).
var _ [journal.MaxRecord - MaxRecvMsgSize]struct{}

// Defaults for Config fields left zero, and fixed limits.
const (
	DefaultID        = "controller"
	DefaultListen    = "127.0.0.1:0"
	DefaultEmitGrace = 2 * time.Second
	DefaultStartLead = time.Second

	DefaultSinkCloseTimeout = 10 * time.Second

	// MaxRecvMsgSize bounds one gRPC message from an agent or the CLI. A
	// snapshot holds at most aggregate.DefaultMaxSeries series of two sparse
	// histograms each; 16 MiB fits thousands of busy series while keeping a
	// single bad sender from making the controller allocate without bound.
	MaxRecvMsgSize = 16 << 20

	// acceptTimeout is how long Submit waits for every agent's ACCEPTED.
	acceptTimeout = 5 * time.Second
	// stopTimeout is how long a stopped run waits for the agents' finals.
	stopTimeout = 5 * time.Second
	// deadlineSlack is added to a run's duration and graceful stop before
	// it is ended regardless of missing agents.
	deadlineSlack = 10 * time.Second
	// shutdownGrace bounds the gRPC graceful stop at shutdown.
	shutdownGrace = 5 * time.Second
)

// Controller is surge's controller. Create it with New, then call Run.
type Controller struct {
	cfg   Config
	log   *slog.Logger
	store *store.Store
	lis   net.Listener
	// journal keeps running runs for a restarted controller (restore.go);
	// restoring holds what New loaded from it until Run starts them.
	journal   *journal.Journal
	restoring []journal.Restored
	// sinks receive every run's intervals; set by Run before serving and
	// closed after every run ended.
	sinks sink.Fanout
	srv   *grpc.Server

	started atomic.Bool
	closed  atomic.Bool

	// handlersCtx bounds the agent streams; it ends after every run has
	// finalized, so agents still receive their Stop at shutdown.
	handlersCtx    context.Context
	cancelHandlers context.CancelFunc

	mu       sync.Mutex
	agents   map[string]*agentConn
	runs     map[string]*run
	node     *cluster.Node
	runsCtx  context.Context // nil until Run
	stopping bool

	runWG  sync.WaitGroup // run goroutines
	recvWG sync.WaitGroup // agent stream receive loops

	stats counters
}

// counters are the controller's own, for logs and tests.
type counters struct {
	snapshotsRejected atomic.Int64
	snapshotsUnknown  atomic.Int64
	snapshotsLate     atomic.Int64
	snapshotsDup      atomic.Int64
}

// New opens the run store in cfg.DataDir (runs.db), marks runs a previous
// process left running as interrupted, and binds the gRPC listener, so Addr
// works before Run. Call Run, or Close if Run is never called.
func New(cfg Config) (*Controller, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("controller: data dir is required")
	}
	if cfg.ID == "" {
		cfg.ID = DefaultID
	}
	if cfg.Listen == "" {
		cfg.Listen = DefaultListen
	}
	if cfg.EmitGrace <= 0 {
		cfg.EmitGrace = DefaultEmitGrace
	}
	if cfg.StartLead <= 0 {
		cfg.StartLead = DefaultStartLead
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.SinkCloseTimeout <= 0 {
		cfg.SinkCloseTimeout = DefaultSinkCloseTimeout
	}
	if cfg.Influx != nil {
		if err := cfg.Influx.Validate(); err != nil {
			return nil, fmt.Errorf("controller: %w", err)
		}
	}
	if cfg.PromRW != nil {
		if err := cfg.PromRW.Validate(); err != nil {
			return nil, fmt.Errorf("controller: %w", err)
		}
	}
	applyFaultDefaults(&cfg)
	log := cfg.Logger.With(slog.String("component", "controller"), slog.String("id", cfg.ID))

	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("controller: data dir: %w", err)
	}
	st, err := store.Open(filepath.Join(cfg.DataDir, "runs.db"))
	if err != nil {
		return nil, fmt.Errorf("controller: %w", err)
	}
	ids, err := st.MarkInterrupted()
	if err != nil {
		_ = st.Close()
		return nil, fmt.Errorf("controller: %w", err)
	}
	for _, id := range ids {
		log.Warn("run was left running by a previous controller; marked interrupted", slog.String("run", id))
	}
	lis, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		_ = st.Close()
		return nil, fmt.Errorf("controller: listen %s: %w", cfg.Listen, err)
	}
	c := &Controller{
		cfg:    cfg,
		log:    log,
		store:  st,
		lis:    lis,
		agents: map[string]*agentConn{},
		runs:   map[string]*run{},
	}
	if err := c.initJournal(); err != nil {
		_ = lis.Close()
		_ = st.Close()
		return nil, fmt.Errorf("controller: %w", err)
	}
	c.handlersCtx, c.cancelHandlers = context.WithCancel(context.Background())
	c.srv = grpc.NewServer(c.serverOptions()...)
	surgev1.RegisterAgentGatewayServer(c.srv, &gateway{c: c})
	surgev1.RegisterRunsServer(c.srv, &runsService{c: c})
	surgev1.RegisterAgentsServer(c.srv, &agentsService{c: c})
	return c, nil
}

// Addr is the bound gRPC address, host:port.
func (c *Controller) Addr() string { return c.lis.Addr().String() }

// GossipAddr is the bound gossip address once Run has joined gossip; empty
// otherwise.
func (c *Controller) GossipAddr() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.node == nil {
		return ""
	}
	return c.node.LocalAddr()
}

// Close releases what New opened. It is for a controller whose Run was never
// called; Run releases everything itself when it returns.
func (c *Controller) Close() error {
	if c.started.Load() || c.closed.Swap(true) {
		return nil
	}
	c.cancelHandlers()
	var errs []error
	if err := c.lis.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		errs = append(errs, fmt.Errorf("controller: close listener: %w", err))
	}
	if err := c.journal.Close(); err != nil {
		errs = append(errs, fmt.Errorf("controller: %w", err))
	}
	if err := c.store.Close(); err != nil {
		errs = append(errs, fmt.Errorf("controller: %w", err))
	}
	return errors.Join(errs...)
}

// Run joins gossip (when Gossip.Bind is set) and serves gRPC until ctx is
// done. Then it stops every active run (agents receive Stop; each run is
// finalized and stored as stopped), ends the agent streams, stops the gRPC
// server, leaves gossip, closes the store and waits for every goroutine. It
// returns nil when ctx was cancelled.
func (c *Controller) Run(ctx context.Context) (err error) {
	if c.closed.Load() {
		return errors.New("controller: run after close")
	}
	if c.started.Swap(true) {
		return errors.New("controller: run called twice")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	c.mu.Lock()
	c.runsCtx = ctx
	c.mu.Unlock()

	sinks, err := c.openSinks()
	if err != nil {
		c.started.Store(false)
		_ = c.Close()
		return err
	}
	c.sinks = sinks

	var bg sync.WaitGroup
	if err := c.joinGossip(ctx, &bg); err != nil {
		c.closeSinks()
		c.started.Store(false)
		_ = c.Close()
		return err
	}

	c.startRestored(ctx)
	serveErr := make(chan error, 1)
	bg.Go(func() { serveErr <- c.srv.Serve(c.lis) })
	c.log.Info("controller serving", slog.String("grpc", c.Addr()), slog.String("gossip", c.GossipAddr()))

	select {
	case <-ctx.Done():
	case err = <-serveErr:
		err = fmt.Errorf("controller: serve grpc: %w", err)
		cancel()
	}

	c.stopServing()
	return c.leave(err, &bg)
}

// joinGossip joins gossip when Gossip.Bind is set, logging membership
// changes in a goroutine bg waits for (it ends when the node closes).
func (c *Controller) joinGossip(ctx context.Context, bg *sync.WaitGroup) error {
	if c.cfg.Gossip.Bind == "" {
		return nil
	}
	node, err := cluster.Join(ctx, c.cfg.Gossip.Node(cluster.Meta{
		Role:     cluster.RoleController,
		ID:       c.cfg.ID,
		GRPCAddr: c.Addr(),
		Version:  c.cfg.Version,
	}, c.cfg.Logger))
	if err != nil {
		return fmt.Errorf("controller: join gossip: %w", err)
	}
	c.mu.Lock()
	c.node = node
	c.mu.Unlock()
	bg.Go(func() { c.logMembership(node) })
	return nil
}

// stopServing shuts down in order: runs (their agents still connected to
// get Stop), then the sinks, agent streams and the gRPC server.
func (c *Controller) stopServing() {
	c.mu.Lock()
	c.stopping = true
	c.mu.Unlock()
	c.runWG.Wait()
	if err := c.closeSinks(); err != nil {
		c.log.Warn("closing sinks", slog.Any("err", err))
	}
	c.cancelHandlers()
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		c.srv.GracefulStop()
	}()
	timer := time.NewTimer(shutdownGrace)
	select {
	case <-stopped:
	case <-timer.C:
		c.srv.Stop()
		<-stopped
	}
	timer.Stop()
	c.recvWG.Wait()
}

// leave leaves gossip, waits for bg and closes the journal and the store,
// returning serveErr joined with what failed.
func (c *Controller) leave(serveErr error, bg *sync.WaitGroup) error {
	errs := []error{serveErr}
	c.mu.Lock()
	node := c.node
	c.mu.Unlock()
	if node != nil {
		closeCtx, closeCancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := node.Close(closeCtx); err != nil {
			errs = append(errs, fmt.Errorf("controller: leave gossip: %w", err))
		}
		closeCancel()
	}
	bg.Wait()
	c.closed.Store(true)
	if err := c.journal.Close(); err != nil {
		errs = append(errs, fmt.Errorf("controller: %w", err))
	}
	c.logJournal()
	if err := c.store.Close(); err != nil {
		errs = append(errs, fmt.Errorf("controller: %w", err))
	}
	return errors.Join(errs...)
}

// logJournal logs the journal's counters; at warn level when writes failed
// or were skipped, or the queue was full (the disk did not keep up).
func (c *Controller) logJournal() {
	st := c.journal.Stats()
	lvl := slog.LevelInfo
	if st.Failed > 0 || st.AfterDelete > 0 || st.Waits > 0 {
		lvl = slog.LevelWarn
	}
	c.log.Log(context.Background(), lvl, "journal", slog.Int64("commits", st.Commits),
		slog.Int64("writes", st.Writes), slog.Int64("failed", st.Failed),
		slog.Int64("queue_full_waits", st.Waits), slog.Int64("skipped_after_delete", st.AfterDelete))
}

// logMembership logs gossip membership changes until the node closes its
// event channel.
func (c *Controller) logMembership(node *cluster.Node) {
	for ev := range node.Events() {
		c.log.Debug("gossip membership", slog.String("event", ev.Kind.String()),
			slog.String("member", ev.Member.Name), slog.String("role", string(ev.Member.Meta.Role)))
		if ev.Kind == cluster.Left && ev.Member.Meta.Role == cluster.RoleAgent {
			c.memberGone(ev.Member.Meta.ID, ev.Member.Meta.Incarnation)
		}
	}
}
