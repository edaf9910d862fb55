package hist

import (
	"errors"
	"fmt"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
)

// UnmarshalSnapshot decodes the wire form of a Snapshot into s, as
// proto.UnmarshalOptions{DiscardUnknown: true} does, except that every
// histogram's sparse bytes alias b instead of being copied: b must not
// change while s is in use. Most of a snapshot's bytes are its
// histograms', and protobuf copies each bytes field into its own
// allocation; this decoder reads the series by hand and leaves the small
// parts (scenario, WebSocket and agent stats) to protobuf. s is reset
// first. Unknown fields, and known fields sent with another wire type, are
// skipped, as protobuf skips them.
func UnmarshalSnapshot(b []byte, s *surgev1.Snapshot) error {
	s.Reset()
	sub := proto.UnmarshalOptions{DiscardUnknown: true}
	merge := proto.UnmarshalOptions{DiscardUnknown: true, Merge: true}
	return eachField(b, "snapshot", func(f field) error {
		var err error
		switch f.num<<3 | protowire.Number(f.typ) {
		case 1<<3 | protowire.Number(protowire.BytesType):
			s.RunId, err = utf8String(f.b, "run_id")
		case 2<<3 | protowire.Number(protowire.BytesType):
			s.AgentId, err = utf8String(f.b, "agent_id")
		case 3<<3 | protowire.Number(protowire.VarintType):
			s.Seq = f.v
		case 4<<3 | protowire.Number(protowire.VarintType):
			s.Epoch = f.v
		case 5<<3 | protowire.Number(protowire.VarintType):
			s.Interval = int64(f.v)
		case 6<<3 | protowire.Number(protowire.BytesType):
			sr := new(surgev1.Series)
			if err = unmarshalSeries(f.b, sr); err != nil {
				err = fmt.Errorf("series %d: %w", len(s.Series), err)
			}
			s.Series = append(s.Series, sr)
		case 7<<3 | protowire.Number(protowire.BytesType):
			sc := new(surgev1.ScenarioStats)
			if err = sub.Unmarshal(f.b, sc); err != nil {
				err = fmt.Errorf("scenarios %d: %w", len(s.Scenarios), err)
			}
			s.Scenarios = append(s.Scenarios, sc)
		case 8<<3 | protowire.Number(protowire.BytesType):
			if s.Agent == nil {
				s.Agent = new(surgev1.AgentStats)
			}
			if err = merge.Unmarshal(f.b, s.Agent); err != nil {
				err = fmt.Errorf("agent: %w", err)
			}
		case 9<<3 | protowire.Number(protowire.VarintType):
			s.Final = protowire.DecodeBool(f.v)
		case 10<<3 | protowire.Number(protowire.VarintType):
			s.SeqFirst = f.v
		case 11<<3 | protowire.Number(protowire.BytesType):
			ws := new(surgev1.WebSocketStats)
			if err = sub.Unmarshal(f.b, ws); err != nil {
				err = fmt.Errorf("websockets %d: %w", len(s.Websockets), err)
			}
			s.Websockets = append(s.Websockets, ws)
		case 12<<3 | protowire.Number(protowire.VarintType):
			s.EndUnixNs = int64(f.v)
		}
		return err
	})
}

// unmarshalSeries merges wire series b into p: a message field met twice
// merges, as in protobuf.
func unmarshalSeries(b []byte, p *surgev1.Series) error {
	// Fields 3 to 9, in wire order (histName's).
	hists := [numHists]**surgev1.Histogram{&p.Latency, &p.Service, &p.Dns, &p.Connect, &p.Tls, &p.Ttfb, &p.Attempt}
	return eachField(b, "series", func(f field) error {
		if f.typ != protowire.BytesType { // every field of a Series is a message
			return nil
		}
		switch f.num {
		case 1:
			if p.Key == nil {
				p.Key = new(surgev1.SeriesKey)
			}
			return unmarshalKey(f.b, p.Key)
		case 2:
			if p.Counters == nil {
				p.Counters = new(surgev1.Counters)
			}
			return unmarshalCounters(f.b, p.Counters)
		case 10:
			c := new(surgev1.CheckStats)
			p.Checks = append(p.Checks, c)
			return unmarshalCheck(f.b, c)
		}
		j := int(f.num) - 3
		if j < 0 || j >= numHists {
			return nil
		}
		h := hists[j]
		if *h == nil {
			*h = new(surgev1.Histogram)
		}
		if err := unmarshalHist(f.b, *h); err != nil {
			return fmt.Errorf("%s: %w", histName(j), err)
		}
		return nil
	})
}

