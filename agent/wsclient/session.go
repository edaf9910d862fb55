package wsclient

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/surgeload/surge/agent/httpclient"
)

// endKind is how a session ended.
type endKind int

const (
	// endNormal: surge closed it at the end of its hold, or the peer
	// closed it with 1000 or 1001.
	endNormal endKind = iota
	// endAbnormal: the peer dropped the connection or closed it with
	// another code.
	endAbnormal
	// endInterrupted: ctx ended it.
	endInterrupted
	// endPeer: the connection ended from the peer's side or broke; run
	// tells endNormal from endAbnormal by the close code.
	endPeer
)

// session is one Run's connection state, reused across its reconnects.
// The calling goroutine sends; one reader goroutine per connection reads.
type session struct {
	c   *Client
	s   *Step
	st  *Stats
	v   *httpclient.Vars
	rng *rand.Rand

	conn *websocket.Conn
	t0   time.Time // the session opened
	msg  []byte    // the sender's scratch: URL, headers, messages
	// sendErr is a message template's expansion error.
	sendErr error

	// The reader's: done is closed when it returns, after it set readErr;
	// rbuf holds a message searched for expect.contains.
	done    chan struct{}
	readErr error
	rbuf    []byte

	mu sync.Mutex
	// pending are the send times (since t0) of messages awaiting a reply,
	// oldest first, in a ring.
	pending    []time.Duration
	head, n    int
	replies    int64
	notifyLast chan struct{} // cap 1: the reader took the last pending reply
}

// run holds one open connection until deadline, ctx or the peer ends it,
// and records its end. The reader goroutine it starts has ended when it
// returns.
func (ss *session) run(ctx context.Context, conn *websocket.Conn, t0, deadline time.Time) endKind {
	ss.conn, ss.t0 = conn, t0
	ss.mu.Lock()
	ss.head, ss.n, ss.replies = 0, 0, 0
	ss.mu.Unlock()
	if ss.notifyLast == nil {
		ss.notifyLast = make(chan struct{}, 1)
	}
	if ss.matchBody() {
		conn.SetReadLimit(MaxMatchedMessage)
	} else {
		conn.SetReadLimit(-1)
	}
	ss.done = make(chan struct{})
	go ss.read()

	end := ss.hold(ctx, deadline)
	var missed int64
	switch end {
	case endNormal, endInterrupted:
		// The close handshake is bounded by the library (5 s to write,
		// 5 s to hear back); the reader ends when the connection closes.
		_ = conn.Close(websocket.StatusNormalClosure, "")
		<-ss.done
		if end == endNormal {
			missed = ss.takePending()
		}
	case endPeer:
		// The reader may still be blocked when a write failed.
		_ = conn.CloseNow()
		<-ss.done
		end = endAbnormal
		if code := websocket.CloseStatus(ss.readErr); code == websocket.StatusNormalClosure || code == websocket.StatusGoingAway {
			end = endNormal
		}
		missed = ss.takePending()
	}
	ss.st.closed(ss.c.now().Sub(t0), end == endAbnormal, missed)
	ss.conn = nil
	return end
}

// matchBody reports whether received messages are searched for
// expect.contains (else they are counted and discarded).
func (ss *session) matchBody() bool { return ss.s.expect != nil && len(ss.s.expect.contains) > 0 }

// hold sends and waits until the hold ends (then, with expect, until the
// replies still awaited came or timed out), ctx ends, or the connection
// ends from the peer's side.
func (ss *session) hold(ctx context.Context, deadline time.Time) endKind {
	// Writes are bounded so that a peer that stops reading cannot hold
	// the session past its end; a write the deadline cuts closes the
	// connection, which the reader reports.
	wctx, cancel := context.WithDeadline(context.Background(), deadline.Add(ss.replyTimeout()+writeGrace))
	defer cancel()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	sd := ss.s.send
	sending := sd != nil
	var seq int64
	next := ss.t0 // the first message goes at once
	for {
		now := ss.c.now()
		ss.expire(now)
		if !now.Before(deadline) {
			break
		}
		if sending && !now.Before(next) {
			seq++
			if !ss.write(wctx, seq) {
				return endPeer
			}
			switch {
			case sd.count > 0 && seq >= sd.count:
				sending = false
			case sd.rate > 0:
				// An absolute schedule: a late send does not shift the
				// ones after it.
				next = ss.t0.Add(time.Duration(float64(seq) * float64(time.Second) / sd.rate))
			default:
				next = now.Add(sd.every.Sample(ss.rng))
			}
			continue
		}
		wake := deadline
		if sending && next.Before(wake) {
			wake = next
		}
		if d, ok := ss.oldestDeadline(); ok && d.Before(wake) {
			wake = d
		}
		timer.Reset(wake.Sub(now))
		select {
		case <-ctx.Done():
			return endInterrupted
		case <-ss.done:
			return endPeer
		case <-timer.C:
		}
	}
	// The hold is over: wait for the replies still due.
	for {
		now := ss.c.now()
		ss.expire(now)
		d, ok := ss.oldestDeadline()
		if !ok {
			return endNormal
		}
		timer.Reset(d.Sub(now))
		select {
		case <-ctx.Done():
			return endInterrupted
		case <-ss.done:
			return endPeer
		case <-ss.notifyLast:
		case <-timer.C:
		}
	}
}

