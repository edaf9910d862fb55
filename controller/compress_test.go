package controller

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/klauspost/compress/zstd"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding"
	"google.golang.org/protobuf/proto"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
)

// testSnapshot is a snapshot of about size bytes, compressible as real
// ones are (repeated names, varied counts).
func testSnapshot(seq, size int) *surgev1.AgentMessage {
	s := &surgev1.Snapshot{RunId: "20261126-120000-abcd", AgentId: "agent-01", Seq: uint64(seq), Epoch: 1}
	for i := 0; proto.Size(s) < size; {
		for range 256 { // measure now and then: proto.Size walks everything
			s.Scenarios = append(s.Scenarios, &surgev1.ScenarioStats{
				Scenario: fmt.Sprintf("scenario-%d", i%37), Scheduled: int64(1000 + i*seq%977), Started: int64(i), Completed: int64(i * 3)})
			i++
		}
	}
	return &surgev1.AgentMessage{Msg: &surgev1.AgentMessage_Snapshot{Snapshot: s}}
}

func roundTrip(t *testing.T, c encoding.Compressor, msg []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := c.Compress(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(msg); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := c.Decompress(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, msg) {
		t.Fatalf("round trip: %d bytes back, want the %d sent", len(got), len(msg))
	}
	return buf.Bytes()
}

// Both levels round-trip messages from empty to larger than a block,
// concurrently (the pools hand each message its own state), and compress
// a snapshot.
func TestZstdRoundTrip(t *testing.T) {
	fast := NewZstd()
	def, err := NewZstdLevel(zstd.SpeedDefault, MaxRecvMsgSize)
	if err != nil {
		t.Fatal(err)
	}
	msgs := [][]byte{{}, []byte("x")}
	for _, size := range []int{100, 34_000, 300_000} {
		b, err := proto.Marshal(testSnapshot(size, size))
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, b)
	}
	for _, c := range []*Zstd{fast, def} {
		if c.Name() != "zstd" {
			t.Fatalf("name %q", c.Name())
		}
		if z := roundTrip(t, c, msgs[3]); len(z) >= len(msgs[3])/2 {
			t.Fatalf("34 KB snapshot compressed to %d bytes of %d", len(z), len(msgs[3]))
		}
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Go(func() {
				for i := range 20 {
					roundTrip(t, c, msgs[(g+i)%len(msgs)])
				}
			})
		}
		wg.Wait()
	}
}

// Corrupt, truncated and foreign input is an error, never a panic; the
// pooled state stays usable after it.
func TestZstdCorrupt(t *testing.T) {
	c := NewZstd()
	msg, err := proto.Marshal(testSnapshot(1, 34_000))
	if err != nil {
		t.Fatal(err)
	}
	good := roundTrip(t, c, msg)
	flipped := bytes.Clone(good)
	flipped[len(flipped)/2] ^= 0xff
	var gz bytes.Buffer
	w, _ := NewGzip().Compress(&gz)
	_, _ = w.Write(msg)
	_ = w.Close()
	for name, in := range map[string][]byte{
		"empty":     {},
		"garbage":   []byte("not zstd at all, not even close"),
		"truncated": good[:len(good)/2],
		"flipped":   flipped,
		"gzip":      gz.Bytes(),
	} {
		r, err := c.Decompress(bytes.NewReader(in))
		if err == nil {
			// A frame may only fail when read to its end; it must fail.
			_, err = io.ReadAll(r)
		}
		if err == nil && name != "empty" {
			t.Errorf("%s: accepted", name)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "zstd: ") {
			t.Errorf("%s: error %q lacks the zstd prefix", name, err)
		}
	}
	roundTrip(t, c, msg)
}

