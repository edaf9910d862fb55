package controller

import (
	"fmt"

	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	protobuf "google.golang.org/protobuf/proto"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
	"github.com/surgeload/surge/hist"
)

// agentCodec is gRPC's proto codec with one fast path: an AgentMessage
// that carries a Snapshot is decoded by hist.UnmarshalSnapshot, whose
// histograms alias one copy of the message instead of one copy each
// (docs/benchmarks.md, the fifth pass, measures why). Every other message,
// in either direction, is gRPC's. The controller's server forces it
// (grpc.ForceServerCodecV2), so it serves clients that ask for "proto",
// the only codec surge speaks.
type agentCodec struct {
	encoding.CodecV2
	// snapshot is AgentMessage's snapshot field.
	snapshot protowire.Number
}

// newAgentCodec wraps gRPC's registered proto codec.
func newAgentCodec() agentCodec {
	f := (&surgev1.AgentMessage{}).ProtoReflect().Descriptor().Fields().ByName("snapshot")
	return agentCodec{CodecV2: encoding.GetCodecV2(proto.Name), snapshot: f.Number()}
}

// Unmarshal decodes data into v.
func (c agentCodec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(*surgev1.AgentMessage)
	if !ok || !c.maybeSnapshot(data) {
		return c.CodecV2.Unmarshal(data, v)
	}
	// data's buffers return to gRPC's pool when this returns; the
	// snapshot keeps its own copy, which its histograms alias.
	b := data.Materialize()
	snap, ok := onlyField(b, c.snapshot)
	if !ok {
		if err := protobuf.Unmarshal(b, m); err != nil {
			return fmt.Errorf("decode agent message: %w", err)
		}
		return nil
	}
	s := new(surgev1.Snapshot)
	if err := hist.UnmarshalSnapshot(snap, s); err != nil {
		return fmt.Errorf("decode snapshot: %w", err)
	}
	m.Reset()
	m.Msg = &surgev1.AgentMessage_Snapshot{Snapshot: s}
	return nil
}

// maybeSnapshot reports whether data may be an AgentMessage holding a
// snapshot: its first field is, or its first buffer ends before its
// first tag does. Heartbeats, clock probes and run events go to gRPC's
// codec without a copy.
func (c agentCodec) maybeSnapshot(data mem.BufferSlice) bool {
	if len(data) == 0 {
		return false
	}
	num, _, n := protowire.ConsumeTag(data[0].ReadOnlyData())
	return n < 0 || num == c.snapshot
}

// onlyField returns the bytes of field num when message b is that field,
// length-delimited, once, and nothing else. Anything else (another field,
// or the field repeated, which protobuf merges) takes protobuf's path.
func onlyField(b []byte, num protowire.Number) ([]byte, bool) {
	got, typ, n := protowire.ConsumeTag(b)
	if n < 0 || got != num || typ != protowire.BytesType {
		return nil, false
	}
	v, m := protowire.ConsumeBytes(b[n:])
	if m < 0 || n+m != len(b) {
		return nil, false
	}
	return v, true
}