func (ss *session) replyTimeout() time.Duration {
	if ss.s.expect == nil {
		return 0
	}
	return ss.s.expect.timeout
}

// write sends message seq; false when the connection failed.
func (ss *session) write(ctx context.Context, seq int64) bool {
	sd := ss.s.send
	var err error
	ss.msg, err = sd.appendMessage(ss.msg[:0], ss.v, seq)
	if err != nil {
		// A template that cannot expand (an unset {{env}}) fails every
		// message alike: end the session (abnormally: not surge's normal
		// close) and report the error.
		ss.sendErr = fmt.Errorf("websocket step %q: send.message: %w", ss.s.name, err)
		_ = ss.conn.Close(websocket.StatusInternalError, "message template")
		return false
	}
	expect := ss.s.expect != nil
	if expect {
		// Registered before the write: the reply may come before Write
		// returns.
		ss.push(ss.c.now().Sub(ss.t0))
	}
	if err := ss.conn.Write(ctx, sd.typ, ss.msg); err != nil {
		if expect {
			ss.popLast()
		}
		return false
	}
	ss.st.sent(len(ss.msg))
	return true
}

// read reads messages until the connection ends, counting them and
// matching replies.
func (ss *session) read() {
	defer close(ss.done)
	match := ss.matchBody()
	for {
		// A context without Done: the library sets no timer per read.
		// The reader ends when the connection closes, which run ensures.
		_, r, err := ss.conn.Reader(context.Background())
		if err != nil {
			ss.readErr = err
			return
		}
		var n int64
		if match {
			ss.rbuf, err = readAll(ss.rbuf[:0], r)
			n = int64(len(ss.rbuf))
		} else {
			n, err = io.Copy(io.Discard, r)
		}
		if err != nil {
			ss.readErr = err
			return
		}
		rtt, missed := time.Duration(-1), int64(0)
		if ss.s.expect != nil && (!match || bytes.Contains(ss.rbuf, ss.s.expect.contains)) {
			rtt, missed = ss.match(ss.c.now())
		}
		ss.st.received(n, rtt, missed)
	}
}

// readAll appends r's bytes to b, growing it only when full.
func readAll(b []byte, r io.Reader) ([]byte, error) {
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}

// push appends a send time to the pending ring.
func (ss *session) push(at time.Duration) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.n == len(ss.pending) {
		grown := make([]time.Duration, max(8, 2*len(ss.pending)))
		for i := range ss.n {
			grown[i] = ss.pending[(ss.head+i)%len(ss.pending)]
		}
		ss.pending, ss.head = grown, 0
	}
	ss.pending[(ss.head+ss.n)%len(ss.pending)] = at
	ss.n++
}

// popLast removes the newest pending send (its write failed).
func (ss *session) popLast() {
	ss.mu.Lock()
	if ss.n > 0 {
		ss.n--
	}
	ss.mu.Unlock()
}

// expireLocked drops the pending sends whose reply is overdue at now and
// returns how many.
func (ss *session) expireLocked(now time.Duration) int64 {
	var k int64
	to := ss.s.expect.timeout
	for ss.n > 0 && ss.pending[ss.head]+to <= now {
		ss.head = (ss.head + 1) % len(ss.pending)
		ss.n--
		k++
	}
	return k
}

// expire counts the pending sends overdue at now as missed.
func (ss *session) expire(now time.Time) {
	if ss.s.expect == nil {
		return
	}
	ss.mu.Lock()
	k := ss.expireLocked(now.Sub(ss.t0))
	ss.mu.Unlock()
	ss.st.missed(k)
}

// match takes the oldest pending send as answered at now: its round trip
// (-1 when none was pending) and the sends found overdue before it.
func (ss *session) match(now time.Time) (rtt time.Duration, missed int64) {
	at := now.Sub(ss.t0)
	ss.mu.Lock()
	defer ss.mu.Unlock()
	missed = ss.expireLocked(at)
	if ss.n == 0 {
		return -1, missed
	}
	rtt = at - ss.pending[ss.head]
	ss.head = (ss.head + 1) % len(ss.pending)
	ss.n--
	ss.replies++
	if ss.n == 0 {
		select {
		case ss.notifyLast <- struct{}{}:
		default:
		}
	}
	return rtt, missed
}

// oldestDeadline is when the oldest pending send's reply is overdue.
func (ss *session) oldestDeadline() (time.Time, bool) {
	if ss.s.expect == nil {
		return time.Time{}, false
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.n == 0 {
		return time.Time{}, false
	}
	return ss.t0.Add(ss.pending[ss.head] + ss.s.expect.timeout), true
}

// takePending empties the pending ring and returns how many it held:
// sends that will get no reply.
func (ss *session) takePending() int64 {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	k := int64(ss.n)
	ss.head, ss.n = 0, 0
	return k
}
