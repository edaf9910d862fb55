package httpclient

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

const (
	maxLine        = 64 << 10 // the longest status or header line
	maxHeaderBytes = 1 << 20
)

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
	// keep names the headers to keep in kept.
	keep *keepSpec
	kept []hdr
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
		if res.keep != nil && res.keep.wants(name) {
			res.kept = append(res.kept, hdr{http.CanonicalHeaderKey(string(name)), string(val)})
		}
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
