package httpclient

import (
	"net"
	"syscall"
)

// Plain TCP connections skip net.Conn's Read and Write on the keep-alive
// path: the request is written from inside the poller's read callback
// (rawpath.go), with raw system calls that never hand off the processor.

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
