package controller

import (
	"testing"

	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
	"github.com/surgeload/surge/hist"
)

// codecSnapshot is a snapshot of two series with histograms.
func codecSnapshot(t *testing.T) *surgev1.Snapshot {
	t.Helper()
	s := hist.NewSet()
	for i, st := range []string{"2xx", "5xx"} {
		sr := s.Get(hist.Key{Scenario: "s", Request: "GET /", Status: st})
		sr.Counters.Requests = int64(10 + i)
		for v := range int64(10 + i) {
			_ = sr.Latency.RecordValue(100 + 37*v)
			_ = sr.Service.RecordValue(90 + 31*v)
		}
	}
	return &surgev1.Snapshot{RunId: "r", AgentId: "a", Seq: 2, Series: s.ToProto(),
		Agent: &surgev1.AgentStats{CpuPercent: 3}}
}

func TestAgentCodecUnmarshal(t *testing.T) {
	c := newAgentCodec()
	snap := codecSnapshot(t)
	snapBytes, err := proto.Marshal(snap)
	if err != nil {
		t.Fatal(err)
	}
	field := func(num protowire.Number, b []byte) []byte {
		return protowire.AppendBytes(protowire.AppendTag(nil, num, protowire.BytesType), b)
	}
	hb, err := proto.Marshal(&surgev1.Heartbeat{ClockOffsetNs: 5, Runs: []string{"r"}})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		b    []byte
	}{
		{"snapshot", field(3, snapBytes)},
		{"heartbeat", field(2, hb)},
		// Protobuf merges a message field sent twice: the fast path
		// leaves that to protobuf.
		{"snapshot twice", append(field(3, snapBytes), field(3, snapBytes)...)},
		{"heartbeat then snapshot", append(field(2, hb), field(3, snapBytes)...)},
		{"empty", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var want surgev1.AgentMessage
			if err := proto.Unmarshal(tc.b, &want); err != nil {
				t.Fatal(err)
			}
			raw := append([]byte(nil), tc.b...)
			var got surgev1.AgentMessage
			if err := c.Unmarshal(mem.BufferSlice{mem.SliceBuffer(raw)}, &got); err != nil {
				t.Fatal(err)
			}
			// gRPC reuses the buffers once Unmarshal returns: the message
			// must not alias them.
			clear(raw)
			if !proto.Equal(&want, &got) {
				t.Fatalf("decoded %v, want %v", &got, &want)
			}
		})
	}
}

func TestAgentCodecErrors(t *testing.T) {
	c := newAgentCodec()
	snapBytes, err := proto.Marshal(codecSnapshot(t))
	if err != nil {
		t.Fatal(err)
	}
	cut := protowire.AppendBytes(protowire.AppendTag(nil, 3, protowire.BytesType), snapBytes[:len(snapBytes)-3])
	var m surgev1.AgentMessage
	if err := c.Unmarshal(mem.BufferSlice{mem.SliceBuffer(cut)}, &m); err == nil {
		t.Fatal("a truncated snapshot decoded")
	}
	// Another message type is gRPC's codec's.
	var ack surgev1.SnapshotAck
	b, err := c.Marshal(&surgev1.SnapshotAck{RunId: "r", Seq: 9})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Unmarshal(b, &ack); err != nil || ack.GetSeq() != 9 {
		t.Fatalf("SnapshotAck: %v, seq %d", err, ack.GetSeq())
	}
	b.Free()
	if c.Name() != "proto" {
		t.Fatalf("codec name %q, want proto", c.Name())
	}
}
