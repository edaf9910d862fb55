package controller

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/zstd"
	"google.golang.org/grpc/encoding"
	// Agents before zstd compress their stream with gzip; importing the
	// package registers gRPC's gzip compressor, so the controller reads it
	// and answers in kind. A main may register Gzip over it.
	grpcgzip "google.golang.org/grpc/encoding/gzip"
)

// keepBuf is the largest buffer a compressor keeps for reuse: a larger
// message's buffers are left to the garbage collector.
const keepBuf = 1 << 20

// Gzip is gRPC's "gzip" encoding made cheaper for snapshot streams, in the
// same wire format (either end may use gRPC's own): it compresses at
// gzip's fastest level, and it reads a message's compressed bytes into
// memory before inflating them, where gRPC's reader hands the inflater one
// byte at a time across its buffers. docs/benchmarks.md (goal 4) measures
// both against gRPC's gzip. A main registers it once, before any gRPC use,
// for every gRPC connection of the process:
//
//	encoding.RegisterCompressor(controller.NewGzip())
type Gzip struct {
	writers sync.Pool // *gzip.Writer at gzip.BestSpeed
	readers sync.Pool // *gzipReader
}

var _ encoding.Compressor = (*Gzip)(nil)

// NewGzip returns the compressor; see Gzip.
func NewGzip() *Gzip { return &Gzip{} }

// Name is the gRPC encoding name, the same as gRPC's gzip.
func (g *Gzip) Name() string { return grpcgzip.Name }

// Compress returns a writer that compresses into w until Close.
func (g *Gzip) Compress(w io.Writer) (io.WriteCloser, error) {
	z, ok := g.writers.Get().(*gzip.Writer)
	if !ok {
		var err error
		if z, err = gzip.NewWriterLevel(w, gzip.BestSpeed); err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
	} else {
		z.Reset(w)
	}
	return &gzipWriter{Writer: z, pool: &g.writers}, nil
}

type gzipWriter struct {
	*gzip.Writer
	pool *sync.Pool
}

// Close flushes the message and returns the writer to the pool.
func (w *gzipWriter) Close() error {
	err := w.Writer.Close()
	w.pool.Put(w.Writer)
	if err != nil {
		return fmt.Errorf("gzip: %w", err)
	}
	return nil
}

// Decompress reads all of r, the compressed message, and returns a reader
// of its inflated bytes.
func (g *Gzip) Decompress(r io.Reader) (io.Reader, error) {
	st, ok := g.readers.Get().(*gzipState)
	if !ok {
		st = &gzipState{}
	}
	st.buf.Reset()
	if _, err := st.buf.ReadFrom(r); err != nil {
		g.readers.Put(st)
		return nil, fmt.Errorf("gzip: %w", err)
	}
	st.src.Reset(st.buf.Bytes())
	var err error
	if st.z == nil {
		st.z, err = gzip.NewReader(&st.src)
	} else {
		err = st.z.Reset(&st.src)
	}
	if err != nil {
		g.readers.Put(st)
		return nil, fmt.Errorf("gzip: %w", err)
	}
	return &gzipReader{st: st, pool: &g.readers}, nil
}

// gzipState is what inflating one message takes, reused: the compressed
// bytes, and a bytes.Reader over them, which is an io.ByteReader, so the
// inflater reads it directly.
type gzipState struct {
	buf bytes.Buffer
	src bytes.Reader
	z   *gzip.Reader
}

// gzipReader reads one message; its state goes back to the pool once the
// message was read to the end.
type gzipReader struct {
	st   *gzipState
	pool *sync.Pool
}

func (r *gzipReader) Read(p []byte) (int, error) {
	if r.st == nil {
		return 0, io.EOF
	}
	n, err := r.st.z.Read(p)
	if err == io.EOF {
		if r.st.buf.Cap() > 1<<20 {
			r.st.buf = bytes.Buffer{} // do not keep a large message's buffer
		}
		r.pool.Put(r.st)
		r.st = nil
	}
	return n, err
}

// ZstdName is the gRPC encoding name of Zstd.
const ZstdName = "zstd"

// Zstd is a gRPC compressor named "zstd" for snapshot streams, what agents
// use: at zstd's fastest level, about as small as gzip's default and a
// fraction of its CPU to inflate (docs/benchmarks.md, goal 4). Both ends
// buffer the whole message: the encoder compresses it with EncodeAll, the
// decoder reads it with DecodeAll, each reused from a pool, so no
// goroutine runs behind them.
//
// A message inflates to at most maxDecoded bytes (the controller's
// MaxRecvMsgSize): a frame that claims or reaches more, or a window
// larger than that, fails with an error before memory is taken for it.
// A main registers it once, before any gRPC use:
//
//	encoding.RegisterCompressor(controller.NewZstd())
type Zstd struct {
	enc        *zstd.Encoder // EncodeAll only: safe for concurrent use
	maxDecoded int
	writers    sync.Pool // *zstdBufs
	readers    sync.Pool // *zstdState
}

var _ encoding.Compressor = (*Zstd)(nil)

// ZstdLevel is how hard Zstd compresses: zstd.SpeedFastest (what NewZstd
// uses) or zstd.SpeedDefault, measured side by side by scripts/fleet -wire.
type ZstdLevel = zstd.EncoderLevel

// NewZstd returns the compressor at zstd's fastest level, bounding an
// inflated message at MaxRecvMsgSize.
func NewZstd() *Zstd {
	z, err := NewZstdLevel(zstd.SpeedFastest, MaxRecvMsgSize)
	if err != nil {
		panic(fmt.Sprintf("zstd: fixed options rejected: %v", err)) // a programming error
	}
	return z
}

