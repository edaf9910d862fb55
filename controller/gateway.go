package controller

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"slices"
	"sync"
	"time"
	"unicode"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
)

const (
	// agentQueue is the per-agent outbound buffer. A stream that cannot take
	// this many queued messages is stuck and is closed: the controller never
	// blocks on one agent.
	agentQueue = 1024
	// maxIDLen bounds agent ids, regions, zones and similar names.
	maxIDLen = 128
	// maxHelloRuns bounds the runs an agent may claim in Hello.
	maxHelloRuns = 64
	// DefaultRegion is the region of agents that declare none.
	DefaultRegion = "default"
)

// agentConn is one connected agent stream. Immutable fields are set at
// Hello; the rest is guarded by mu.
type agentConn struct {
	id, incarnation, region, zone, version, addr string
	maxRate                                      float64
	maxVUs                                       int64
	connectedAt                                  time.Time

	out    chan *surgev1.ControllerMessage
	cancel context.CancelFunc // ends the stream
	log    *slog.Logger

	mu       sync.Mutex
	offsetNs int64
	rttNs    int64
	cpu      float64
	runs     []string
	replaced bool
}

// send queues m for the stream's sender without blocking. A full queue
// means the agent is not reading: its stream is closed and it reconnects.
// It is safe from any goroutine (the journal's writer sends the acks).
func (a *agentConn) send(m *surgev1.ControllerMessage) bool {
	select {
	case a.out <- m:
		return true
	default:
		a.log.Warn("agent send queue full; closing its stream")
		a.cancel()
		return false
	}
}

func (a *agentConn) offset() int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.offsetNs
}

// gateway implements AgentGateway.
type gateway struct {
	surgev1.UnimplementedAgentGatewayServer
	c *Controller
}

func validName(what, s string, required bool) error {
	if s == "" {
		if required {
			return fmt.Errorf("%s is required", what)
		}
		return nil
	}
	if len(s) > maxIDLen {
		return fmt.Errorf("%s is %d bytes, at most %d", what, len(s), maxIDLen)
	}
	for _, r := range s {
		if !unicode.IsPrint(r) || unicode.IsSpace(r) {
			return fmt.Errorf("%s %q has a space or unprintable character", what, s)
		}
	}
	return nil
}

func validateHello(h *surgev1.Hello) error {
	if err := validName("agent_id", h.GetAgentId(), true); err != nil {
		return err
	}
	for _, f := range []struct{ what, v string }{
		{"incarnation", h.GetIncarnation()}, {"region", h.GetRegion()},
		{"zone", h.GetZone()}, {"version", h.GetVersion()},
	} {
		if err := validName(f.what, f.v, false); err != nil {
			return err
		}
	}
	if r := h.GetMaxRate(); math.IsNaN(r) || math.IsInf(r, 0) || r < 0 {
		return fmt.Errorf("max_rate %v must be a finite number >= 0", r)
	}
	if h.GetMaxVus() < 0 {
		return fmt.Errorf("max_vus %d must be >= 0", h.GetMaxVus())
	}
	if n := len(h.GetRuns()); n > maxHelloRuns {
		return fmt.Errorf("%d runs, at most %d", n, maxHelloRuns)
	}
	for _, re := range h.GetRuns() {
		if err := validName("run id", re.GetRunId(), true); err != nil {
			return err
		}
	}
	return nil
}

// Connect serves one agent. The handler goroutine owns Send; a receive
// goroutine (tracked by the controller) reads and dispatches.
func (g *gateway) Connect(stream surgev1.AgentGateway_ConnectServer) error {
	c := g.c
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	hello := first.GetHello()
	if hello == nil {
		return status.Errorf(codes.InvalidArgument, "first message must be Hello, got %T", first.GetMsg())
	}
	if err := validateHello(hello); err != nil {
		return status.Errorf(codes.InvalidArgument, "hello: %v", err)
	}
	region := hello.GetRegion()
	if region == "" {
		region = DefaultRegion
	}
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	a := &agentConn{
		id:          hello.GetAgentId(),
		incarnation: hello.GetIncarnation(),
		region:      region,
		zone:        hello.GetZone(),
		version:     hello.GetVersion(),
		maxRate:     hello.GetMaxRate(),
		maxVUs:      hello.GetMaxVus(),
		connectedAt: time.Now(),
		out:         make(chan *surgev1.ControllerMessage, agentQueue),
		cancel:      cancel,
	}
	if p, ok := peer.FromContext(stream.Context()); ok && p.Addr != nil {
		a.addr = p.Addr.String()
	}
	a.log = c.log.With(slog.String("agent", a.id), slog.String("region", a.region))
	if !c.registerAgent(a) {
		return status.Error(codes.Unavailable, "controller is shutting down")
	}
	defer c.unregisterAgent(a)
	a.log.Info("agent connected", slog.String("addr", a.addr), slog.String("incarnation", a.incarnation))
	a.send(&surgev1.ControllerMessage{Msg: &surgev1.ControllerMessage_Welcome{Welcome: &surgev1.Welcome{ControllerId: c.cfg.ID}}})
	c.attachAgent(ctx, a, hello.GetRuns())

	recvDone := make(chan error, 1)
	c.recvWG.Go(func() { recvDone <- g.recvLoop(ctx, a, stream) })

	for {
		select {
		case m := <-a.out:
			if err := sendOne(stream, m); err != nil {
				return err
			}
		case err := <-recvDone:
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		case <-ctx.Done():
			a.mu.Lock()
			replaced := a.replaced
			a.mu.Unlock()
			if replaced {
				return status.Error(codes.Aborted, "replaced by a newer connection with the same agent id")
			}
			return status.FromContextError(ctx.Err()).Err()
		case <-c.handlersCtx.Done():
			// Shutdown: flush what is queued (the runs' Stop) and end.
			for {
				select {
				case m := <-a.out:
					if err := sendOne(stream, m); err != nil {
						return err
					}
				default:
					return status.Error(codes.Unavailable, "controller is shutting down")
				}
			}
		}
	}
}

