package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"github.com/surgeload/surge/controller"
	surgev1 "github.com/surgeload/surge/gen/surge/v1"
	"github.com/surgeload/surge/hist"
)

// payloadSet is the series payloads simulated agents send: variants of
// series series, each with a latency and a service-time histogram of
// about values values spread over 0.5-50 ms (0.4-40 ms), as a busy
// agent records them in one interval.
type payloadSet struct {
	series [][]*surgev1.Series
	raw    [][]byte // each variant's encoded Snapshot.series fields
	// requests is each variant's request count (the sum of its series').
	requests []int64
}

// makePayloads builds variants payloads. Variant v's series count
// values+v requests each, so the variants differ from their first bytes
// on (the precompressor tells them apart by those).
func makePayloads(variants, series, values int) (*payloadSet, error) {
	ps := &payloadSet{}
	r := rand.New(rand.NewPCG(7, 7))
	for v := range variants {
		s := hist.NewSet()
		n := values + v
		for k := range series {
			sr := s.Get(hist.Key{Scenario: fleetScenario, Request: fmt.Sprintf("GET /api/%02d", k), Status: "2xx"})
			sr.Counters.Requests = int64(n)
			sr.Counters.BytesIn, sr.Counters.BytesOut = int64(n)*512, int64(n)*128
			for range n {
				_ = sr.Latency.RecordValue(500 + r.Int64N(50_000))
				_ = sr.Service.RecordValue(400 + r.Int64N(40_000))
			}
		}
		list := s.ToProto()
		raw, err := proto.Marshal(&surgev1.Snapshot{Series: list})
		if err != nil {
			return nil, fmt.Errorf("payload: %w", err)
		}
		ps.series = append(ps.series, list)
		ps.raw = append(ps.raw, raw)
		ps.requests = append(ps.requests, int64(n*series))
	}
	return ps, nil
}

// fleetScenario is the simulated plan's one scenario.
const fleetScenario = "fleet"

// counters are byte counts of the simulated agents' connections.
type counters struct {
	written, read atomic.Int64
}

// countingConn counts the bytes a connection carries.
type countingConn struct {
	net.Conn
	c *counters
}

func (c countingConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.c.written.Add(int64(n))
	return n, err
}

func (c countingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.c.read.Add(int64(n))
	return n, err
}

// simOptions drive one simulated agent.
type simOptions struct {
	addr      string
	compress  bool
	intervals int64         // snapshots to send, one per interval
	offset    time.Duration // after each interval's end, when its snapshot goes out
	payloads  *payloadSet
	counters  *counters
}

// simAgent speaks the agent side of AgentGateway.Connect as agent/session.go
// and agent/run.go do: Hello, ACCEPTED on Assign, STARTED at the start,
// one Snapshot per interval with increasing seq (the last one final),
// FINISHED, and a heartbeat every second; it counts the acks.
type simAgent struct {
	id  string
	o   simOptions
	cc  *grpc.ClientConn
	str grpc.BidiStreamingClient[surgev1.AgentMessage, surgev1.ControllerMessage]

	assign chan *surgev1.Assign
	acked  atomic.Int64
	stops  atomic.Int64
	sent   atomic.Int64
	// worstSendLate is the latest a snapshot went out after its planned
	// time (the simulator's own lag, or the controller's backpressure),
	// in nanoseconds.
	worstSendLate atomic.Int64
	// recvDone closes when recv returns; recvErr is why.
	recvDone chan struct{}
	recvErr  error
}

// connect opens the stream and sends Hello; recv runs until the stream
// ends (the caller waits for it via wait).
func connectSim(ctx context.Context, id string, o simOptions) (*simAgent, error) {
	dial := func(ctx context.Context, addr string) (net.Conn, error) {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, err
		}
		return countingConn{Conn: c, c: o.counters}, nil
	}
	cc, err := grpc.NewClient(o.addr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithContextDialer(dial),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(16<<20), grpc.MaxCallSendMsgSize(16<<20)))
	if err != nil {
		return nil, fmt.Errorf("agent %s: %w", id, err)
	}
	var opts []grpc.CallOption
	if o.compress {
		opts = append(opts, grpc.UseCompressor(controller.ZstdName)) // as agents do
	}
	str, err := surgev1.NewAgentGatewayClient(cc).Connect(ctx, opts...)
	if err != nil {
		_ = cc.Close()
		return nil, fmt.Errorf("agent %s: connect: %w", id, err)
	}
	a := &simAgent{id: id, o: o, cc: cc, str: str, assign: make(chan *surgev1.Assign, 1), recvDone: make(chan struct{})}
	hello := &surgev1.Hello{AgentId: id, Incarnation: "sim-1", Region: "sim", Version: "fleet-sim"}
	if err := str.Send(&surgev1.AgentMessage{Msg: &surgev1.AgentMessage_Hello{Hello: hello}}); err != nil {
		_ = cc.Close()
		return nil, fmt.Errorf("agent %s: hello: %w", id, err)
	}
	return a, nil
}

// recv reads controller messages until the stream ends.
func (a *simAgent) recv() {
	defer close(a.recvDone)
	for {
		m, err := a.str.Recv()
		if err != nil {
			a.recvErr = err
			return
		}
		switch msg := m.GetMsg().(type) {
		case *surgev1.ControllerMessage_Assign:
			select {
			case a.assign <- msg.Assign:
			default: // a repeated Assign (re-attach): the first one stands
			}
		case *surgev1.ControllerMessage_SnapshotAck:
			a.acked.Add(1)
		case *surgev1.ControllerMessage_Stop:
			a.stops.Add(1)
		}
	}
}

