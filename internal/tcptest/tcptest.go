// Package tcptest runs raw TCP servers on loopback for tests, as httptest
// does for HTTP: the test owns the listener and every connection, and all
// end with it.
package tcptest

import (
	"net"
	"sync"
	"testing"
)

// Serve accepts connections on 127.0.0.1 and runs serve on each in its own
// goroutine until the test ends; then it closes the listener and the
// connections and waits for the goroutines. It returns the address.
func Serve(t testing.TB, serve func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() {
				defer c.Close()
				serve(c)
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}
