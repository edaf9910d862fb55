package target

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// wsReadLimit is the largest WebSocket message the echo accepts.
const wsReadLimit = 1 << 20

// The query parameters of /ws.
const (
	qWSDelay     = "delay"      // echo delay distribution
	qWSDropAfter = "drop_after" // drop the session after this long
)

// wsSession is one open WebSocket session.
type wsSession struct {
	conn    net.Conn // the connection under the session, as the server got it
	dropped atomic.Bool
}

// drop closes the session's connection abruptly, once; it reports whether
// this call dropped it.
func (ws *wsSession) drop(s *Server) bool {
	if !ws.dropped.CompareAndSwap(false, true) {
		return false
	}
	s.c.wsDropped.Add(1)
	if err := abort(ws.conn); err != nil {
		s.log.Debug("ws drop", "err", err)
	}
	return true
}

// DropWebSockets drops n of the open WebSocket sessions (all if n < 0)
// abruptly: their TCP connections are closed without a close frame. It
// returns how many it dropped.
func (s *Server) DropWebSockets(n int) int {
	s.wsMu.Lock()
	victims := make([]*wsSession, 0, len(s.sessions))
	for _, ws := range s.sessions {
		if n >= 0 && len(victims) == n {
			break
		}
		victims = append(victims, ws)
	}
	s.wsMu.Unlock()
	dropped := 0
	for _, ws := range victims {
		if ws.drop(s) {
			dropped++
		}
	}
	return dropped
}

// serveWS is the WebSocket echo: every data message comes back, of the
// same type, after the echo delay.
func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	s.countRequest(r)
	lat, dropAfter := s.wsLatency, s.wsDropAfter
	q := r.URL.Query()
	if v, ok := q[qWSDelay]; ok {
		var err error
		if lat, err = ParseLatency(v[0]); err != nil {
			s.c.wsRejected.Add(1)
			textReply(w, http.StatusBadRequest, "query "+qWSDelay+"="+v[0]+": "+err.Error()+"\n")
			return
		}
	}
	if v, ok := q[qWSDropAfter]; ok {
		var err error
		if dropAfter, err = time.ParseDuration(v[0]); err != nil || dropAfter < 0 {
			s.c.wsRejected.Add(1)
			textReply(w, http.StatusBadRequest, "query "+qWSDropAfter+"="+v[0]+": want a duration, 0 or more\n")
			return
		}
	}
	ci := connOf(r)
	if ci == nil || r.ProtoMajor != 1 {
		s.c.wsRejected.Add(1)
		textReply(w, http.StatusHTTPVersionNotSupported, "websocket: HTTP/1.1 only\n")
		return
	}
	// Counted before the hijack, while Shutdown still waits for this
	// connection, so Run's Wait cannot miss it.
	s.hijacked.Add(1)
	defer s.hijacked.Done()
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil { // Accept has answered
		s.c.wsRejected.Add(1)
		s.log.Debug("ws accept", "err", err)
		return
	}
	defer func() { _ = c.CloseNow() }() // the session is over either way
	c.SetReadLimit(wsReadLimit)

	ws := &wsSession{conn: ci.conn}
	s.wsMu.Lock()
	s.wsNextID++
	id := s.wsNextID
	s.sessions[id] = ws
	s.wsMu.Unlock()
	s.c.wsAccepted.Add(1)
	storeMax(&s.c.wsPeak, s.c.wsActive.Add(1))
	defer func() {
		s.wsMu.Lock()
		delete(s.sessions, id)
		s.wsMu.Unlock()
		s.c.wsActive.Add(-1)
	}()
	if dropAfter > 0 {
		t := time.AfterFunc(dropAfter, func() { ws.drop(s) })
		defer t.Stop()
	}

	err = s.echo(r.Context(), c, lat)
	switch {
	case ws.dropped.Load() || s.base.Err() != nil: // counted by drop; or shutting down
	case websocket.CloseStatus(err) != -1:
		s.c.wsClosedByClient.Add(1)
	default:
		s.c.wsClosedAbnormal.Add(1)
		s.log.Debug("ws session ended abnormally", "err", err)
	}
}

// echo sends back every message read from c until reading fails, and
// returns that error.
func (s *Server) echo(ctx context.Context, c *websocket.Conn, lat Latency) error {
	for {
		typ, msg, err := c.Read(ctx)
		if err != nil {
			return err
		}
		s.c.wsIn.Add(1)
		if !sleep(ctx, lat.Draw()) {
			return ctx.Err()
		}
		if err := c.Write(ctx, typ, msg); err != nil {
			if websocket.CloseStatus(err) == -1 && !errors.Is(err, net.ErrClosed) {
				s.log.Debug("ws echo", "err", err)
			}
			return err
		}
		s.c.wsOut.Add(1)
	}
}
