//go:build !linux

package httpclient

import (
	"net"
	"syscall"
)

// rawConnOf: the raw keep-alive path is Linux only (rawio_linux.go).
func rawConnOf(net.Conn) syscall.RawConn { return nil }

func rawWrite(uintptr, []byte) (int, syscall.Errno) { return 0, syscall.ENOSYS }

func rawRead(uintptr, []byte) (int, syscall.Errno) { return 0, syscall.ENOSYS }