func unmarshalKey(b []byte, k *surgev1.SeriesKey) error {
	// Fields 1 to 4.
	dst := [...]*string{&k.Scenario, &k.Flow, &k.Request, &k.Status}
	names := [...]string{"scenario", "flow", "request", "status"}
	return eachField(b, "key", func(f field) (err error) {
		if i := int(f.num) - 1; f.typ == protowire.BytesType && i >= 0 && i < len(dst) {
			*dst[i], err = utf8String(f.b, names[i])
		}
		return err
	})
}

func unmarshalCounters(b []byte, c *surgev1.Counters) error {
	// Fields 1 to 8.
	dst := [...]*int64{&c.Requests, &c.Failures, &c.Retries, &c.BytesIn, &c.BytesOut, &c.ChecksPassed, &c.ChecksFailed, &c.ExtractFailed}
	return eachField(b, "counters", func(f field) error {
		if i := int(f.num) - 1; f.typ == protowire.VarintType && i >= 0 && i < len(dst) {
			*dst[i] = int64(f.v)
		}
		return nil
	})
}

func unmarshalCheck(b []byte, c *surgev1.CheckStats) error {
	return eachField(b, "check", func(f field) (err error) {
		switch f.num<<3 | protowire.Number(f.typ) {
		case 1<<3 | protowire.Number(protowire.BytesType):
			c.Name, err = utf8String(f.b, "name")
		case 2<<3 | protowire.Number(protowire.VarintType):
			c.Passes = int64(f.v)
		case 3<<3 | protowire.Number(protowire.VarintType):
			c.Fails = int64(f.v)
		}
		return err
	})
}

// unmarshalHist merges wire histogram b into h; h.Sparse aliases b, with
// its capacity cut to its length so that an append copies.
func unmarshalHist(b []byte, h *surgev1.Histogram) error {
	return eachField(b, "histogram", func(f field) error {
		switch f.num<<3 | protowire.Number(f.typ) {
		case 1<<3 | protowire.Number(protowire.VarintType):
			h.Lowest = int64(f.v)
		case 2<<3 | protowire.Number(protowire.VarintType):
			h.Highest = int64(f.v)
		case 3<<3 | protowire.Number(protowire.VarintType):
			h.SigFigs = int32(f.v)
		case 4<<3 | protowire.Number(protowire.BytesType):
			h.Sparse = f.b[:len(f.b):len(f.b)]
		case 5<<3 | protowire.Number(protowire.VarintType):
			h.Total = int64(f.v)
		}
		return nil
	})
}

// field is one decoded field of a message: a varint's value in v, a
// length-delimited field's bytes in b (other wire types carry neither).
type field struct {
	num protowire.Number
	typ protowire.Type
	v   uint64
	b   []byte
}

// errInvalidUTF8 is protobuf's rule for proto3 strings.
var errInvalidUTF8 = errors.New("invalid UTF-8")

// eachField calls f with every field of message b in order, and returns
// f's first error as it is; what names the message in errors of the wire
// form.
func eachField(b []byte, what string, f func(field) error) error {
	for len(b) > 0 {
		var fl field
		var n int
		fl.num, fl.typ, n = protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("%s: %w", what, protowire.ParseError(n))
		}
		if fl.num > protowire.MaxValidNumber { // ConsumeTag lets these through; protobuf does not
			return fmt.Errorf("%s: field number %d out of range", what, fl.num)
		}
		b = b[n:]
		switch fl.typ {
		case protowire.VarintType:
			fl.v, n = protowire.ConsumeVarint(b)
		case protowire.BytesType:
			fl.b, n = protowire.ConsumeBytes(b)
		default:
			n = protowire.ConsumeFieldValue(fl.num, fl.typ, b)
		}
		if n < 0 {
			return fmt.Errorf("%s: field %d: %w", what, fl.num, protowire.ParseError(n))
		}
		b = b[n:]
		if err := f(fl); err != nil {
			return err
		}
	}
	return nil
}

// utf8String is b as a string, which proto3 requires to be valid UTF-8.
func utf8String(b []byte, name string) (string, error) {
	if !utf8.Valid(b) {
		return "", fmt.Errorf("%s: %w", name, errInvalidUTF8)
	}
	return string(b), nil
}
