package wsclient

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
	"github.com/surgeload/surge/hist"
)

// Counts are one step's session and message counters over an interval.
type Counts struct {
	SessionsOpened  int64
	SessionsClosed  int64
	AbnormalCloses  int64
	ConnectFailures int64
	// Reconnects are reconnect attempts, failed ones included (those are
	// connect failures too).
	Reconnects    int64
	MessagesOut   int64
	MessagesIn    int64
	BytesOut      int64
	BytesIn       int64
	RepliesMissed int64
}

// Stats accumulates one WebSocket step's measurements between Swaps:
// counters, the sessions open now, and histograms (µs) of handshake time,
// session duration (sessions that ended) and message round trip. Every
// session of the step records into the same Stats; it is safe for
// concurrent use.
type Stats struct {
	active atomic.Int64

	mu        sync.Mutex
	c         Counts
	connect   *hdrhistogram.Histogram
	session   *hdrhistogram.Histogram
	roundTrip *hdrhistogram.Histogram
}

// NewStats returns empty stats.
func NewStats() *Stats {
	return &Stats{connect: hist.New(), session: hist.New(), roundTrip: hist.New()}
}

// Active is the number of sessions open now.
func (s *Stats) Active() int64 { return s.active.Load() }

// Swap returns the counters and histograms recorded since the last Swap,
// with the sessions open now, and starts a new interval. e encodes the
// histograms; the caller serialises Swaps that share it.
func (s *Stats) Swap(e *hist.Encoder) *surgev1.WebSocketStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.c
	out := &surgev1.WebSocketStats{
		SessionsOpened:  c.SessionsOpened,
		SessionsClosed:  c.SessionsClosed,
		SessionsActive:  s.active.Load(),
		AbnormalCloses:  c.AbnormalCloses,
		ConnectFailures: c.ConnectFailures,
		Reconnects:      c.Reconnects,
		MessagesOut:     c.MessagesOut,
		MessagesIn:      c.MessagesIn,
		BytesOut:        c.BytesOut,
		BytesIn:         c.BytesIn,
		RepliesMissed:   c.RepliesMissed,
		Connect:         e.ToProto(s.connect),
		Session:         e.ToProto(s.session),
		RoundTrip:       e.ToProto(s.roundTrip),
	}
	s.c = Counts{}
	s.connect.Reset()
	s.session.Reset()
	s.roundTrip.Reset()
	return out
}

func us(d time.Duration) int64 { return hist.Clamp(d.Microseconds()) }

// opened records a handshake that succeeded after d.
func (s *Stats) opened(d time.Duration) {
	s.active.Add(1)
	s.mu.Lock()
	s.c.SessionsOpened++
	_ = s.connect.RecordValue(us(d))
	s.mu.Unlock()
}

// connectFailed records a handshake that failed.
func (s *Stats) connectFailed() {
	s.mu.Lock()
	s.c.ConnectFailures++
	s.mu.Unlock()
}

// reconnect records a reconnect attempt.
func (s *Stats) reconnect() {
	s.mu.Lock()
	s.c.Reconnects++
	s.mu.Unlock()
}

// closed records a session that ended after being open held; missed are
// its sent messages left without a reply.
func (s *Stats) closed(held time.Duration, abnormal bool, missed int64) {
	s.active.Add(-1)
	s.mu.Lock()
	s.c.SessionsClosed++
	if abnormal {
		s.c.AbnormalCloses++
	}
	s.c.RepliesMissed += missed
	_ = s.session.RecordValue(us(held))
	s.mu.Unlock()
}

// sent records one message of n bytes sent.
func (s *Stats) sent(n int) {
	s.mu.Lock()
	s.c.MessagesOut++
	s.c.BytesOut += int64(n)
	s.mu.Unlock()
}

// received records one message of n bytes received; when it is a reply
// (rtt >= 0), its round trip. missed are sent messages found past their
// reply timeout.
func (s *Stats) received(n int64, rtt time.Duration, missed int64) {
	s.mu.Lock()
	s.c.MessagesIn++
	s.c.BytesIn += n
	s.c.RepliesMissed += missed
	if rtt >= 0 {
		_ = s.roundTrip.RecordValue(us(rtt))
	}
	s.mu.Unlock()
}

// missed records n sent messages whose reply did not come in time.
func (s *Stats) missed(n int64) {
	if n == 0 {
		return
	}
	s.mu.Lock()
	s.c.RepliesMissed += n
	s.mu.Unlock()
}
