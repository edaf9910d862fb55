package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/surgeload/surge/agent/executor"
	"github.com/surgeload/surge/agent/httpclient"
	"github.com/surgeload/surge/cluster"
	surgev1 "github.com/surgeload/surge/gen/surge/v1"
	"github.com/surgeload/surge/plan"
)

// flushTimeout bounds how long a stopping agent tries to deliver its last
// snapshots and events.
const flushTimeout = 3 * time.Second

// Agent is one load generator. Create it with New and run it with Run.
type Agent struct {
	cfg         Config
	log         *slog.Logger
	allow       *httpclient.AllowList
	resolver    *net.Resolver
	incarnation string
	out         *outbox
	conns       atomic.Int64
	running     atomic.Bool
	watch       *pauseWatch
	// repair asks the live session to end and reconnect (after a pause).
	repair chan struct{}
	// connected: a session is established; lostAt: when the last one ended
	// (ns since watch.base; 0: never connected yet).
	connected atomic.Bool
	lostAt    atomic.Int64

	gossipMu   sync.Mutex
	gossipAddr string

	runsMu   sync.Mutex
	runCtx   context.Context
	runs     map[string]*runState
	finished map[string]uint64 // run id -> epoch of runs that ended
	closing  bool
	runWG    sync.WaitGroup
}

// New checks cfg and returns an agent. It does no I/O.
func New(cfg Config) (*Agent, error) {
	var errs []error
	if cfg.ID == "" {
		errs = append(errs, errors.New("id is required"))
	}
	if cfg.Region == "" {
		errs = append(errs, errors.New("region is required"))
	}
	if cfg.Controller == "" && cfg.Gossip.Bind == "" {
		errs = append(errs, errors.New("a controller address or a gossip bind address is required"))
	}
	allow, err := httpclient.ParseAllowList(cfg.Allow)
	if err != nil {
		errs = append(errs, err)
	}
	if cfg.MaxRate < 0 {
		errs = append(errs, fmt.Errorf("max rate must be >= 0, got %v", cfg.MaxRate))
	}
	if cfg.MaxVUs < 0 {
		errs = append(errs, fmt.Errorf("max VUs must be >= 0, got %d", cfg.MaxVUs))
	}
	if cfg.ReconnectMin == 0 {
		cfg.ReconnectMin = DefaultReconnectMin
	}
	if cfg.ReconnectMax == 0 {
		cfg.ReconnectMax = DefaultReconnectMax
	}
	if cfg.ReconnectMin < 0 || cfg.ReconnectMax < cfg.ReconnectMin {
		errs = append(errs, fmt.Errorf("reconnect backoff %s..%s: want 0 < min <= max", cfg.ReconnectMin, cfg.ReconnectMax))
	}
	if cfg.SnapshotBuffer == 0 {
		cfg.SnapshotBuffer = DefaultSnapshotBuffer
	}
	if cfg.ControllerLossGrace == 0 {
		cfg.ControllerLossGrace = DefaultControllerLoss
	}
	if cfg.PauseThreshold == 0 {
		cfg.PauseThreshold = DefaultPauseThreshold
	}
	if cfg.ControllerLossGrace < 0 || cfg.PauseThreshold < 0 {
		errs = append(errs, fmt.Errorf("controller loss grace %s and pause threshold %s must be > 0", cfg.ControllerLossGrace, cfg.PauseThreshold))
	}
	if cfg.PacingSpin < 0 || cfg.PacingSpin > executor.MaxPacingSpin {
		errs = append(errs, fmt.Errorf("pacing spin must be between 0 and %s, got %s", executor.MaxPacingSpin, cfg.PacingSpin))
	}
	if cfg.SnapshotBuffer < 1 {
		errs = append(errs, fmt.Errorf("snapshot buffer must be >= 1, got %d", cfg.SnapshotBuffer))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("agent config: %w", err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	log := cfg.Logger.With("agent", cfg.ID)
	return &Agent{
		cfg:         cfg,
		log:         log,
		allow:       allow,
		resolver:    &net.Resolver{},
		incarnation: cluster.NewIncarnation(),
		out:         newOutbox(cfg.SnapshotBuffer, log),
		watch:       newPauseWatch(cfg.PauseThreshold),
		repair:      make(chan struct{}, 1),
		runs:        make(map[string]*runState),
		finished:    make(map[string]uint64),
	}, nil
}

// GossipAddr is the bound gossip address once Run has joined, else "".
func (a *Agent) GossipAddr() string {
	a.gossipMu.Lock()
	defer a.gossipMu.Unlock()
	return a.gossipAddr
}

func (a *Agent) setGossipAddr(s string) {
	a.gossipMu.Lock()
	a.gossipAddr = s
	a.gossipMu.Unlock()
}

// Run joins the gossip cluster (when Gossip.Bind is set), finds the
// controller (Config.Controller overrides discovery), holds a session with
// it, reconnecting with backoff, and runs the shares it is assigned. When
// ctx ends it stops every run, tries briefly to deliver the final snapshots
// and events, and returns nil once every goroutine it started has returned.
// An Agent runs once.
func (a *Agent) Run(ctx context.Context) error {
	if !a.running.CompareAndSwap(false, true) {
		return errors.New("agent: already run")
	}
	var node *cluster.Node
	if a.cfg.Gossip.Bind != "" {
		var err error
		node, err = cluster.Join(ctx, a.cfg.Gossip.Node(cluster.Meta{Role: cluster.RoleAgent, ID: a.cfg.ID, Incarnation: a.incarnation,
			Region: a.cfg.Region, Zone: a.cfg.Zone, Version: a.cfg.Version}, a.cfg.Logger))
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("agent: join gossip: %w", err)
		}
		a.setGossipAddr(node.LocalAddr())
		defer func() {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), flushTimeout)
			defer cancel()
			if err := node.Close(cctx); err != nil {
				a.log.Warn("leave gossip", "err", err)
			}
			a.setGossipAddr("")
		}()
	}

	a.runsMu.Lock()
	a.runCtx = ctx
	a.runsMu.Unlock()

	// The session outlives ctx a little, to deliver the final snapshots.
	sessCtx, cancelSess := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelSess()
	loopDone := make(chan struct{})
	go func() {
		defer close(loopDone)
		a.connectLoop(sessCtx, node)
	}()
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		a.watchLoop(ctx)
	}()
	defer func() { <-watchDone }()

	<-ctx.Done()
	a.runsMu.Lock()
	a.closing = true
	a.runsMu.Unlock()
	a.runWG.Wait()
	a.out.close()
	flush := time.NewTimer(flushTimeout)
	select {
	case <-loopDone:
	case <-flush.C:
		a.log.Warn("could not deliver the last snapshots and events before stopping")
	}
	flush.Stop()
	cancelSess()
	<-loopDone
	return nil
}

