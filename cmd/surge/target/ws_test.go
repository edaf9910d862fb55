package target_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/surgeload/surge/cmd/surge/target"
	"github.com/surgeload/surge/internal/poll"
)

// dialWS opens a WebSocket session to the target's path (with query),
// closed abruptly when the test ends if still open.
func dialWS(t *testing.T, s *target.Server, scheme, path string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	addr := s.Addr()
	if scheme == "wss" {
		addr = s.TLSAddr()
	}
	c, resp, err := websocket.Dial(ctx, scheme+"://"+addr+path, &websocket.DialOptions{HTTPClient: &http.Client{Transport: transport(t, s, http1)}})
	if err != nil {
		t.Fatalf("dial %s: %v", path, err)
	}
	if resp.Body != nil {
		resp.Body.Close()
	}
	t.Cleanup(func() { _ = c.CloseNow() })
	return c
}

// roundTrip sends msg and reads the reply.
func roundTrip(ctx context.Context, c *websocket.Conn, typ websocket.MessageType, msg []byte) error {
	if err := c.Write(ctx, typ, msg); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	gotTyp, got, err := c.Read(ctx)
	if err != nil {
		return fmt.Errorf("read: %w", err)
	}
	if gotTyp != typ || !bytes.Equal(got, msg) {
		return fmt.Errorf("echo = %v %q, want %v %q", gotTyp, got, typ, msg)
	}
	return nil
}

