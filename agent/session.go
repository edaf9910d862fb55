package agent

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/encoding/gzip"
	"google.golang.org/grpc/keepalive"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
)

// zstdName is the gRPC encoding name of zstd (controller.ZstdName).
const zstdName = "zstd"

// streamCompressor is the compression of the agent's stream: snapshots
// shrink to less than half (docs/benchmarks.md, goal 4). zstd when the process registered it
// (cmd/surge registers controller.Zstd), which the controller inflates for
// a fraction of gzip's CPU; else gzip, gRPC's own compressor, registered
// by importing its package. Controllers that predate zstd do not read it:
// upgrade controllers first (docs/operations.md). The controller answers
// in kind.
func streamCompressor() string {
	if encoding.GetCompressor(zstdName) != nil {
		return zstdName
	}
	return gzip.Name
}

// Message size limits of the agent's side of the stream.
const (
	// MaxRecvMsgSize bounds one message from the controller: an Assign
	// with the plan as JSON (plans are at most 4 MiB of YAML).
	MaxRecvMsgSize = 16 << 20
	// MaxSendMsgSize bounds one message to the controller; it matches the
	// controller's receive limit.
	MaxSendMsgSize = 16 << 20
)

// Session timings.
const (
	heartbeatEvery      = time.Second
	initialProbes       = 8
	initialProbeSpacing = 25 * time.Millisecond
	probeEvery          = 5 * time.Second
)

type agentStream = grpc.BidiStreamingClient[surgev1.AgentMessage, surgev1.ControllerMessage]

// session holds one stream with the controller at addr. It returns nil when
// the outbox was closed and everything delivered, else why the stream
// ended; established reports that the controller answered.
func (a *Agent) session(ctx context.Context, addr string) (established bool, err error) {
	creds := insecure.NewCredentials()
	if a.cfg.TLS != nil {
		creds = credentials.NewTLS(a.cfg.TLS)
	}
	cc, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(creds),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 10 * time.Second, Timeout: 5 * time.Second, PermitWithoutStream: true}),
		// Assigns carry the plan (at most 4 MiB of YAML, a little more as
		// JSON); snapshots are bounded by the controller's own limit.
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxRecvMsgSize), grpc.MaxCallSendMsgSize(MaxSendMsgSize)),
	)
	if err != nil {
		return false, fmt.Errorf("dial controller %s: %w", addr, err)
	}
	defer cc.Close()

	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := surgev1.NewAgentGatewayClient(cc).Connect(sctx, grpc.UseCompressor(streamCompressor()))
	if err != nil {
		return false, fmt.Errorf("connect to controller %s: %w", addr, err)
	}
	hello := &surgev1.Hello{
		AgentId:     a.cfg.ID,
		Incarnation: a.incarnation,
		Region:      a.cfg.Region,
		Zone:        a.cfg.Zone,
		Version:     a.cfg.Version,
		MaxRate:     a.cfg.MaxRate,
		MaxVus:      a.cfg.MaxVUs,
		Labels:      a.cfg.Labels,
		Allow:       a.allow.Entries(),
		Runs:        a.runEpochs(),
	}
	if err := stream.Send(&surgev1.AgentMessage{Msg: &surgev1.AgentMessage_Hello{Hello: hello}}); err != nil {
		return false, fmt.Errorf("send hello: %w", err)
	}
	a.log.Info("connected to controller", "addr", addr, "runs", len(hello.Runs))
	defer func() {
		if a.connected.Swap(false) {
			a.lostAt.Store(a.watch.now())
		}
	}()

	var (
		est     = newClockEstimator()
		estab   atomic.Bool
		recvErr = make(chan error, 1)
		wg      sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		recvErr <- a.recvLoop(stream, est, &estab)
	}()
	err = a.sendLoop(sctx, stream, est, recvErr)
	if err == nil {
		_ = stream.CloseSend()
	}
	cancel()
	wg.Wait()
	return estab.Load(), err
}

// recvLoop handles controller messages until the stream ends.
func (a *Agent) recvLoop(stream agentStream, est *clockEstimator, estab *atomic.Bool) error {
	for {
		msg, err := stream.Recv()
		if err != nil {
			return fmt.Errorf("receive: %w", err)
		}
		if !estab.Swap(true) {
			a.connected.Store(true)
		}
		switch m := msg.GetMsg().(type) {
		case *surgev1.ControllerMessage_Welcome:
			a.log.Info("welcomed by controller", "controller", m.Welcome.GetControllerId())
		case *surgev1.ControllerMessage_Assign:
			a.assign(m.Assign)
		case *surgev1.ControllerMessage_Stop:
			a.stop(m.Stop)
		case *surgev1.ControllerMessage_ClockReply:
			est.reply(m.ClockReply, time.Now().UnixNano())
		case *surgev1.ControllerMessage_SnapshotAck:
			a.out.ack(m.SnapshotAck.GetRunId(), m.SnapshotAck.GetSeq())
		default:
			a.log.Warn("unknown controller message", "type", fmt.Sprintf("%T", m))
		}
	}
}

// sendLoop owns stream.Send: it sends the outbox, heartbeats and clock
// probes until the stream fails, ctx ends, or the outbox is closed and
// delivered (nil).
func (a *Agent) sendLoop(ctx context.Context, stream agentStream, est *clockEstimator, recvErr <-chan error) error {
	gen := a.out.newSession()
	stats := newStatsSampler(&a.conns)
	hb := time.NewTicker(heartbeatEvery)
	defer hb.Stop()
	probeT := time.NewTimer(0)
	defer probeT.Stop()
	probes := 0
	for {
		for _, it := range a.out.unsent(gen) {
			if err := stream.Send(it.msg); err != nil {
				return fmt.Errorf("send: %w", err)
			}
			a.out.sent(it, gen)
		}
		if a.out.drained(gen) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-recvErr:
			if err == nil {
				err = errors.New("receive loop ended")
			}
			return err
		case <-a.out.notify:
		case <-a.repair:
			return errors.New("paused: reconnecting to have the runs confirmed")
		case <-hb.C:
			off, rtt, _ := est.estimate()
			h := &surgev1.Heartbeat{Stats: stats.sample(), ClockOffsetNs: off, ClockRttNs: rtt, Runs: a.runIDs()}
			if err := stream.Send(&surgev1.AgentMessage{Msg: &surgev1.AgentMessage_Heartbeat{Heartbeat: h}}); err != nil {
				return fmt.Errorf("send heartbeat: %w", err)
			}
		case <-probeT.C:
			p := est.probe(time.Now().UnixNano())
			if err := stream.Send(&surgev1.AgentMessage{Msg: &surgev1.AgentMessage_ClockProbe{ClockProbe: p}}); err != nil {
				return fmt.Errorf("send clock probe: %w", err)
			}
			probes++
			if probes < initialProbes {
				probeT.Reset(initialProbeSpacing)
			} else {
				probeT.Reset(probeEvery)
			}
		}
	}
}

// runIDs lists the runs this agent is running, sorted.
func (a *Agent) runIDs() []string {
	a.runsMu.Lock()
	defer a.runsMu.Unlock()
	ids := make([]string, 0, len(a.runs))
	for id := range a.runs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}
