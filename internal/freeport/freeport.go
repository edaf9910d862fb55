// Package freeport picks TCP addresses on loopback that were free a moment
// ago, for servers that must be told their address before they start.
package freeport

import (
	"fmt"
	"net"
	"strconv"
	"testing"
)

// On returns n addresses on host with distinct ports: every listener is
// held until all are chosen, so no port is handed out twice.
func On(host string, n int) ([]string, error) {
	addrs := make([]string, 0, n)
	var open []net.Listener
	defer func() {
		for _, l := range open {
			_ = l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			return nil, fmt.Errorf("free port on %s: %w", host, err)
		}
		open = append(open, l)
		addrs = append(addrs, l.Addr().String())
	}
	return addrs, nil
}

// Addrs returns n addresses on 127.0.0.1 with distinct ports.
func Addrs(n int) ([]string, error) { return On("127.0.0.1", n) }

// Addr is one address on 127.0.0.1; it fails t if none is free.
func Addr(t testing.TB) string {
	t.Helper()
	a, err := Addrs(1)
	if err != nil {
		t.Fatal(err)
	}
	return a[0]
}

// Ports are the ports of Addrs(n).
func Ports(n int) ([]int, error) {
	addrs, err := Addrs(n)
	if err != nil {
		return nil, err
	}
	ports := make([]int, n)
	for i, a := range addrs {
		_, p, err := net.SplitHostPort(a)
		if err != nil {
			return nil, fmt.Errorf("free port: %w", err)
		}
		if ports[i], err = strconv.Atoi(p); err != nil {
			return nil, fmt.Errorf("free port: %w", err)
		}
	}
	return ports, nil
}

// Port is one port on 127.0.0.1; it fails t if none is free.
func Port(t testing.TB) int {
	t.Helper()
	p, err := Ports(1)
	if err != nil {
		t.Fatal(err)
	}
	return p[0]
}