// Many sessions at once are echoed, counted while open (peak) and counted
// as closed by the client when they close normally.
func TestWSEchoSessions(t *testing.T) {
	const sessions, msgs = 100, 5
	s := start(t, target.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conns := make([]*websocket.Conn, sessions)
	for i := range conns {
		conns[i] = dialWS(t, s, "ws", target.WSPath)
	}
	poll.Eventually(t, 10*time.Second, "all sessions active", func() bool { return s.Stats().WSSessionsActive == sessions })
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Go(func() {
			for j := range msgs {
				typ := websocket.MessageText
				if j%2 == 1 {
					typ = websocket.MessageBinary
				}
				if err := roundTrip(ctx, c, typ, fmt.Appendf(nil, "session %d message %d", i, j)); err != nil {
					t.Error(err)
					return
				}
			}
			if err := c.Close(websocket.StatusNormalClosure, "done"); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	poll.Eventually(t, 10*time.Second, "all sessions closed", func() bool { return s.Stats().WSSessionsActive == 0 })
	st := s.Stats()
	t.Logf("%+v", st)
	if st.WSSessionsAccepted != sessions || st.WSSessionsPeak != sessions || st.WSClosedByClient != sessions {
		t.Errorf("accepted %d, peak %d, closed by client %d; want %d each", st.WSSessionsAccepted, st.WSSessionsPeak, st.WSClosedByClient, sessions)
	}
	if st.WSMessagesIn != sessions*msgs || st.WSMessagesOut != sessions*msgs {
		t.Errorf("messages in/out = %d/%d, want %d", st.WSMessagesIn, st.WSMessagesOut, sessions*msgs)
	}
	if st.WSClosedAbnormal != 0 || st.WSDropped != 0 || st.WSRejected != 0 {
		t.Errorf("abnormal %d, dropped %d, rejected %d; want 0", st.WSClosedAbnormal, st.WSDropped, st.WSRejected)
	}
	if st.ByPath[target.WSPath] != sessions || st.ConnsAccepted != sessions {
		t.Errorf("upgrade requests %d, conns %d; want %d", st.ByPath[target.WSPath], st.ConnsAccepted, sessions)
	}
}

// POST /__surge/ws/drop?n=4 drops four sessions abruptly: their clients
// see the connection end without a close frame; the others live on.
func TestWSDropEndpoint(t *testing.T) {
	const sessions, drop = 10, 4
	s := start(t, target.Config{})
	conns := make([]*websocket.Conn, sessions)
	for i := range conns {
		conns[i] = dialWS(t, s, "ws", target.WSPath)
	}
	poll.Eventually(t, 10*time.Second, "all sessions active", func() bool { return s.Stats().WSSessionsActive == sessions })
	resp, err := newClient(t).Post(fmt.Sprintf("http://%s%s?n=%d", s.Addr(), target.WSDropPath, drop), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	var answer struct{ Dropped int }
	err = json.NewDecoder(resp.Body).Decode(&answer)
	resp.Body.Close()
	if err != nil || answer.Dropped != drop {
		t.Fatalf("drop answered %+v, %v; want %d dropped", answer, err, drop)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var abnormal, alive int
	for _, c := range conns {
		err := roundTrip(ctx, c, websocket.MessageText, []byte("still there?"))
		switch {
		case err == nil:
			alive++
		case websocket.CloseStatus(err) == -1:
			abnormal++
		default:
			t.Errorf("dropped session ended with a close frame: %v", err)
		}
	}
	poll.Eventually(t, 10*time.Second, "dropped sessions gone", func() bool { return s.Stats().WSSessionsActive == sessions-drop })
	st := s.Stats()
	if abnormal != drop || alive != sessions-drop || st.WSDropped != drop || st.WSClosedAbnormal != 0 || st.WSClosedByClient != 0 {
		t.Errorf("clients saw %d abnormal ends, %d alive; target dropped %d, abnormal %d, by client %d; want %d, %d, %d, 0, 0",
			abnormal, alive, st.WSDropped, st.WSClosedAbnormal, st.WSClosedByClient, drop, sessions-drop, drop)
	}
	// Without n, all the rest go.
	if n := s.DropWebSockets(-1); n != sessions-drop {
		t.Errorf("DropWebSockets(-1) = %d, want %d", n, sessions-drop)
	}
	poll.Eventually(t, 10*time.Second, "all sessions gone", func() bool { return s.Stats().WSSessionsActive == 0 })
	if code, body := get(t, newClient(t), "http://"+s.Addr()+target.WSDropPath+"?n=x"); code != http.StatusMethodNotAllowed {
		t.Errorf("GET drop: %d %q, want 405", code, body)
	}
}

// --ws-drop-after (and ?drop_after=) drop each session that long after it
// opened; the client sees an abnormal end no sooner.
func TestWSDropAfter(t *testing.T) {
	const after = 200 * time.Millisecond
	s := start(t, target.Config{WSDropAfter: time.Hour})
	for _, cfgDrop := range []bool{true, false} {
		path := target.WSPath + "?drop_after=" + after.String()
		srv := s
		if cfgDrop {
			srv = start(t, target.Config{WSDropAfter: after})
			path = target.WSPath
		}
		begin := time.Now()
		c := dialWS(t, srv, "ws", path)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, _, err := c.Read(ctx)
		cancel()
		took := time.Since(begin)
		if err == nil || websocket.CloseStatus(err) != -1 {
			t.Fatalf("%s: read = %v, want an abnormal end", path, err)
		}
		if took < after {
			t.Errorf("%s: dropped after %s, want at least %s", path, took, after)
		}
		poll.Eventually(t, 10*time.Second, "the session gone", func() bool { return srv.Stats().WSSessionsActive == 0 })
		if st := srv.Stats(); st.WSDropped != 1 || st.WSClosedAbnormal != 0 {
			t.Errorf("%s: dropped %d, abnormal %d; want 1, 0", path, st.WSDropped, st.WSClosedAbnormal)
		}
	}
}

// An echo delay holds each reply back at least that long.
func TestWSEchoDelay(t *testing.T) {
	s := start(t, target.Config{WSEchoLatency: "150ms"})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, tt := range []struct {
		path string
		min  time.Duration
	}{
		{target.WSPath, 150 * time.Millisecond},
		{target.WSPath + "?delay=uniform(80ms,90ms)", 80 * time.Millisecond},
		{target.WSPath + "?delay=0", 0},
	} {
		c := dialWS(t, s, "ws", tt.path)
		begin := time.Now()
		if err := roundTrip(ctx, c, websocket.MessageText, []byte("ping")); err != nil {
			t.Fatal(err)
		}
		took := time.Since(begin)
		t.Logf("%s: round trip %s", tt.path, took)
		if took < tt.min {
			t.Errorf("%s: round trip %s, want at least %s", tt.path, took, tt.min)
		}
	}
}

// A client that vanishes without a close frame is counted as abnormal.
func TestWSClientVanishes(t *testing.T) {
	s := start(t, target.Config{})
	c := dialWS(t, s, "ws", target.WSPath)
	poll.Eventually(t, 10*time.Second, "the session active", func() bool { return s.Stats().WSSessionsActive == 1 })
	_ = c.CloseNow()
	poll.Eventually(t, 10*time.Second, "the session gone", func() bool { return s.Stats().WSSessionsActive == 0 })
	if st := s.Stats(); st.WSClosedAbnormal != 1 || st.WSClosedByClient != 0 || st.WSDropped != 0 {
		t.Errorf("abnormal %d, by client %d, dropped %d; want 1, 0, 0", st.WSClosedAbnormal, st.WSClosedByClient, st.WSDropped)
	}
}

// Requests to /ws that are not WebSocket handshakes, or come over
// HTTP/2, or have bad parameters are refused and counted.
func TestWSRejected(t *testing.T) {
	s := start(t, target.Config{H2C: true})
	for _, tt := range []struct {
		name  string
		c     *http.Client
		query string
		code  int
		body  string
	}{
		{"plain GET", client(transport(t, s, http1)), "", http.StatusUpgradeRequired, ""},
		{"h2c", client(transport(t, s, h2c)), "", http.StatusHTTPVersionNotSupported, "HTTP/1.1 only"},
		{"bad delay", client(transport(t, s, http1)), "?delay=x", http.StatusBadRequest, `query delay=x`},
		{"bad drop", client(transport(t, s, http1)), "?drop_after=-1s", http.StatusBadRequest, `query drop_after=-1s`},
	} {
		code, body := get(t, tt.c, "http://"+s.Addr()+target.WSPath+tt.query)
		if code != tt.code || !strings.Contains(body, tt.body) {
			t.Errorf("%s: %d %q, want %d with %q", tt.name, code, body, tt.code, tt.body)
		}
	}
	if st := s.Stats(); st.WSRejected != 4 || st.WSSessionsAccepted != 0 || st.Errors != 0 || len(st.ByStatus) != 0 {
		t.Errorf("rejected %d, accepted %d, errors %d, by status %v; want 4, 0, 0, none", st.WSRejected, st.WSSessionsAccepted, st.Errors, st.ByStatus)
	}
}

// WebSocket over TLS (wss) with the self-signed CA; a drop closes the TCP
// connection under TLS without close_notify or close frame.
func TestWSOverTLS(t *testing.T) {
	s := start(t, target.Config{TLSListen: "127.0.0.1:0", TLSSelfSigned: true})
	c := dialWS(t, s, "wss", target.WSPath)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := roundTrip(ctx, c, websocket.MessageBinary, []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	if n := s.DropWebSockets(1); n != 1 {
		t.Fatalf("dropped %d, want 1", n)
	}
	if _, _, err := c.Read(ctx); err == nil || websocket.CloseStatus(err) != -1 {
		t.Fatalf("after drop: read = %v, want an abnormal end", err)
	}
	st := s.Stats()
	if st.WSSessionsAccepted != 1 || st.RequestsTLS != 1 || st.TLSHandshakes != 1 || st.WSDropped != 1 {
		t.Errorf("sessions %d, tls requests %d, handshakes %d, dropped %d; want 1 each", st.WSSessionsAccepted, st.RequestsTLS, st.TLSHandshakes, st.WSDropped)
	}
}

// Shutting down ends open sessions and Run returns promptly.
func TestWSShutdown(t *testing.T) {
	s, err := target.New(target.Config{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	conns := []*websocket.Conn{dialWS(t, s, "ws", target.WSPath), dialWS(t, s, "ws", target.WSPath)}
	poll.Eventually(t, 10*time.Second, "sessions active", func() bool { return s.Stats().WSSessionsActive == 2 })
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(4 * time.Second):
		t.Fatal("Run did not return promptly with WebSocket sessions open")
	}
	rctx, rcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer rcancel()
	for _, c := range conns {
		if _, _, err := c.Read(rctx); err == nil {
			t.Error("session still open after shutdown")
		}
	}
}
