package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc/encoding"
	grpcgzip "google.golang.org/grpc/encoding/gzip"
	"google.golang.org/protobuf/proto"

	"github.com/surgeload/surge/controller"
	surgev1 "github.com/surgeload/surge/gen/surge/v1"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func compress(t *testing.T, c encoding.Compressor, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := c.Compress(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func decompress(t *testing.T, c encoding.Compressor, b []byte) []byte {
	t.Helper()
	r, err := c.Decompress(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// A snapshot carrying a known payload goes out as head + precomputed
// payload + tail gzip members, and gRPC's own gzip decompressor (the
// controller's) reads back exactly the message; other messages are plain
// gzip.
func TestPrecompressorRoundTrip(t *testing.T) {
	ps, err := makePayloads(3, 4, 200)
	if err != nil {
		t.Fatal(err)
	}
	pc := newPrecompressor("gzip")
	for _, raw := range ps.raw {
		if err := pc.addPayload(raw); err != nil {
			t.Fatal(err)
		}
	}
	if err := pc.addPayload(ps.raw[0]); err == nil {
		t.Fatal("the same payload registered twice")
	}
	grpcGzip := encoding.GetCompressor(grpcgzip.Name)
	for v := range ps.series {
		for _, final := range []bool{false, true} {
			m := &surgev1.AgentMessage{Msg: &surgev1.AgentMessage_Snapshot{Snapshot: &surgev1.Snapshot{
				RunId: "run", AgentId: "sim-0001", Seq: 7, Epoch: 1, Interval: 6, Series: ps.series[v],
				Scenarios: []*surgev1.ScenarioStats{{Scenario: fleetScenario, Started: 9}}, Final: final}}}
			b, err := proto.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			head, pl, tail := pc.split(b)
			if pl == nil || !bytes.Equal(pl.raw, ps.raw[v]) || len(head)+len(pl.raw)+len(tail) != len(b) {
				t.Fatalf("variant %d: payload not found in the message", v)
			}
			z := compress(t, pc, b)
			if !bytes.Contains(z, pl.gz) {
				t.Fatalf("variant %d: the precomputed member is not in the output", v)
			}
			if got := decompress(t, grpcGzip, z); !bytes.Equal(got, b) {
				t.Fatalf("variant %d: gRPC's gzip read back %d bytes, want the %d sent", v, len(got), len(b))
			}
		}
	}
	hb, err := proto.Marshal(&surgev1.AgentMessage{Msg: &surgev1.AgentMessage_Heartbeat{Heartbeat: &surgev1.Heartbeat{Runs: []string{"run"}}}})
	if err != nil {
		t.Fatal(err)
	}
	z := compress(t, pc, hb)
	zr, err := gzip.NewReader(bytes.NewReader(z))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(zr); err != nil || !bytes.Equal(got, hb) {
		t.Fatalf("heartbeat: %v", err)
	}
	// The controller answers in gzip; the simulator reads it, reusing its
	// readers.
	for range 3 {
		if got := decompress(t, pc, compress(t, grpcGzip, hb)); !bytes.Equal(got, hb) {
			t.Fatal("reading gRPC's gzip back")
		}
	}
}

// Wire mode measures every compression over a real gRPC stream, and gzip
// makes snapshots smaller.
func TestWireMode(t *testing.T) {
	o, err := parse([]string{"-wire", "-snapshots", "4", "-values", "300"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.series != 10 {
		t.Fatalf("wire mode series %d, want 10 by default", o.series)
	}
	o.series = 3
	res, err := runWire(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.rows) != 5 {
		t.Fatalf("%d rows", len(res.rows))
	}
	none, gz := res.rows[0], res.rows[1]
	if none.bytes < float64(none.protoBytes) || gz.bytes >= none.bytes {
		t.Fatalf("bytes per snapshot: none %.0f (message %d), gzip %.0f", none.bytes, none.protoBytes, gz.bytes)
	}
	var md strings.Builder
	res.markdown(&md)
	if !strings.Contains(md.String(), "| none (before) |") {
		t.Fatalf("markdown:\n%s", md.String())
	}
}

func TestParseRejects(t *testing.T) {
	for _, args := range [][]string{
		{"-agents", "0"},
		{"-interval", "10ms"},
		{"-duration", "500ms"},
		{"-jitter", "1s"},
		{"-soak", "5s"},
		{"-wire", "-soak", "1m"},
		{"extra"},
	} {
		if _, err := parse(args, io.Discard); err == nil {
			t.Errorf("%q accepted", args)
		}
	}
}

func TestPercentileAndGrowth(t *testing.T) {
	ds := []time.Duration{5, 1, 4, 2, 3}
	if p := percentile(ds, 50); p != 3 {
		t.Errorf("p50 %d", p)
	}
	if p := percentile(ds, 100); p != 5 {
		t.Errorf("max %d", p)
	}
	r := &soakResult{o: options{sample: 10 * time.Second}}
	for i := range 13 { // 0..120 s; 100 KiB at one minute, 104 at the end, 106 at most
		kib := int64(100)
		switch {
		case i < 6:
			kib = 50 // the first minute does not count
		case i == 9:
			kib = 106
		case i == 12:
			kib = 104
		}
		r.samples = append(r.samples, rssSample{at: time.Duration(i) * 10 * time.Second, ctrl: kib, agent: kib})
	}
	base, last, peak, trend, ok := r.growth(func(s rssSample) int64 { return s.ctrl })
	if !ok || base.at != time.Minute || last != 4 || peak != 6 || trend <= 0 || trend > 6 {
		t.Fatalf("growth from %s: last %+.1f%%, peak %+.1f%%, trend %+.1f%%, ok %v", base.at, last, peak, trend, ok)
	}
	// A sawtooth around a level has no trend.
	r.samples = r.samples[:0]
	for i := range 61 {
		kib := int64(100 + 5*(i%2))
		r.samples = append(r.samples, rssSample{at: time.Duration(i) * 10 * time.Second, ctrl: kib})
	}
	if _, _, peak, trend, _ := r.growth(func(s rssSample) int64 { return s.ctrl }); peak != 5 || trend < -1 || trend > 1 {
		t.Fatalf("sawtooth: peak %+.1f%%, trend %+.1f%%", peak, trend)
	}
}

// controller.Gzip and gRPC's gzip read each other, and the fleet's
// three-member messages.
func TestGzipCodecsInterwork(t *testing.T) {
	ps, err := makePayloads(1, 3, 300)
	if err != nil {
		t.Fatal(err)
	}
	b, err := proto.Marshal(&surgev1.AgentMessage{Msg: &surgev1.AgentMessage_Snapshot{Snapshot: &surgev1.Snapshot{
		RunId: "run", AgentId: "a", Seq: 1, Series: ps.series[0]}}})
	if err != nil {
		t.Fatal(err)
	}
	pc := newPrecompressor("gzip")
	if err := pc.addPayload(ps.raw[0]); err != nil {
		t.Fatal(err)
	}
	ours, theirs := controller.NewGzip(), encoding.GetCompressor(grpcgzip.Name)
	for _, c := range []struct {
		name     string
		from, to encoding.Compressor
	}{{"surge to gRPC", ours, theirs}, {"gRPC to surge", theirs, ours}, {"surge to surge", ours, ours},
		{"fleet members to surge", pc, ours}} {
		for range 3 { // pooled state reused
			if got := decompress(t, c.to, compress(t, c.from, b)); !bytes.Equal(got, b) {
				t.Fatalf("%s: read back %d bytes, want %d", c.name, len(got), len(b))
			}
		}
	}
	if _, err := ours.Decompress(bytes.NewReader([]byte("not gzip"))); err == nil {
		t.Fatal("not gzip accepted")
	}
}
