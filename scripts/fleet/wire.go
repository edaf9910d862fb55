package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/surgeload/surge/internal/cputime"

	"github.com/klauspost/compress/zstd"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/encoding/gzip"
	"google.golang.org/protobuf/proto"

	"github.com/surgeload/surge/controller"
	surgev1 "github.com/surgeload/surge/gen/surge/v1"
)

// drainGateway is an AgentGateway that reads and counts snapshots.
type drainGateway struct {
	surgev1.UnimplementedAgentGatewayServer
	snapshots atomic.Int64
}

func (d *drainGateway) Connect(s surgev1.AgentGateway_ConnectServer) error {
	for {
		m, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if m.GetSnapshot() != nil {
			d.snapshots.Add(1)
		}
	}
}

// wireRow is one compression's figures.
type wireRow struct {
	name        string
	bytes       float64 // on the connection per snapshot, HTTP/2 framing included
	cpu         time.Duration
	protoBytes  int
	description string
	agents      bool // the compression surge's agents use
	// compress and decompress are the codec alone per snapshot, outside
	// gRPC (zero for none).
	compress, decompress time.Duration
	codecBytes           float64 // compressed message, no framing
}

type wireResult struct {
	o    options
	rows []wireRow
}

// surgeGzip names controller.Gzip in wire mode, where gRPC's own keeps
// the name "gzip" to be measured beside it; zstdDefault names
// controller.Zstd at zstd's default level, beside the fastest level that
// agents use (controller.ZstdName).
const (
	surgeGzip   = "gzip-surge"
	zstdDefault = "zstd-default"
)

// agentsCompression is the compression surge's agents use
// (agent/session.go).
const agentsCompression = controller.ZstdName

// renamed is a compressor under another encoding name.
type renamed struct {
	encoding.Compressor
	name string
}

func (r renamed) Name() string { return r.name }

