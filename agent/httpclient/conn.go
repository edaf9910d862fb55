package httpclient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"syscall"
	"time"
)

// HTTP/1.1 on net.Conn. A connection reads responses into a pooled buffer
// that it holds only while a request is in flight, so idle connections
// cost little memory; requests are written with one Write of bytes
// serialized by Prepare (static requests) or per send (templated ones).

const (
	readBufSize    = 8 << 10
	maxLine        = 64 << 10 // the longest status or header line
	maxHeaderBytes = 1 << 20
)

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
type response struct {
	code        int
	closeAfter  bool
	retryAfter  time.Duration
	hasRA       bool
	location    string
	bytesIn     int64
	body        []byte
	gotByte     bool // a byte of the response arrived
	firstByte   time.Time
	chunked     bool
	contentLen  int64
	headerBytes int
}

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

// writeRead writes wire and reads the first bytes of the answer on the
// raw path: the write happens in the poller's read callback, after the
// poller was reset for the read, so the answer's arrival cannot be missed
// and is waited for before the read. The buffer must be empty.
func (hc *h1conn) writeRead(wire []byte) error {
	hc.releaseBuf() // empty: see rawStep
	hc.r, hc.w = 0, 0
	hc.rawWire, hc.rawErr = wire, 0
	err := hc.rc.Read(hc.onRaw)
	rest := hc.rawWire
	hc.rawWire = nil
	switch {
	case hc.rawErr != 0 && hc.rawOp == "write":
		return fmt.Errorf("write request: %w", hc.rawError())
	case err != nil && len(rest) > 0:
		return fmt.Errorf("write request: %w", err)
	case len(rest) > 0:
		// The socket's buffer was full: the rest the ordinary way.
		if _, err := hc.nc.Write(rest); err != nil {
			return fmt.Errorf("write request: %w", err)
		}
		err = hc.rawFill()
	case err == nil && hc.rawErr != 0:
		err = hc.rawError()
	case err == nil && hc.w == 0:
		err = io.EOF
	}
	if err != nil {
		return fmt.Errorf("read response: %w", err)
	}
	return nil
}

// rawFill reads more into the buffer on the raw path.
func (hc *h1conn) rawFill() error {
	hc.rawErr = 0
	w := hc.w
	if err := hc.rc.Read(hc.onRaw); err != nil {
		return err
	}
	if hc.rawErr != 0 {
		return hc.rawError()
	}
	if hc.w == w {
		return io.EOF
	}
	return nil
}

// rawStep is the poller callback of the raw path: it writes what is left
// of rawWire (then waits: false), or reads what arrived into the buffer.
// It reports whether the step is done.
func (hc *h1conn) rawStep(fd uintptr) bool {
	if len(hc.rawWire) > 0 {
		for len(hc.rawWire) > 0 {
			n, e := rawWrite(fd, hc.rawWire)
			switch e {
			case 0:
				hc.rawWire = hc.rawWire[n:]
			case syscall.EINTR:
			case syscall.EAGAIN:
				return true // the caller writes the rest
			default:
				hc.rawErr, hc.rawOp = e, "write"
				return true
			}
		}
		return false // sent: wait for the answer
	}
	hc.getBuf()
	for {
		n, e := rawRead(fd, hc.buf[hc.w:])
		switch e {
		case 0:
			hc.w += n
			return true
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			hc.rawErr, hc.rawOp = e, "read"
			return true
		}
	}
}

// rawError is the raw path's failed system call as net reports it.
func (hc *h1conn) rawError() error {
	return &net.OpError{Op: hc.rawOp, Net: "tcp", Source: hc.nc.LocalAddr(), Addr: hc.nc.RemoteAddr(),
		Err: os.NewSyscallError(hc.rawOp, hc.rawErr)}
}

