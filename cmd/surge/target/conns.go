package target

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
)

// connContext gives each connection its connInfo.
func (s *Server) connContext(ctx context.Context, c net.Conn) context.Context {
	ci := &connInfo{conn: c}
	if tc, ok := c.(*tls.Conn); ok {
		s.tlsConns.Store(tc, ci)
	}
	return context.WithValue(ctx, connKey{}, ci)
}

// connState counts the TLS handshakes of connections that end (closed or
// hijacked) without having been counted by a request.
func (s *Server) connState(c net.Conn, state http.ConnState) {
	tc, ok := c.(*tls.Conn)
	if !ok || (state != http.StateClosed && state != http.StateHijacked) {
		return
	}
	v, ok := s.tlsConns.LoadAndDelete(tc)
	if !ok {
		return
	}
	if tc.ConnectionState().HandshakeComplete {
		v.(*connInfo).countHandshake(s)
	} else {
		s.c.tlsHandshakeErrors.Add(1)
	}
}

// connKey is the context key of a request's *connInfo.
type connKey struct{}

// connInfo is what the server knows about one connection: the conn the
// http.Server got (a *countedConn or a *tls.Conn over one), whether it
// carried HTTP/2 and how many of its streams are in flight.
type connInfo struct {
	conn      net.Conn
	h2        atomic.Bool
	streams   atomic.Int64
	handshake atomic.Bool // counted in tlsHandshakes
}

// countHandshake counts the connection's completed TLS handshake, once.
func (ci *connInfo) countHandshake(s *Server) {
	if ci.handshake.CompareAndSwap(false, true) {
		s.c.tlsHandshakes.Add(1)
	}
}

func connOf(r *http.Request) *connInfo {
	ci, _ := r.Context().Value(connKey{}).(*connInfo)
	return ci
}

// countingListener counts accepted and open connections and resets those
// beyond maxConns.
type countingListener struct {
	net.Listener
	s *Server
}

func (l *countingListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if !l.s.admit() {
			l.s.c.connsRejected.Add(1)
			if err := abort(c); err != nil {
				l.s.log.Debug("reset rejected connection", "err", err)
			}
			continue
		}
		l.s.c.connsAccepted.Add(1)
		return &countedConn{Conn: c, s: l.s}, nil
	}
}

// admit counts a new open connection unless maxConns are open.
func (s *Server) admit() bool {
	for {
		n := s.c.connsActive.Load()
		if s.maxConns > 0 && n >= s.maxConns {
			return false
		}
		if s.c.connsActive.CompareAndSwap(n, n+1) {
			storeMax(&s.c.connsPeak, n+1)
			return true
		}
	}
}

// storeMax raises p to v if v is greater.
func storeMax(p *atomic.Int64, v int64) {
	for {
		old := p.Load()
		if v <= old || p.CompareAndSwap(old, v) {
			return
		}
	}
}

type countedConn struct {
	net.Conn
	s    *Server
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() { c.s.c.connsActive.Add(-1) })
	return c.Conn.Close()
}

// abort closes the TCP connection under c abruptly: with RST, no TLS
// close_notify, no WebSocket close frame.
func abort(c net.Conn) error {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	raw := c
	if cc, ok := raw.(*countedConn); ok {
		raw = cc.Conn
	}
	if tcp, ok := raw.(*net.TCPConn); ok {
		_ = tcp.SetLinger(0) // best effort: without it the close is a FIN
	}
	return c.Close()
}
