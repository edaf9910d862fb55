package sink

import (
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// The Prometheus remote-write 1.0 messages surge sends, encoded by hand:
// a WriteRequest is its TimeSeries (field 1), so the encodings of two
// requests concatenated are one request holding both, which is how the
// write queue batches them. Field numbers are prompb's (types.proto,
// remote.proto).

// label is one Prometheus label.
type label struct{ name, value string }

// appendSeries appends one TimeSeries (WriteRequest field 1) with one
// float sample, or with one native histogram when h is set.
func appendSeries(b []byte, labels []label, value float64, h []byte, tsMillis int64) []byte {
	var ts []byte
	for _, l := range labels {
		var lb []byte
		lb = protowire.AppendTag(lb, 1, protowire.BytesType)
		lb = protowire.AppendString(lb, l.name)
		lb = protowire.AppendTag(lb, 2, protowire.BytesType)
		lb = protowire.AppendString(lb, l.value)
		ts = protowire.AppendTag(ts, 1, protowire.BytesType)
		ts = protowire.AppendBytes(ts, lb)
	}
	if h != nil {
		ts = protowire.AppendTag(ts, 4, protowire.BytesType)
		ts = protowire.AppendBytes(ts, h)
	} else {
		var sb []byte
		sb = protowire.AppendTag(sb, 1, protowire.Fixed64Type)
		sb = protowire.AppendFixed64(sb, math.Float64bits(value))
		sb = protowire.AppendTag(sb, 2, protowire.VarintType)
		sb = protowire.AppendVarint(sb, uint64(tsMillis))
		ts = protowire.AppendTag(ts, 2, protowire.BytesType)
		ts = protowire.AppendBytes(ts, sb)
	}
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	return protowire.AppendBytes(b, ts)
}

// encodeNative encodes an integer native histogram (prompb Histogram):
// count, sum, schema, a zero bucket of exactly 0, the positive buckets as
// spans and deltas, and the timestamp.
func encodeNative(n *nativeHist, tsMillis int64) []byte {
	var b []byte
	b = protowire.AppendTag(b, 1, protowire.VarintType) // count_int
	b = protowire.AppendVarint(b, n.count)
	b = protowire.AppendTag(b, 3, protowire.Fixed64Type) // sum
	b = protowire.AppendFixed64(b, math.Float64bits(n.sum))
	b = protowire.AppendTag(b, 4, protowire.VarintType) // schema, sint32
	b = protowire.AppendVarint(b, protowire.EncodeZigZag(int64(n.schema)))
	b = protowire.AppendTag(b, 6, protowire.VarintType) // zero_count_int
	b = protowire.AppendVarint(b, n.zero)
	idx, counts := n.sorted()
	var deltas []byte
	prev := int64(0)
	for i := 0; i < len(idx); {
		j := i + 1
		for j < len(idx) && idx[j] == idx[j-1]+1 {
			j++
		}
		offset := idx[i] // the first span starts at its index, the others after a gap
		if i > 0 {
			offset = idx[i] - idx[i-1] - 1
		}
		var sp []byte
		sp = protowire.AppendTag(sp, 1, protowire.VarintType)
		sp = protowire.AppendVarint(sp, protowire.EncodeZigZag(int64(offset)))
		sp = protowire.AppendTag(sp, 2, protowire.VarintType)
		sp = protowire.AppendVarint(sp, uint64(j-i))
		b = protowire.AppendTag(b, 11, protowire.BytesType) // positive_spans
		b = protowire.AppendBytes(b, sp)
		for k := i; k < j; k++ {
			c := int64(counts[k])
			deltas = protowire.AppendVarint(deltas, protowire.EncodeZigZag(c-prev))
			prev = c
		}
		i = j
	}
	if len(deltas) > 0 {
		b = protowire.AppendTag(b, 12, protowire.BytesType) // positive_deltas, packed sint64
		b = protowire.AppendBytes(b, deltas)
	}
	b = protowire.AppendTag(b, 15, protowire.VarintType) // timestamp
	return protowire.AppendVarint(b, uint64(tsMillis))
}

// countSeries counts the TimeSeries of an encoded WriteRequest: each holds
// one point.
func countSeries(b []byte) int {
	n := 0
	for len(b) > 0 {
		num, typ, l := protowire.ConsumeField(b)
		if l < 0 {
			return n
		}
		if num == 1 && typ == protowire.BytesType {
			n++
		}
		b = b[l:]
	}
	return n
}