// readLine returns the next line without its line ending; it is valid
// until the next read.
func (hc *h1conn) readLine() ([]byte, error) {
	for {
		if i := bytes.IndexByte(hc.buf[hc.r:hc.w], '\n'); i >= 0 {
			line := hc.buf[hc.r : hc.r+i]
			hc.r += i + 1
			if n := len(line); n > 0 && line[n-1] == '\r' {
				line = line[:n-1]
			}
			return line, nil
		}
		if hc.r == 0 && hc.w == len(hc.buf) {
			if len(hc.buf) >= maxLine {
				return nil, protoErr("status or header line too long", nil)
			}
			nb := make([]byte, 2*len(hc.buf))
			copy(nb, hc.buf[:hc.w])
			hc.buf = nb
		}
		if err := hc.fill(); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
}

// readHeader reads a status line and its headers into res.
func (hc *h1conn) readHeader(res *response, wantRA bool) error {
	line, err := hc.readLine()
	if err != nil {
		return fmt.Errorf("read status line: %w", err)
	}
	code, http10, ok := parseStatusLine(line)
	if !ok {
		return protoErr("malformed status line", line)
	}
	res.code, res.closeAfter, res.chunked, res.contentLen, res.hasRA = code, http10, false, -1, false
	res.headerBytes += len(line)
	for {
		line, err := hc.readLine()
		if err != nil {
			return fmt.Errorf("read headers: %w", err)
		}
		if len(line) == 0 {
			return nil
		}
		if res.headerBytes += len(line); res.headerBytes > maxHeaderBytes {
			return protoErr("response headers over 1 MiB", nil)
		}
		if line[0] == ' ' || line[0] == '\t' { // obsolete line folding: a continuation
			continue
		}
		i := bytes.IndexByte(line, ':')
		if i <= 0 {
			return protoErr("malformed header line", line)
		}
		name, val := line[:i], trimOWS(line[i+1:])
		switch len(name) {
		case len("content-length"):
			if !equalFold(name, "content-length") {
				continue
			}
			n, ok := parseDecimal(val)
			if !ok || res.contentLen >= 0 && res.contentLen != n {
				return protoErr("invalid Content-Length", val)
			}
			res.contentLen = n
		case len("transfer-encoding"):
			if !equalFold(name, "transfer-encoding") {
				continue
			}
			if hasSuffixFold(val, "chunked") {
				res.chunked = true
			} else if !equalFold(val, "identity") {
				res.chunked, res.contentLen = false, -1
				res.closeAfter = true // a coding surge does not frame: read to the end
			}
		case len("connection"):
			if !equalFold(name, "connection") {
				continue
			}
			if hasToken(val, "close") {
				res.closeAfter = true
			} else if http10 && hasToken(val, "keep-alive") {
				res.closeAfter = false
			}
		case len("retry-after"):
			if wantRA && equalFold(name, "retry-after") {
				res.retryAfter, res.hasRA = parseRetryAfter(val)
			}
		case len("location"):
			if code >= 300 && code < 400 && equalFold(name, "location") {
				res.location = string(val)
			}
		}
	}
}

// readN reads n body bytes.
func (hc *h1conn) readN(n int64, keep bool, res *response) error {
	for n > 0 {
		if hc.r == hc.w {
			if err := hc.fill(); err != nil {
				if err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				return err
			}
		}
		k := min(int64(hc.w-hc.r), n)
		hc.take(hc.buf[hc.r:hc.r+int(k)], keep, res)
		hc.r += int(k)
		n -= k
	}
	return nil
}

// readChunked reads a chunked body and its trailers.
func (hc *h1conn) readChunked(keep bool, res *response) error {
	for {
		line, err := hc.readLine()
		if err != nil {
			return err
		}
		if i := bytes.IndexByte(line, ';'); i >= 0 {
			line = line[:i]
		}
		size, ok := parseHex(trimOWS(line))
		if !ok {
			return protoErr("invalid chunk size", line)
		}
		if size == 0 {
			for { // trailers
				line, err := hc.readLine()
				if err != nil {
					return err
				}
				if len(line) == 0 {
					return nil
				}
			}
		}
		if err := hc.readN(size, keep, res); err != nil {
			return err
		}
		if line, err = hc.readLine(); err != nil {
			return err
		}
		if len(line) != 0 {
			return protoErr("missing CRLF after a chunk", line)
		}
	}
}

// readToEOF reads a body delimited by the end of the connection.
func (hc *h1conn) readToEOF(keep bool, res *response) error {
	for {
		hc.take(hc.buf[hc.r:hc.w], keep, res)
		hc.r = hc.w
		if err := hc.fill(); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

// take counts body bytes and keeps them up to maxCheckedBody when keep.
func (hc *h1conn) take(b []byte, keep bool, res *response) {
	res.bytesIn += int64(len(b))
	if keep && len(res.body) < maxCheckedBody {
		res.body = append(res.body, b[:min(len(b), maxCheckedBody-len(res.body))]...)
	}
}

// parseStatusLine parses "HTTP/1.x SSS reason".
func parseStatusLine(line []byte) (code int, http10, ok bool) {
	if len(line) < 12 || string(line[:7]) != "HTTP/1." || line[8] != ' ' || len(line) > 12 && line[12] != ' ' {
		return 0, false, false
	}
	switch line[7] {
	case '0':
		http10 = true
	case '1':
	default:
		return 0, false, false
	}
	for _, d := range line[9:12] {
		if d < '0' || d > '9' {
			return 0, false, false
		}
		code = code*10 + int(d-'0')
	}
	return code, http10, code >= 100
}

func parseDecimal(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, d := range b {
		if d < '0' || d > '9' {
			return 0, false
		}
		n = n*10 + int64(d-'0')
	}
	return n, true
}

func parseHex(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 15 {
		return 0, false
	}
	var n int64
	for _, d := range b {
		switch {
		case d >= '0' && d <= '9':
			n = n<<4 | int64(d-'0')
		case d >= 'a' && d <= 'f':
			n = n<<4 | int64(d-'a'+10)
		case d >= 'A' && d <= 'F':
			n = n<<4 | int64(d-'A'+10)
		default:
			return 0, false
		}
	}
	return n, true
}

// parseRetryAfter reads delta-seconds or an HTTP date.
func parseRetryAfter(b []byte) (time.Duration, bool) {
	if n, ok := parseDecimal(b); ok {
		return time.Duration(n) * time.Second, true
	}
	t, err := http.ParseTime(string(b))
	if err != nil {
		return 0, false
	}
	return max(time.Until(t), 0), true
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

func lower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// equalFold compares b with the lower-case ASCII s, ignoring case.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		if lower(b[i]) != s[i] {
			return false
		}
	}
	return true
}

func hasSuffixFold(b []byte, s string) bool {
	return len(b) >= len(s) && equalFold(b[len(b)-len(s):], s)
}

// hasToken reports whether the comma-separated list b holds token.
func hasToken(b []byte, token string) bool {
	for len(b) > 0 {
		i := bytes.IndexByte(b, ',')
		var t []byte
		if i < 0 {
			t, b = b, nil
		} else {
			t, b = b[:i], b[i+1:]
		}
		if equalFold(trimOWS(t), token) {
			return true
		}
	}
	return false
}

// staleConnErr reports whether err, on a reused connection that returned
// no byte of the response, means the server had closed it while idle: the
// request can go again on a new connection.
func staleConnErr(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}