// A small frame that inflates past the bound fails before the memory is
// taken, whether the frame declares its size or not.
func TestZstdBomb(t *testing.T) {
	const bound = 1 << 20
	c, err := NewZstdLevel(zstd.SpeedFastest, bound)
	if err != nil {
		t.Fatal(err)
	}
	zeros := make([]byte, 64<<20)
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	sized := enc.EncodeAll(zeros, nil) // declares 64 MiB in its header
	var stream bytes.Buffer            // declares nothing
	enc.Reset(&stream)
	if _, err := enc.Write(zeros); err != nil {
		t.Fatal(err)
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	zeros = nil
	for name, bomb := range map[string][]byte{"sized": sized, "unsized": stream.Bytes()} {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		r, err := c.Decompress(bytes.NewReader(bomb))
		if err == nil {
			_, err = io.Copy(io.Discard, r)
		}
		runtime.ReadMemStats(&after)
		if !errors.Is(err, zstd.ErrDecoderSizeExceeded) && !errors.Is(err, zstd.ErrWindowSizeExceeded) {
			t.Errorf("%s bomb of %d bytes: error %v, want the size exceeded", name, len(bomb), err)
		}
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 8*bound {
			t.Errorf("%s bomb: %d bytes allocated, bound %d", name, alloc, bound)
		}
	}
	if _, err := NewZstdLevel(zstd.SpeedFastest, 10); err == nil {
		t.Error("a bound below zstd's smallest window accepted")
	}
}

// echoGateway reads snapshots and acknowledges each, so both directions
// go through the compressor.
type echoGateway struct {
	surgev1.UnimplementedAgentGatewayServer
	mu  sync.Mutex
	got []*surgev1.Snapshot
}

func (g *echoGateway) Connect(s surgev1.AgentGateway_ConnectServer) error {
	for {
		m, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		g.mu.Lock()
		g.got = append(g.got, m.GetSnapshot())
		g.mu.Unlock()
		ack := &surgev1.SnapshotAck{RunId: m.GetSnapshot().GetRunId(), Seq: m.GetSnapshot().GetSeq()}
		if err := s.Send(&surgev1.ControllerMessage{Msg: &surgev1.ControllerMessage_SnapshotAck{SnapshotAck: ack}}); err != nil {
			return err
		}
	}
}

// testZstdName registers Zstd under a name of this test's own, so other
// tests' streams keep what they chose.
const testZstdName = "zstd-compress-test"

type renamedZstd struct{ *Zstd }

func (renamedZstd) Name() string { return testZstdName }

// Snapshots round-trip through a real gRPC stream compressed with Zstd,
// the controller answering in kind; a message that inflates past the
// server's limit ends the stream with an error, and the server lives on.
func TestZstdGRPCStream(t *testing.T) {
	encoding.RegisterCompressor(renamedZstd{NewZstd()})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.MaxRecvMsgSize(MaxRecvMsgSize))
	gw := &echoGateway{}
	surgev1.RegisterAgentGatewayServer(srv, gw)
	var wg sync.WaitGroup
	wg.Go(func() { _ = srv.Serve(lis) })
	defer func() {
		srv.Stop()
		wg.Wait()
	}()
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	str, err := surgev1.NewAgentGatewayClient(cc).Connect(ctx, grpc.UseCompressor(testZstdName))
	if err != nil {
		t.Fatal(err)
	}
	var sent []*surgev1.AgentMessage
	for i, size := range []int{10, 34_000, 34_000, 200_000, 1 << 20} {
		m := testSnapshot(i+1, size)
		sent = append(sent, m)
		if err := str.Send(m); err != nil {
			t.Fatal(err)
		}
		ack, err := str.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if ack.GetSnapshotAck().GetSeq() != uint64(i+1) {
			t.Fatalf("ack %v for seq %d", ack, i+1)
		}
	}
	_ = str.CloseSend()
	if _, err := str.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("end of stream: %v", err)
	}
	gw.mu.Lock()
	if len(gw.got) != len(sent) {
		t.Fatalf("server got %d snapshots, want %d", len(gw.got), len(sent))
	}
	for i := range sent {
		if !proto.Equal(gw.got[i], sent[i].GetSnapshot()) {
			t.Fatalf("snapshot %d changed on the way", i+1)
		}
	}
	gw.got = nil
	gw.mu.Unlock()

	// 20 MiB of one byte compresses to a few KB but inflates past the
	// server's 16 MiB limit.
	big, err := surgev1.NewAgentGatewayClient(cc).Connect(ctx, grpc.UseCompressor(testZstdName))
	if err != nil {
		t.Fatal(err)
	}
	huge := &surgev1.AgentMessage{Msg: &surgev1.AgentMessage_Snapshot{Snapshot: &surgev1.Snapshot{RunId: strings.Repeat("a", 20<<20)}}}
	if err := big.Send(huge); err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	if _, err := big.Recv(); err == nil {
		t.Fatal("a message inflating past the limit was accepted")
	}
	// The server still serves.
	again, err := surgev1.NewAgentGatewayClient(cc).Connect(ctx, grpc.UseCompressor(testZstdName))
	if err != nil {
		t.Fatal(err)
	}
	if err := again.Send(testSnapshot(9, 1000)); err != nil {
		t.Fatal(err)
	}
	if _, err := again.Recv(); err != nil {
		t.Fatalf("after the oversized message: %v", err)
	}
	_ = again.CloseSend()
	if _, err := again.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("end of stream: %v", err)
	}
}
