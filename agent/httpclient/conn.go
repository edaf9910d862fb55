package httpclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"
)

// HTTP/1.1 on net.Conn. A connection reads responses into a pooled buffer
// that it holds only while a request is in flight, so idle connections
// cost little memory; requests are written with one Write of bytes
// serialized by Prepare (static requests) or per send (templated ones).

// readBufSize is a connection's read buffer's size.
const readBufSize = 8 << 10

// readBuf is a pooled read buffer.
type readBuf struct{ b [readBufSize]byte }

// h1conn is one HTTP/1.1 connection. Its fields other than mu, busy and
// canceled belong to whoever holds the connection: the request in flight,
// or its pool's lock while idle.
type h1conn struct {
	c    *Client
	nc   net.Conn
	rb   *readBuf
	buf  []byte
	r, w int

	expires  time.Time // zero: no lifetime limit
	idleFor  time.Duration
	lastUsed time.Time
	requests int64
	deadline time.Time

	// rc is a plain TCP connection's RawConn (nil: TLS, or not Linux), for
	// the raw keep-alive path (rawio_linux.go); onRaw is hc.rawStep, made
	// once. rawWire is what is left to write of the request in flight,
	// rawErr and rawOp a system call's failure.
	rc      syscall.RawConn
	onRaw   func(fd uintptr) bool
	rawWire []byte
	rawErr  syscall.Errno
	rawOp   string

	// Cancellation: abort runs when the context watched ends, and
	// interrupts the request if it is still the one in flight.
	mu        sync.Mutex
	busy      context.Context
	canceled  bool
	watched   context.Context
	stopWatch func() bool
	abort     func()
}

// response is what a request needs of an HTTP/1.1 response.
func newH1conn(c *Client, nc net.Conn) *h1conn {
	hc := &h1conn{c: c, nc: nc, rc: rawConnOf(nc)}
	hc.abort = hc.onCancel
	if hc.rc != nil {
		hc.onRaw = hc.rawStep
	}
	return hc
}

// setDeadline bounds the request's I/O; zero: none.
func (hc *h1conn) setDeadline(dl time.Time) error {
	if dl.Equal(hc.deadline) {
		return nil
	}
	hc.deadline = dl
	return hc.nc.SetDeadline(dl)
}

// watch makes a cancellation of ctx interrupt this connection's request.
// A context with no Done channel needs nothing; a new context replaces the
// previous registration (one per connection and context, not per request).
func (hc *h1conn) watch(ctx context.Context) {
	if ctx.Done() == nil {
		return
	}
	hc.mu.Lock()
	hc.busy = ctx
	hc.mu.Unlock()
	if ctx != hc.watched {
		if hc.stopWatch != nil {
			hc.stopWatch()
		}
		hc.watched, hc.stopWatch = ctx, context.AfterFunc(ctx, hc.abort)
	}
}

// unwatch ends the request's watch; true when ctx interrupted it.
func (hc *h1conn) unwatch(ctx context.Context) bool {
	if ctx.Done() == nil {
		return false
	}
	hc.mu.Lock()
	hc.busy = nil
	c := hc.canceled
	hc.mu.Unlock()
	return c
}

func (hc *h1conn) onCancel() {
	hc.mu.Lock()
	if hc.busy != nil && hc.busy.Err() != nil {
		hc.canceled = true
		_ = hc.nc.SetDeadline(time.Unix(1, 0)) // in the past: interrupts blocked I/O
	}
	hc.mu.Unlock()
}

// close closes the connection and drops its watch and buffer.
func (hc *h1conn) close() {
	if hc.stopWatch != nil {
		hc.stopWatch()
		hc.stopWatch, hc.watched = nil, nil
	}
	_ = hc.nc.Close()
	hc.r, hc.w = 0, 0
	hc.releaseBuf()
}

// getBuf takes a read buffer from the client's pool.
func (hc *h1conn) getBuf() {
	if hc.buf == nil {
		hc.rb = hc.c.bufs.Get().(*readBuf)
		hc.buf = hc.rb.b[:]
	}
}

// releaseBuf returns the read buffer when nothing is buffered.
func (hc *h1conn) releaseBuf() {
	if hc.buf == nil || hc.r != hc.w {
		return
	}
	hc.c.bufs.Put(hc.rb)
	hc.rb, hc.buf, hc.r, hc.w = nil, nil, 0, 0
}

// roundTrip writes wire and reads the response into res: status, the
// headers surge needs, and the body (discarded, or up to maxCheckedBody
// kept when keep). 1xx responses are skipped; HEAD, 204 and 304 responses
// have no body.
func (hc *h1conn) roundTrip(wire []byte, head, keep, wantRA bool, res *response, now func() time.Time) error {
	if hc.rc != nil && hc.r == hc.w {
		// The read buffer is taken once the answer is there (rawStep):
		// a connection waiting for its answer holds none.
		if err := hc.writeRead(wire); err != nil {
			return err
		}
	} else {
		hc.getBuf()
		if _, err := hc.nc.Write(wire); err != nil {
			return fmt.Errorf("write request: %w", err)
		}
		if hc.r == hc.w {
			if err := hc.fill(); err != nil {
				return fmt.Errorf("read response: %w", err)
			}
		}
	}
	res.gotByte, res.firstByte = true, now()
	for {
		if err := hc.readHeader(res, wantRA); err != nil {
			return err
		}
		if res.code >= 200 || res.code == http.StatusSwitchingProtocols {
			break
		}
	}
	var err error
	switch {
	case head || res.code == http.StatusNoContent || res.code == http.StatusNotModified || res.code < 200:
	case res.chunked:
		err = hc.readChunked(keep, res)
	case res.contentLen >= 0:
		err = hc.readN(res.contentLen, keep, res)
	default:
		res.closeAfter = true
		err = hc.readToEOF(keep, res)
	}
	if err != nil {
		return fmt.Errorf("read body: %w", err)
	}
	if hc.r != hc.w { // bytes nobody asked for: the connection is out of step
		res.closeAfter = true
	}
	return nil
}

// fill reads more into the buffer, compacting it first when full.
func (hc *h1conn) fill() error {
	if hc.r == hc.w {
		hc.r, hc.w = 0, 0
	} else if hc.w == len(hc.buf) && hc.r > 0 {
		hc.w = copy(hc.buf, hc.buf[hc.r:hc.w])
		hc.r = 0
	}
	if hc.rc != nil {
		return hc.rawFill()
	}
	for range 100 {
		n, err := hc.nc.Read(hc.buf[hc.w:])
		hc.w += n
		if n > 0 {
			return nil
		}
		if err != nil {
			return err
		}
	}
	return io.ErrNoProgress
}

// staleConnErr reports whether err, on a reused connection that returned
// no byte of the response, means the server had closed it while idle: the
// request can go again on a new connection.
func staleConnErr(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}
