package main

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"sync"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/surgeload/surge/controller"
)

// precompressor is a gRPC compressor (zstd or gzip) for the simulated
// fleet, whose snapshots share a few series payloads compressed once: a
// fleet compressing every snapshot would take the controller's cores the
// measurement is about. A snapshot goes out as three frames (head, the
// payload's precompressed frame, tail), which a decoder reads as one
// stream, so the controller decompresses what an agent would send.
// Messages without a known payload are compressed whole; with no
// payloads it is plain gzip at the fastest level (wire mode's "gzip-fast").
type precompressor struct {
	name string
	zstd *controller.Zstd // set when name is "zstd"
	// payloads maps the first bytes of a payload to the payload and its
	// gzip member; set before any stream starts, read-only after.
	payloads map[string]*payload
	writers  sync.Pool // *gzip.Writer at BestSpeed
	readers  sync.Pool // *gzip.Reader
}

// payload is a run of encoded Snapshot.series fields (field 6) shared by
// many snapshots, and its gzip member (or zstd frame).
type payload struct {
	raw, gz []byte
}

// payloadKeyLen is how many leading bytes identify a payload.
const payloadKeyLen = 64

// snapshotSeriesField is Snapshot.series' field number, and
// agentSnapshotField AgentMessage.snapshot's.
const (
	snapshotSeriesField = 6
	agentSnapshotField  = 3
)

func newPrecompressor(name string) *precompressor {
	c := &precompressor{name: name, payloads: map[string]*payload{}}
	if name == controller.ZstdName {
		c.zstd = controller.NewZstd()
	}
	c.writers.New = func() any {
		w, _ := gzip.NewWriterLevel(io.Discard, gzip.BestSpeed) // a valid level: no error
		return w
	}
	return c
}

// addPayload registers raw, the encoded series fields of a snapshot, and
// compresses it once at gzip's default level (what gRPC's gzip uses), or
// as one zstd frame.
func (c *precompressor) addPayload(raw []byte) error {
	if len(raw) < payloadKeyLen {
		return fmt.Errorf("payload of %d bytes: too short to identify", len(raw))
	}
	key := string(raw[:payloadKeyLen])
	if _, dup := c.payloads[key]; dup {
		return fmt.Errorf("two payloads start with the same %d bytes", payloadKeyLen)
	}
	var buf bytes.Buffer
	if c.zstd != nil {
		if err := c.member(&buf, raw); err != nil {
			return fmt.Errorf("compress payload: %w", err)
		}
		c.payloads[key] = &payload{raw: raw, gz: buf.Bytes()}
		return nil
	}
	w := gzip.NewWriter(&buf)
	if _, err := w.Write(raw); err != nil {
		return fmt.Errorf("compress payload: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("compress payload: %w", err)
	}
	c.payloads[key] = &payload{raw: raw, gz: buf.Bytes()}
	return nil
}

// Name is the gRPC encoding name ("zstd" in the fleet, as agents use).
func (c *precompressor) Name() string { return c.name }

// Compress buffers one message and writes its gzip form on Close.
func (c *precompressor) Compress(w io.Writer) (io.WriteCloser, error) {
	return &precompressWriter{c: c, dst: w}, nil
}

// Decompress reads gzip or zstd (the controller answers in kind).
func (c *precompressor) Decompress(r io.Reader) (io.Reader, error) {
	if c.zstd != nil {
		return c.zstd.Decompress(r)
	}
	if z, ok := c.readers.Get().(*gzip.Reader); ok {
		if err := z.Reset(r); err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		return &pooledReader{z: z, pool: &c.readers}, nil
	}
	z, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	return &pooledReader{z: z, pool: &c.readers}, nil
}

// pooledReader returns its gzip.Reader to the pool at EOF.
type pooledReader struct {
	z    *gzip.Reader
	pool *sync.Pool
}

func (r *pooledReader) Read(p []byte) (int, error) {
	if r.z == nil {
		return 0, io.EOF
	}
	n, err := r.z.Read(p)
	if err == io.EOF {
		r.pool.Put(r.z)
		r.z = nil
	}
	return n, err
}

type precompressWriter struct {
	c   *precompressor
	dst io.Writer
	buf []byte
}

func (w *precompressWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	return len(p), nil
}

// Close writes the message: head, precomputed payload and tail as three
// gzip members when it carries a known payload, else one member.
func (w *precompressWriter) Close() error {
	head, pl, tail := w.c.split(w.buf)
	if pl == nil {
		return w.c.member(w.dst, w.buf)
	}
	if err := w.c.member(w.dst, head); err != nil {
		return err
	}
	if _, err := w.dst.Write(pl.gz); err != nil {
		return fmt.Errorf("gzip: %w", err)
	}
	return w.c.member(w.dst, tail)
}

// member writes b as one gzip member at the fastest level, or one zstd
// frame.
func (c *precompressor) member(dst io.Writer, b []byte) error {
	if c.zstd != nil {
		w, err := c.zstd.Compress(dst)
		if err != nil {
			return err
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
		return w.Close()
	}
	z := c.writers.Get().(*gzip.Writer)
	defer c.writers.Put(z)
	z.Reset(dst)
	if _, err := z.Write(b); err != nil {
		return fmt.Errorf("gzip: %w", err)
	}
	if err := z.Close(); err != nil {
		return fmt.Errorf("gzip: %w", err)
	}
	return nil
}

// split finds a known payload in an encoded AgentMessage holding a
// Snapshot: msg = head + payload + tail. pl is nil when there is none.
func (c *precompressor) split(msg []byte) (head []byte, pl *payload, tail []byte) {
	num, typ, n := protowire.ConsumeTag(msg)
	if n < 0 || num != agentSnapshotField || typ != protowire.BytesType {
		return nil, nil, nil
	}
	l, m := protowire.ConsumeVarint(msg[n:])
	if m < 0 || uint64(len(msg)-n-m) != l {
		return nil, nil, nil
	}
	body := n + m // the Snapshot's fields start here
	for i := body; i < len(msg); {
		num, typ, k := protowire.ConsumeTag(msg[i:])
		if k < 0 {
			return nil, nil, nil
		}
		if num == snapshotSeriesField {
			if len(msg)-i < payloadKeyLen {
				return nil, nil, nil
			}
			p := c.payloads[string(msg[i:i+payloadKeyLen])]
			if p == nil || len(msg)-i < len(p.raw) || !bytes.Equal(msg[i:i+len(p.raw)], p.raw) {
				return nil, nil, nil
			}
			return msg[:i], p, msg[i+len(p.raw):]
		}
		v := protowire.ConsumeFieldValue(num, typ, msg[i+k:])
		if v < 0 {
			return nil, nil, nil
		}
		i += k + v
	}
	return nil, nil, nil
}