func sendOne(stream surgev1.AgentGateway_ConnectServer, m *surgev1.ControllerMessage) error {
	if r := m.GetClockReply(); r != nil {
		r.ControllerSendNs = time.Now().UnixNano()
	}
	if err := stream.Send(m); err != nil {
		return fmt.Errorf("send to agent: %w", err)
	}
	return nil
}

// recvLoop reads the agent's messages until the stream ends. A bad message
// is logged and counted; only a broken protocol ends the stream.
func (g *gateway) recvLoop(ctx context.Context, a *agentConn, stream surgev1.AgentGateway_ConnectServer) error {
	c := g.c
	for {
		m, err := stream.Recv()
		if err != nil {
			return err
		}
		recvNs := time.Now().UnixNano()
		switch msg := m.GetMsg().(type) {
		case *surgev1.AgentMessage_ClockProbe:
			a.send(&surgev1.ControllerMessage{Msg: &surgev1.ControllerMessage_ClockReply{ClockReply: &surgev1.ClockProbe{
				Id:               msg.ClockProbe.GetId(),
				AgentSendNs:      msg.ClockProbe.GetAgentSendNs(),
				ControllerRecvNs: recvNs,
			}}})
		case *surgev1.AgentMessage_Heartbeat:
			hb := msg.Heartbeat
			a.mu.Lock()
			a.offsetNs, a.rttNs = hb.GetClockOffsetNs(), hb.GetClockRttNs()
			if cpu := hb.GetStats().GetCpuPercent(); !math.IsNaN(cpu) && !math.IsInf(cpu, 0) {
				a.cpu = cpu
			}
			a.runs = slices.Clone(hb.GetRuns())
			if len(a.runs) > 64 {
				a.runs = a.runs[:64]
			}
			a.mu.Unlock()
		case *surgev1.AgentMessage_Snapshot:
			s := msg.Snapshot
			if s.GetAgentId() == "" {
				s.AgentId = a.id
			}
			if s.GetAgentId() != a.id {
				c.stats.snapshotsRejected.Add(1)
				a.log.Warn("snapshot rejected: agent id does not match the stream", slog.String("snapshot_agent", s.GetAgentId()))
				continue
			}
			r := c.lookupRun(s.GetRunId())
			if r == nil {
				c.stats.snapshotsUnknown.Add(1)
				a.log.Warn("snapshot for an unknown or ended run", slog.String("run", s.GetRunId()), slog.Uint64("seq", s.GetSeq()))
				continue
			}
			// s is the run goroutine's from here on (it changes it in
			// place): this loop never touches a delivered message again.
			r.deliver(ctx, snapshotIn{snap: s, from: a})
		case *surgev1.AgentMessage_RunEvent:
			ev := msg.RunEvent
			r := c.lookupRun(ev.GetRunId())
			if r == nil {
				a.log.Debug("run event for an unknown or ended run", slog.String("run", ev.GetRunId()), slog.String("kind", ev.GetKind().String()))
				continue
			}
			r.deliver(ctx, eventIn{ev: ev, from: a})
		case *surgev1.AgentMessage_Hello:
			a.log.Warn("ignoring a second Hello on the same stream")
		default:
			a.log.Warn("ignoring an empty or unknown agent message")
		}
	}
}

// registerAgent makes a the live connection for its id, closing any older
// one. It fails while the controller shuts down.
func (c *Controller) registerAgent(a *agentConn) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopping {
		return false
	}
	if old := c.agents[a.id]; old != nil {
		old.mu.Lock()
		old.replaced = true
		old.mu.Unlock()
		old.cancel()
		old.log.Info("agent reconnected; closing the older stream")
	}
	c.agents[a.id] = a
	return true
}

// unregisterAgent removes a from the live set (unless a newer connection
// replaced it) and tells the runs it took part in.
func (c *Controller) unregisterAgent(a *agentConn) {
	c.mu.Lock()
	if c.agents[a.id] == a {
		delete(c.agents, a.id)
	}
	var runs []*run
	for _, r := range c.runs {
		if _, ok := r.members[a.id]; ok {
			runs = append(runs, r)
		}
	}
	c.mu.Unlock()
	a.log.Info("agent disconnected")
	for _, r := range runs {
		r.deliver(context.Background(), streamLost{from: a})
	}
}

// liveAgents returns the connected agents sorted by region, then id.
func (c *Controller) liveAgents() []*agentConn {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*agentConn, 0, len(c.agents))
	for _, a := range c.agents {
		out = append(out, a)
	}
	slices.SortFunc(out, func(x, y *agentConn) int {
		if x.region != y.region {
			if x.region < y.region {
				return -1
			}
			return 1
		}
		if x.id < y.id {
			return -1
		}
		if x.id > y.id {
			return 1
		}
		return 0
	})
	return out
}