func (a *simAgent) send(m *surgev1.AgentMessage) error {
	if err := a.str.Send(m); err != nil {
		return fmt.Errorf("agent %s: send: %w", a.id, err)
	}
	return nil
}

func (a *simAgent) event(as *surgev1.Assign, kind surgev1.RunEvent_Kind) error {
	return a.send(&surgev1.AgentMessage{Msg: &surgev1.AgentMessage_RunEvent{RunEvent: &surgev1.RunEvent{
		RunId: as.GetRunId(), Epoch: as.GetEpoch(), Kind: kind, AtUnixNs: time.Now().UnixNano()}}})
}

// sleepUntil waits until t or ctx ends.
func sleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// run accepts the first Assign and sends the run's snapshots on time.
// starts receives the run's start in the controller's clock (the first
// agent to know it tells the watcher).
func (a *simAgent) run(ctx context.Context, starts chan<- time.Time, variant int) error {
	var as *surgev1.Assign
	select {
	case as = <-a.assign:
	case <-a.recvDone:
		return fmt.Errorf("agent %s: stream ended before an assign: %w", a.id, a.recvErr)
	case <-ctx.Done():
		return ctx.Err()
	}
	if err := a.event(as, surgev1.RunEvent_KIND_ACCEPTED); err != nil {
		return err
	}
	select {
	case starts <- time.Unix(0, as.GetControllerStartUnixNs()):
	default:
	}
	start := time.Unix(0, as.GetStartUnixNs())
	interval := time.Duration(as.GetIntervalMs()) * time.Millisecond
	if err := sleepUntil(ctx, start); err != nil {
		return err
	}
	if err := a.event(as, surgev1.RunEvent_KIND_STARTED); err != nil {
		return err
	}
	var nScen int64
	if sh := as.GetShare(); sh != nil && len(sh.GetScenarios()) > 0 {
		nScen = sh.GetScenarios()[0].GetArrivals()
	}
	ps := a.o.payloads
	for i := range a.o.intervals {
		// A heartbeat mid-interval, as the agent's own ticker sends one
		// every second.
		if err := sleepUntil(ctx, start.Add(time.Duration(i)*interval+interval/2)); err != nil {
			return err
		}
		hb := &surgev1.Heartbeat{Stats: &surgev1.AgentStats{CpuPercent: 30, RssBytes: 80 << 20, Goroutines: 200}, Runs: []string{as.GetRunId()}}
		if err := a.send(&surgev1.AgentMessage{Msg: &surgev1.AgentMessage_Heartbeat{Heartbeat: hb}}); err != nil {
			return err
		}
		due := start.Add(time.Duration(i+1)*interval + a.o.offset)
		if err := sleepUntil(ctx, due); err != nil {
			return err
		}
		v := (variant + int(i)) % len(ps.series)
		req := ps.requests[v]
		s := &surgev1.Snapshot{
			RunId: as.GetRunId(), AgentId: a.id, Seq: uint64(i + 1), Epoch: as.GetEpoch(), Interval: i,
			Series: ps.series[v],
			Scenarios: []*surgev1.ScenarioStats{{Scenario: fleetScenario, Scheduled: req, Started: req, Completed: req,
				ActiveVus: 4, AllocatedVus: 8, TargetRate: float64(nScen) / a.o.intervalsSeconds(interval)}},
			Agent: &surgev1.AgentStats{CpuPercent: 30, RssBytes: 80 << 20, Goroutines: 200},
			Final: i == a.o.intervals-1,
		}
		if late := time.Since(due); late > time.Duration(a.worstSendLate.Load()) {
			a.worstSendLate.Store(int64(late))
		}
		if err := a.send(&surgev1.AgentMessage{Msg: &surgev1.AgentMessage_Snapshot{Snapshot: s}}); err != nil {
			return err
		}
		a.sent.Add(1)
	}
	return a.event(as, surgev1.RunEvent_KIND_FINISHED)
}

func (o simOptions) intervalsSeconds(interval time.Duration) float64 {
	return max(float64(o.intervals)*interval.Seconds(), 1e-9)
}

// close ends the stream; recv then returns.
func (a *simAgent) close() {
	_ = a.str.CloseSend()
	_ = a.cc.Close()
}

// waitAcks waits until every sent snapshot was acknowledged or d passed.
func waitAcks(ctx context.Context, agents []*simAgent, d time.Duration) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		all := true
		for _, a := range agents {
			if a.acked.Load() < a.sent.Load() {
				all = false
				break
			}
		}
		if all {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// connectAll connects n simulated agents, at most 32 at a time.
func connectAll(ctx context.Context, n int, o func(i int) simOptions) ([]*simAgent, error) {
	agents := make([]*simAgent, n)
	errs := make([]error, n)
	sem := make(chan struct{}, 32)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			agents[i], errs[i] = connectSim(ctx, fmt.Sprintf("sim-%04d", i), o(i))
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		for _, a := range agents {
			if a != nil {
				a.close()
			}
		}
		return nil, err
	}
	return agents, nil
}