// runWire sends o.snapshots snapshots over a real gRPC stream per
// compression, counting the bytes the client's connection writes.
func runWire(ctx context.Context, o options) (*wireResult, error) {
	// Main-owned registration, before any gRPC use: gRPC's own "gzip"
	// (default level) is registered by its package; this adds surge's
	// (the same format, see controller.Gzip) under another name.
	encoding.RegisterCompressor(renamed{Compressor: controller.NewGzip(), name: surgeGzip})
	encoding.RegisterCompressor(controller.NewZstd())
	zd, err := controller.NewZstdLevel(zstd.SpeedDefault, controller.MaxRecvMsgSize)
	if err != nil {
		return nil, err
	}
	encoding.RegisterCompressor(renamed{Compressor: zd, name: zstdDefault})

	payloads, err := makePayloads(o.variants, o.series, o.values)
	if err != nil {
		return nil, err
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	srv := grpc.NewServer(grpc.MaxRecvMsgSize(16 << 20))
	gw := &drainGateway{}
	surgev1.RegisterAgentGatewayServer(srv, gw)
	var wg sync.WaitGroup
	wg.Go(func() { _ = srv.Serve(lis) })
	defer func() {
		srv.Stop()
		wg.Wait()
	}()

	res := &wireResult{o: o}
	for _, c := range []struct{ name, desc string }{
		{"", "none (before)"},
		{gzip.Name, "gzip, gRPC's default level (6)"},
		{surgeGzip, "gzip, fastest level, in-memory inflate (`controller.Gzip`, agents before zstd)"},
		{controller.ZstdName, "zstd, fastest level (`controller.Zstd`)"},
		{zstdDefault, "zstd, default level"},
	} {
		row, err := wireOne(ctx, lis.Addr().String(), c.name, payloads, o.snapshots, gw)
		if err != nil {
			return nil, err
		}
		if c.name != "" {
			if err := codecCost(&row, encoding.GetCompressor(c.name), payloads, o.snapshots); err != nil {
				return nil, err
			}
		}
		row.description = c.desc
		row.agents = c.name == agentsCompression
		if row.agents {
			row.description += ", what agents use"
		}
		res.rows = append(res.rows, row)
	}
	return res, nil
}

func wireOne(ctx context.Context, addr, comp string, ps *payloadSet, n int, gw *drainGateway) (wireRow, error) {
	var cnt counters
	dial := func(ctx context.Context, addr string) (net.Conn, error) {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, err
		}
		return countingConn{Conn: c, c: &cnt}, nil
	}
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithContextDialer(dial),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(16<<20)))
	if err != nil {
		return wireRow{}, fmt.Errorf("wire client: %w", err)
	}
	defer cc.Close()
	var opts []grpc.CallOption
	if comp != "" {
		opts = append(opts, grpc.UseCompressor(comp))
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	str, err := surgev1.NewAgentGatewayClient(cc).Connect(sctx, opts...)
	if err != nil {
		return wireRow{}, fmt.Errorf("wire connect: %w", err)
	}
	if err := str.Send(&surgev1.AgentMessage{Msg: &surgev1.AgentMessage_Hello{Hello: &surgev1.Hello{AgentId: "wire"}}}); err != nil {
		return wireRow{}, fmt.Errorf("wire hello: %w", err)
	}
	msg := func(i int) *surgev1.AgentMessage { return wireSnapshot(ps, i) }
	protoBytes := proto.Size(msg(0))
	// Let the hello through first, then count only the snapshots.
	before := gw.snapshots.Load()
	time.Sleep(50 * time.Millisecond)
	w0, cpu0 := cnt.written.Load(), cputime.Process()
	for i := range n {
		if err := str.Send(msg(i)); err != nil {
			return wireRow{}, fmt.Errorf("wire send: %w", err)
		}
	}
	deadline := time.Now().Add(time.Minute)
	for gw.snapshots.Load() < before+int64(n) {
		if time.Now().After(deadline) {
			return wireRow{}, errors.New("wire: the server did not receive every snapshot within a minute")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cpu := cputime.Process() - cpu0
	written := cnt.written.Load() - w0
	_ = str.CloseSend()
	return wireRow{name: comp, bytes: float64(written) / float64(n), cpu: cpu / time.Duration(n), protoBytes: protoBytes}, nil
}

// wireSnapshot is the i-th snapshot wire mode sends.
func wireSnapshot(ps *payloadSet, i int) *surgev1.AgentMessage {
	return &surgev1.AgentMessage{Msg: &surgev1.AgentMessage_Snapshot{Snapshot: &surgev1.Snapshot{
		RunId: "20261126-120000-abcd", AgentId: "agent-01", Seq: uint64(i + 1), Epoch: 1, Interval: int64(i),
		Series:    ps.series[i%len(ps.series)],
		Scenarios: []*surgev1.ScenarioStats{{Scenario: fleetScenario, Scheduled: 1000, Started: 1000, Completed: 1000, TargetRate: 1000}},
		Agent:     &surgev1.AgentStats{CpuPercent: 30, RssBytes: 80 << 20, Goroutines: 200},
	}}}
}

// codecMinCPU is how much CPU each half of codecCost spends at least, so
// the process's CPU clock resolves it.
const codecMinCPU = 200 * time.Millisecond

// codecCost measures c alone on n encoded snapshots, outside gRPC: CPU per
// compress and per decompress (the controller's side), and the compressed
// size. Each half repeats over the snapshots until it spent codecMinCPU.
func codecCost(row *wireRow, c encoding.Compressor, ps *payloadSet, n int) error {
	if c == nil {
		return fmt.Errorf("wire: compressor %q not registered", row.name)
	}
	n = max(n, 1)
	msgs := make([][]byte, n)
	for i := range msgs {
		b, err := proto.Marshal(wireSnapshot(ps, i))
		if err != nil {
			return fmt.Errorf("wire: marshal: %w", err)
		}
		msgs[i] = b
	}
	comp := make([][]byte, n)
	var total int
	var buf bytes.Buffer
	cpu0, ops := cputime.Process(), 0
	for cputime.Process()-cpu0 < codecMinCPU || ops < n {
		i := ops % n
		buf.Reset()
		w, err := c.Compress(&buf)
		if err != nil {
			return fmt.Errorf("wire: %s compress: %w", row.name, err)
		}
		if _, err := w.Write(msgs[i]); err != nil {
			return fmt.Errorf("wire: %s compress: %w", row.name, err)
		}
		if err := w.Close(); err != nil {
			return fmt.Errorf("wire: %s compress: %w", row.name, err)
		}
		if ops < n {
			comp[i] = bytes.Clone(buf.Bytes())
			total += buf.Len()
		}
		ops++
	}
	row.compress = (cputime.Process() - cpu0) / time.Duration(ops)
	row.codecBytes = float64(total) / float64(n)
	cpu0, ops = cputime.Process(), 0
	for cputime.Process()-cpu0 < codecMinCPU || ops < n {
		i := ops % n
		r, err := c.Decompress(bytes.NewReader(comp[i]))
		if err != nil {
			return fmt.Errorf("wire: %s decompress: %w", row.name, err)
		}
		buf.Reset()
		if _, err := buf.ReadFrom(r); err != nil {
			return fmt.Errorf("wire: %s decompress: %w", row.name, err)
		}
		if !bytes.Equal(buf.Bytes(), msgs[i]) {
			return fmt.Errorf("wire: %s: snapshot %d did not round-trip", row.name, i)
		}
		ops++
	}
	row.decompress = (cputime.Process() - cpu0) / time.Duration(ops)
	return nil
}

func (r *wireResult) markdown(w io.Writer) {
	o := r.o
	fmt.Fprintf(w, "%d snapshots of %d series (a latency and a service-time histogram of %d values over 0.5–50 ms each) per compression, over one gRPC stream on loopback; bytes counted on the client's connection (HTTP/2 framing included).\n\n",
		o.snapshots, o.series, o.values)
	fmt.Fprintf(w, "| compression | bytes per snapshot on the wire | KB/s per agent at 1 snapshot/s | ≤ 20 KB/s | CPU per snapshot (sender + receiver) | compress CPU | decompress CPU (controller) |\n")
	fmt.Fprintf(w, "|---|---:|---:|---|---:|---:|---:|\n")
	for _, row := range r.rows {
		codec := "| – | –"
		if row.name != "" {
			codec = fmt.Sprintf("| %.0f µs | %.0f µs", us(row.compress), us(row.decompress))
		}
		fmt.Fprintf(w, "| %s | %.0f | %.1f | %s | %.0f µs %s |\n", row.description, row.bytes, row.bytes/1000,
			verdict(row.bytes <= 20_000), us(row.cpu), codec)
	}
	if len(r.rows) > 0 {
		fmt.Fprintf(w, "\nThe encoded snapshot message is %d bytes. CPU per snapshot is this process's user + system time (marshal, compress, HTTP/2, decompress, unmarshal); compress and decompress CPU are the codec alone on the same messages, outside gRPC; on a shared machine.\n", r.rows[0].protoBytes)
	}
}

// us is d in microseconds.
func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
