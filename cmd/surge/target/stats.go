package target

import (
	"net/http"
	"sync/atomic"
	"time"
)

// secondsKept bounds Stats.BySecond: the arrivals of the last secondsKept
// seconds are kept.
const secondsKept = 3600

// maxPaths bounds the distinct paths counted in Stats.ByPath; requests to
// further paths are counted under OtherPath.
const (
	maxPaths  = 1000
	OtherPath = "(other)"
)

// Stats are the target's counters since start or the last reset.
type Stats struct {
	// Requests counts every request except those to the control
	// endpoints, WebSocket upgrades included.
	Requests int64 `json:"requests"`
	// RequestsHTTP1 and RequestsH2 count Requests by protocol (an HTTP/2
	// request is one stream); RequestsTLS counts those that came over TLS.
	RequestsHTTP1 int64 `json:"requests_http1"`
	RequestsH2    int64 `json:"requests_h2"`
	RequestsTLS   int64 `json:"requests_tls"`
	// ByPath counts Requests by URL path.
	ByPath map[string]int64 `json:"by_path"`
	// ByStatus counts the replies of the load handler and /redirect by
	// status; resets and WebSocket upgrades are not replies.
	ByStatus map[int]int64 `json:"by_status"`
	// Errors counts the 5xx and 429 replies sent.
	Errors int64 `json:"errors"`
	// Resets counts requests answered by a reset (ResetRate or ?reset=).
	Resets int64 `json:"resets"`
	// ConnsAccepted counts TCP connections accepted and served (both
	// ports); ConnsActive is how many are open now (not reset);
	// ConnsPeak is the most open at once; ConnsRejected counts those
	// reset at once because MaxConns were open.
	ConnsAccepted int64 `json:"conns_accepted"`
	ConnsActive   int64 `json:"conns_active"`
	ConnsPeak     int64 `json:"conns_peak"`
	ConnsRejected int64 `json:"conns_rejected"`
	// H2Conns counts connections that carried an HTTP/2 request (a client
	// may open more than it uses: ConnsAccepted counts those too);
	// H2StreamsPeak is the most requests in flight at once in the load
	// handler on one connection.
	H2Conns       int64 `json:"h2_conns"`
	H2StreamsPeak int64 `json:"h2_streams_peak"`
	// TLSHandshakes counts TLS connections whose handshake completed
	// (counted at their first request, or when they close);
	// TLSHandshakeErrors counts TLS-port connections closed before a
	// handshake completed (a client rejecting the certificate, a
	// cleartext request, a bare TCP connect).
	TLSHandshakes      int64 `json:"tls_handshakes"`
	TLSHandshakeErrors int64 `json:"tls_handshake_errors"`
	// WebSocket sessions: accepted, open now, most open at once, and
	// upgrade requests refused (not a WebSocket handshake, or HTTP/2).
	WSSessionsAccepted int64 `json:"ws_sessions_accepted"`
	WSSessionsActive   int64 `json:"ws_sessions_active"`
	WSSessionsPeak     int64 `json:"ws_sessions_peak"`
	WSRejected         int64 `json:"ws_rejected"`
	// WSMessagesIn and WSMessagesOut count data messages received and
	// echoed.
	WSMessagesIn  int64 `json:"ws_messages_in"`
	WSMessagesOut int64 `json:"ws_messages_out"`
	// How sessions ended: the client sent a close frame; the connection
	// ended without one (client vanished); the target dropped it
	// (WSDropAfter or the drop endpoint).
	WSClosedByClient int64 `json:"ws_closed_by_client"`
	WSClosedAbnormal int64 `json:"ws_closed_abnormal"`
	WSDropped        int64 `json:"ws_dropped"`
	// BySecond counts Requests by the Unix second they arrived in (the last
	// hour's seconds with any arrival).
	BySecond map[int64]int64 `json:"by_second"`
	// Shop counts the stateful API's logins and orders.
	Shop ShopStats `json:"shop"`
}

// counters are the atomic counters behind Stats (those not guarded by mu).
type counters struct {
	requests, requestsHTTP1, requestsH2, requestsTLS atomic.Int64
	errors, resets                                   atomic.Int64
	connsAccepted, connsActive, connsPeak            atomic.Int64
	connsRejected                                    atomic.Int64
	h2Conns, h2StreamsPeak                           atomic.Int64
	tlsHandshakes, tlsHandshakeErrors                atomic.Int64
	wsAccepted, wsActive, wsPeak, wsRejected         atomic.Int64
	wsIn, wsOut                                      atomic.Int64
	wsClosedByClient, wsClosedAbnormal, wsDropped    atomic.Int64
	byStatus                                         [600]atomic.Int64
}