// NewZstdLevel returns the compressor at level, bounding an inflated
// message at maxDecoded bytes.
func NewZstdLevel(level ZstdLevel, maxDecoded int) (*Zstd, error) {
	if maxDecoded < zstd.MinWindowSize {
		return nil, fmt.Errorf("zstd: max decoded size %d, at least %d", maxDecoded, zstd.MinWindowSize)
	}
	enc, err := zstd.NewWriter(nil,
		zstd.WithEncoderLevel(level),
		// The window never needs to exceed one message.
		zstd.WithWindowSize(windowFor(maxDecoded)),
		zstd.WithEncoderCRC(true),
	)
	if err != nil {
		return nil, fmt.Errorf("zstd: %w", err)
	}
	z := &Zstd{enc: enc, maxDecoded: maxDecoded}
	// Check the decoder options once, here, so Decompress cannot fail on them.
	d, err := z.newDecoder()
	if err != nil {
		return nil, err
	}
	z.readers.Put(&zstdState{dec: d})
	return z, nil
}

// windowFor is the largest power of two window zstd accepts not above n.
func windowFor(n int) int {
	w := zstd.MinWindowSize
	for w*2 <= n && w*2 <= zstd.MaxWindowSize {
		w *= 2
	}
	return w
}

func (z *Zstd) newDecoder() (*zstd.Decoder, error) {
	d, err := zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderMaxMemory(uint64(z.maxDecoded)),
		zstd.WithDecoderMaxWindow(uint64(max(z.maxDecoded, zstd.MinWindowSize))),
	)
	if err != nil {
		return nil, fmt.Errorf("zstd: %w", err)
	}
	return d, nil
}

// Name is the gRPC encoding name, "zstd".
func (z *Zstd) Name() string { return ZstdName }

// Compress returns a writer that buffers one message and writes its zstd
// frame to w on Close.
func (z *Zstd) Compress(w io.Writer) (io.WriteCloser, error) {
	b, ok := z.writers.Get().(*zstdBufs)
	if !ok {
		b = &zstdBufs{}
	}
	return &zstdWriter{z: z, dst: w, b: b}, nil
}

// zstdBufs is what compressing one message takes, reused: the message and
// its frame.
type zstdBufs struct{ src, out []byte }

type zstdWriter struct {
	z   *Zstd
	dst io.Writer
	b   *zstdBufs // nil once closed
}

func (w *zstdWriter) Write(p []byte) (int, error) {
	if w.b == nil {
		return 0, errors.New("zstd: write after close")
	}
	w.b.src = append(w.b.src, p...)
	return len(p), nil
}

// Close compresses the message, writes it and returns the buffers to the
// pool.
func (w *zstdWriter) Close() error {
	b := w.b
	if b == nil {
		return errors.New("zstd: closed twice")
	}
	w.b = nil
	b.out = w.z.enc.EncodeAll(b.src, b.out[:0])
	_, err := w.dst.Write(b.out)
	if cap(b.src) > keepBuf || cap(b.out) > keepBuf {
		b.src, b.out = nil, nil
	}
	b.src, b.out = b.src[:0], b.out[:0]
	w.z.writers.Put(b)
	if err != nil {
		return fmt.Errorf("zstd: %w", err)
	}
	return nil
}

// Decompress reads all of r, the compressed message, and returns a reader
// of its inflated bytes. Corrupt input, or input that would inflate past
// the bound, is an error here.
func (z *Zstd) Decompress(r io.Reader) (io.Reader, error) {
	st, ok := z.readers.Get().(*zstdState)
	if !ok {
		d, err := z.newDecoder()
		if err != nil {
			return nil, err
		}
		st = &zstdState{dec: d}
	}
	st.src.Reset()
	if _, err := st.src.ReadFrom(r); err != nil {
		z.release(st)
		return nil, fmt.Errorf("zstd: %w", err)
	}
	out, err := st.dec.DecodeAll(st.src.Bytes(), st.out[:0])
	if err != nil {
		z.release(st)
		return nil, fmt.Errorf("zstd: %w", err)
	}
	st.out = out
	st.rd.Reset(out)
	return &zstdReader{st: st, z: z}, nil
}

// zstdState is what inflating one message takes, reused: a decoder, the
// compressed bytes and the inflated ones.
type zstdState struct {
	dec *zstd.Decoder // concurrency 1, DecodeAll only: no goroutines
	src bytes.Buffer
	out []byte
	rd  bytes.Reader
}

func (z *Zstd) release(st *zstdState) {
	st.rd.Reset(nil)
	if st.src.Cap() > keepBuf {
		st.src = bytes.Buffer{}
	}
	if cap(st.out) > keepBuf {
		st.out = nil
	}
	z.readers.Put(st)
}

// zstdReader reads one inflated message; its state goes back to the pool
// at EOF or Close, whichever comes first (gRPC closes it when done).
type zstdReader struct {
	st *zstdState
	z  *Zstd
}

func (r *zstdReader) Read(p []byte) (int, error) {
	if r.st == nil {
		return 0, io.EOF
	}
	n, err := r.st.rd.Read(p)
	if err == io.EOF {
		r.Close()
	}
	return n, err
}

// Close returns the state to the pool; the reader reads nothing after.
func (r *zstdReader) Close() error {
	if r.st != nil {
		r.z.release(r.st)
		r.st = nil
	}
	return nil
}