// connectLoop holds sessions with the controller until ctx ends or the
// outbox is closed and delivered.
func (a *Agent) connectLoop(ctx context.Context, node *cluster.Node) {
	backoff := a.cfg.ReconnectMin
	for {
		addr, err := a.controllerAddr(ctx, node)
		if err == nil {
			var established bool
			established, err = a.session(ctx, addr)
			if established {
				backoff = a.cfg.ReconnectMin
			}
			if err == nil { // closed and delivered
				return
			}
		}
		if ctx.Err() != nil {
			return
		}
		if a.out.isClosed() {
			return // stopping and not connected: nothing more to do
		}
		// Full jitter over [backoff/2, backoff].
		wait := backoff/2 + rand.N(backoff/2+1)
		a.log.Warn("controller session ended; reconnecting", "addr", addr, "err", err, "in", wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(backoff*2, a.cfg.ReconnectMax)
	}
}

// watchLoop ticks the pause watch and enforces the controller-loss grace
// until ctx ends.
func (a *Agent) watchLoop(ctx context.Context) {
	t := time.NewTicker(watchTick)
	defer t.Stop()
	graces := map[*runState]time.Duration{} // each run's grace, decoded once
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		a.watch.tick(func(gap time.Duration) {
			n := a.suspendAll()
			a.log.Warn("this process was paused; runs suspended until the controller confirms them", "gap", gap, "runs", n)
			select {
			case a.repair <- struct{}{}:
			default:
			}
		})
		if a.connected.Load() {
			continue
		}
		since := a.lostAt.Load() // 0 (never connected): counted from the start
		a.stopOrphaned(time.Duration(a.watch.now()-since), graces)
	}
}

// stopOrphaned stops the runs that have been without a controller for
// longer than their grace: the plan's controller_loss_grace when it sets
// one, else the agent's own (Config.ControllerLossGrace). graces caches
// each run's grace; the caller owns it.
func (a *Agent) stopOrphaned(gone time.Duration, graces map[*runState]time.Duration) {
	a.runsMu.Lock()
	defer a.runsMu.Unlock()
	for r := range graces {
		if a.runs[r.id] != r {
			delete(graces, r) // ended
		}
	}
	for _, r := range a.runs {
		grace, ok := graces[r]
		if !ok {
			grace = a.runGrace(r.latest)
			graces[r] = grace
		}
		if gone <= grace || r.stopReason.Load() != nil {
			continue // within its grace, or already stopping
		}
		reason := fmt.Sprintf("no controller for %s (controller_loss_grace %s)", gone.Round(100*time.Millisecond), grace)
		r.stopReason.Store(&reason)
		r.cancel()
		a.log.Warn("controller lost for longer than the run's grace; stopping it", "run", r.id, "grace", grace, "gone", gone.Round(time.Millisecond))
	}
}

// runGrace is how long the run of as keeps going without a controller: the
// plan's controller_loss_grace, else the agent's setting.
func (a *Agent) runGrace(as *surgev1.Assign) time.Duration {
	var p struct {
		Grace plan.Duration `json:"controller_loss_grace"`
	}
	if err := json.Unmarshal(as.GetPlanJson(), &p); err != nil || p.Grace <= 0 {
		// An invalid plan was rejected when assigned; its run is ending.
		return a.cfg.ControllerLossGrace
	}
	return p.Grace.D()
}

// controllerAddr is the configured controller, or one found by gossip.
func (a *Agent) controllerAddr(ctx context.Context, node *cluster.Node) (string, error) {
	if a.cfg.Controller != "" {
		return a.cfg.Controller, nil
	}
	if node == nil {
		return "", errors.New("no controller address and no gossip")
	}
	m, err := cluster.WaitForMember(ctx, node, func(m cluster.Member) bool {
		return m.Meta.Role == cluster.RoleController && m.Meta.GRPCAddr != ""
	})
	if err != nil {
		return "", fmt.Errorf("discover controller: %w", err)
	}
	return m.Meta.GRPCAddr, nil
}
