package httpclient

import (
	"net"
	"syscall"
)

// Plain TCP connections skip net.Conn's Read and Write on the keep-alive
// path: the request is written from inside the poller's read callback
// (syscall.RawConn.Read), so one wait and one read follow each write, and
// the system calls are raw (a non-blocking socket's write or read returns
// at once). That saves the read that finds no answer yet after each write,
// and the scheduler's hand-off of the processor during system calls longer
// than its monitor's tick (a write on loopback often is), which costs a
// thread switch per request on a one-core agent.

// rawConnOf returns the RawConn of a plain TCP connection, else nil.
func rawConnOf(nc net.Conn) syscall.RawConn {
	if cc, ok := nc.(*countedConn); ok {
		nc = cc.Conn
	}
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		return nil
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}