type secondCount struct{ sec, n int64 }

// Stats returns the counters.
func (s *Server) Stats() Stats {
	c := &s.c
	st := Stats{
		Requests:           c.requests.Load(),
		RequestsHTTP1:      c.requestsHTTP1.Load(),
		RequestsH2:         c.requestsH2.Load(),
		RequestsTLS:        c.requestsTLS.Load(),
		Errors:             c.errors.Load(),
		Resets:             c.resets.Load(),
		ConnsAccepted:      c.connsAccepted.Load(),
		ConnsActive:        c.connsActive.Load(),
		ConnsPeak:          c.connsPeak.Load(),
		ConnsRejected:      c.connsRejected.Load(),
		H2Conns:            c.h2Conns.Load(),
		H2StreamsPeak:      c.h2StreamsPeak.Load(),
		TLSHandshakes:      c.tlsHandshakes.Load(),
		TLSHandshakeErrors: c.tlsHandshakeErrors.Load(),
		WSSessionsAccepted: c.wsAccepted.Load(),
		WSSessionsActive:   c.wsActive.Load(),
		WSSessionsPeak:     c.wsPeak.Load(),
		WSRejected:         c.wsRejected.Load(),
		WSMessagesIn:       c.wsIn.Load(),
		WSMessagesOut:      c.wsOut.Load(),
		WSClosedByClient:   c.wsClosedByClient.Load(),
		WSClosedAbnormal:   c.wsClosedAbnormal.Load(),
		WSDropped:          c.wsDropped.Load(),
		ByStatus:           make(map[int]int64),
		Shop:               s.shop.stats(),
	}
	for code := range c.byStatus {
		if n := c.byStatus[code].Load(); n > 0 {
			st.ByStatus[code] = n
		}
	}
	s.mu.Lock()
	st.ByPath = make(map[string]int64, len(s.byPath))
	for p, n := range s.byPath {
		if v := n.Load(); v > 0 {
			st.ByPath[p] = v
		}
	}
	st.BySecond = make(map[int64]int64)
	oldest := time.Now().Unix() - secondsKept
	for _, c := range s.bySecond {
		if c.n > 0 && c.sec > oldest {
			st.BySecond[c.sec] = c.n
		}
	}
	s.mu.Unlock()
	return st
}

// Reset zeroes the counters, except the gauges ConnsActive and
// WSSessionsActive; the peaks restart from those gauges.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := &s.c
	for _, n := range []*atomic.Int64{
		&c.requests, &c.requestsHTTP1, &c.requestsH2, &c.requestsTLS, &c.errors, &c.resets,
		&c.connsAccepted, &c.connsRejected, &c.h2Conns, &c.h2StreamsPeak,
		&c.tlsHandshakes, &c.tlsHandshakeErrors, &c.wsAccepted, &c.wsRejected,
		&c.wsIn, &c.wsOut, &c.wsClosedByClient, &c.wsClosedAbnormal, &c.wsDropped,
	} {
		n.Store(0)
	}
	for i := range c.byStatus {
		c.byStatus[i].Store(0)
	}
	c.connsPeak.Store(c.connsActive.Load())
	c.wsPeak.Store(c.wsActive.Load())
	clear(s.byPath)
	s.bySecond = [secondsKept]secondCount{}
	s.shop.reset()
}

func (s *Server) countPath(path string) {
	s.mu.Lock()
	sec := time.Now().Unix()
	if c := &s.bySecond[sec%secondsKept]; c.sec == sec {
		c.n++
	} else {
		*c = secondCount{sec: sec, n: 1}
	}
	n, ok := s.byPath[path]
	if !ok {
		if len(s.byPath) >= maxPaths {
			path = OtherPath
			n = s.byPath[path]
		}
		if n == nil {
			n = new(atomic.Int64)
			s.byPath[path] = n
		}
	}
	s.mu.Unlock()
	n.Add(1)
}

// countRequest counts a request that is not to a control endpoint.
func (s *Server) countRequest(r *http.Request) {
	s.c.requests.Add(1)
	if r.TLS != nil {
		s.c.requestsTLS.Add(1)
		if ci := connOf(r); ci != nil {
			ci.countHandshake(s)
		}
	}
	if r.ProtoMajor == 2 {
		s.c.requestsH2.Add(1)
		if ci := connOf(r); ci != nil && ci.h2.CompareAndSwap(false, true) {
			s.c.h2Conns.Add(1)
		}
	} else {
		s.c.requestsHTTP1.Add(1)
	}
	s.countPath(r.URL.Path)
}
