package httpclient

import (
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
)

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
