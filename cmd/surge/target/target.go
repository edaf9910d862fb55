// Package target is surge's built-in system under test: a small HTTP server
// (HTTP/1.1 keep-alive, optionally h2c on the same port and HTTP/2 or
// HTTP/1.1 over TLS on a second port) with a WebSocket echo at /ws. It
// delays replies by a configurable latency distribution, fails, resets or
// slows a configurable share of them, limits connections, and counts what
// it sees. `surge target` and `surge demo` run it; tests read its counters
// directly or, from another process, at GET /__surge/stats.
package target

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Paths of the control endpoints; requests to them are not counted.
const (
	StatsPath = "/__surge/stats"
	ResetPath = "/__surge/reset"
	// WSDropPath drops active WebSocket sessions abruptly: POST with ?n=N
	// drops N of them (all when n is absent).
	WSDropPath = "/__surge/ws/drop"
	// RedirectPath answers 302 to its "to" query parameter; the request is
	// counted like any other.
	RedirectPath = "/redirect"
	// WSPath is the WebSocket echo.
	WSPath = "/ws"
)

// controlPrefix starts every control path; requests under it are never
// counted.
const controlPrefix = "/__surge/"

// secondsKept bounds Stats.BySecond: the arrivals of the last secondsKept
// seconds are kept.
const secondsKept = 3600

// maxPaths bounds the distinct paths counted in Stats.ByPath; requests to
// further paths are counted under OtherPath.
const (
	maxPaths  = 1000
	OtherPath = "(other)"
)

// MaxBodySize bounds Config.BodySize and the bytes query parameter.
const MaxBodySize = 1 << 30

// shutdownGrace is how long Run waits for open connections when its
// context ends.
const shutdownGrace = 5 * time.Second

// Config configures a target. The zero value of every field but Listen is
// "off": an HTTP/1.1 server answering "ok\n" at once.
type Config struct {
	// Listen is host:port of the cleartext port; port 0 picks a free one.
	Listen string
	// Latency is the response delay distribution (see ParseLatency).
	Latency string
	// ErrorRate is the fraction of requests answered ErrorStatus, in [0, 1].
	ErrorRate float64
	// ErrorStatus is the status of those replies, 200–599; 0 means 500.
	ErrorStatus int
	// RetryAfter, when positive, is sent as a Retry-After header (seconds)
	// with every 429 and 503 reply.
	RetryAfter int
	// ResetRate is the fraction of requests answered by resetting, in
	// [0, 1]: HTTP/1 closes the TCP connection with RST (SO_LINGER 0),
	// HTTP/2 resets the request's stream (RST_STREAM, other streams live on).
	ResetRate float64
	// BodySize is the size in bytes of a successful reply's body
	// ("xxx…"); 0 means the 3-byte "ok\n".
	BodySize int
	// SlowBody spreads a successful reply's body over this long: the
	// headers go at once, the body in chunks, its last byte SlowBody later.
	SlowBody time.Duration
	// MaxConns bounds concurrently open connections (both ports together);
	// a connection beyond it is accepted and reset at once and counted in
	// Stats.ConnsRejected. 0: no bound.
	MaxConns int
	// H2C serves HTTP/2 with prior knowledge (h2c) on Listen, alongside
	// HTTP/1.1.
	H2C bool
	// H2MaxStreams is the SETTINGS_MAX_CONCURRENT_STREAMS advertised on
	// HTTP/2 connections (h2c and TLS); 0: Go's default (250).
	H2MaxStreams int
	// TLSListen, if set, is host:port of a second port serving the same
	// handlers over TLS, with ALPN h2 and http/1.1. It needs TLSCert and
	// TLSKey or TLSSelfSigned.
	TLSListen string
	// TLSCert and TLSKey are PEM files of the certificate (chain) and key.
	TLSCert, TLSKey string
	// TLSSelfSigned makes an in-memory CA and a certificate it signs for
	// localhost, 127.0.0.1, ::1 and TLSHosts; Server.CACertPEM returns
	// the CA and TLSCAOut, if set, is where it is written.
	TLSSelfSigned bool
	TLSHosts      []string
	TLSCAOut      string
	// WSEchoLatency delays each WebSocket echo (see ParseLatency).
	WSEchoLatency string
	// WSDropAfter, when positive, drops every WebSocket session abruptly
	// (its TCP connection closed, no close frame) this long after it opened.
	WSDropAfter time.Duration
	// Logger; default discards.
	Logger *slog.Logger
}

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

// behaviour is what the load handler does by default; query parameters
// override it per request.
type behaviour struct {
	latency     Latency
	errorRate   float64
	errorStatus int
	retryAfter  int // seconds; < 0: no header
	resetRate   float64
	bodySize    int
	slowBody    time.Duration
}

// Server is a running target.
type Server struct {
	def         behaviour
	maxConns    int64
	wsLatency   Latency
	wsDropAfter time.Duration
	log         *slog.Logger
	ln          net.Listener // cleartext
	tlsLn       net.Listener // nil without TLSListen
	caPEM       []byte
	srv         *http.Server
	// filler is the body of BodySize replies, written in pieces.
	filler []byte

	// base is the context of every request; cancelled when Run's context
	// ends, so delayed responses and WebSocket sessions do not hold up
	// shutdown.
	base   context.Context
	cancel context.CancelFunc
	// hijacked counts handlers that take their connection over (WebSocket
	// sessions, resets), which http.Server.Shutdown does not wait for.
	hijacked sync.WaitGroup

	c counters

	mu     sync.Mutex
	byPath map[string]*atomic.Int64
	// bySecond is a ring of per-second arrival counts, indexed by the Unix
	// second modulo secondsKept; guarded by mu.
	bySecond [secondsKept]secondCount

	// tlsConns maps each open *tls.Conn to its *connInfo, so connState
	// can tell how its handshake went.
	tlsConns sync.Map

	wsMu     sync.Mutex
	wsNextID uint64
	sessions map[uint64]*wsSession
}

type secondCount struct{ sec, n int64 }

// New validates cfg, makes or loads the TLS certificate (writing the CA to
// TLSCAOut) and binds the listeners.
func New(cfg Config) (*Server, error) {
	def, err := cfg.behaviour()
	if err != nil {
		return nil, err
	}
	wsLat, err := ParseLatency(cfg.WSEchoLatency)
	if err != nil {
		return nil, fmt.Errorf("target: --ws-echo-latency %q: %w", cfg.WSEchoLatency, err)
	}
	switch {
	case cfg.MaxConns < 0:
		return nil, fmt.Errorf("target: --max-conns %d: want 0 (no bound) or more", cfg.MaxConns)
	case cfg.H2MaxStreams < 0:
		return nil, fmt.Errorf("target: --h2-max-streams %d: want 0 (Go's default) or more", cfg.H2MaxStreams)
	case cfg.WSDropAfter < 0:
		return nil, fmt.Errorf("target: --ws-drop-after %s: want 0 (never) or more", cfg.WSDropAfter)
	}
	tlsCfg, caPEM, err := cfg.tlsConfig()
	if err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		def:         def,
		maxConns:    int64(cfg.MaxConns),
		wsLatency:   wsLat,
		wsDropAfter: cfg.WSDropAfter,
		log:         log,
		caPEM:       caPEM,
		byPath:      make(map[string]*atomic.Int64),
		sessions:    make(map[uint64]*wsSession),
	}
	s.filler = makeFiller()
	if s.ln, err = s.listen(cfg.listen()); err != nil {
		return nil, err
	}
	if tlsCfg != nil {
		if s.tlsLn, err = s.listen(cfg.TLSListen); err != nil {
			return nil, errors.Join(err, s.ln.Close())
		}
	}
	if caPEM != nil && cfg.TLSCAOut != "" {
		if err := os.WriteFile(cfg.TLSCAOut, caPEM, 0o644); err != nil {
			return nil, errors.Join(fmt.Errorf("target: --tls-ca-out: %w", err), s.closeListeners())
		}
	}
	s.base, s.cancel = context.WithCancel(context.Background())

	mux := http.NewServeMux()
	mux.HandleFunc("GET "+StatsPath, s.serveStats)
	mux.HandleFunc("POST "+ResetPath, s.serveReset)
	mux.HandleFunc("POST "+WSDropPath, s.serveWSDrop)
	mux.HandleFunc(controlPrefix, serveControlOther)
	mux.HandleFunc(RedirectPath, s.serveRedirect)
	mux.HandleFunc(WSPath, s.serveWS)
	mux.HandleFunc("/", s.serve)
	protos := new(http.Protocols)
	protos.SetHTTP1(true)
	protos.SetHTTP2(true) // over TLS only
	protos.SetUnencryptedHTTP2(cfg.H2C)
	s.srv = &http.Server{
		Handler:           mux,
		Protocols:         protos,
		HTTP2:             &http.HTTP2Config{MaxConcurrentStreams: cfg.H2MaxStreams},
		TLSConfig:         tlsCfg,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		BaseContext:       func(net.Listener) context.Context { return s.base },
		ConnContext:       s.connContext,
		ConnState:         s.connState,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	return s, nil
}

func (cfg Config) listen() string {
	if cfg.Listen == "" {
		return "127.0.0.1:0"
	}
	return cfg.Listen
}

// behaviour validates the load handler's defaults.
func (cfg Config) behaviour() (behaviour, error) {
	lat, err := ParseLatency(cfg.Latency)
	if err != nil {
		return behaviour{}, fmt.Errorf("target: --latency %q: %w", cfg.Latency, err)
	}
	b := behaviour{
		latency:     lat,
		errorRate:   cfg.ErrorRate,
		errorStatus: cfg.ErrorStatus,
		retryAfter:  -1,
		resetRate:   cfg.ResetRate,
		bodySize:    cfg.BodySize,
		slowBody:    cfg.SlowBody,
	}
	if b.errorStatus == 0 {
		b.errorStatus = http.StatusInternalServerError
	}
	if cfg.RetryAfter > 0 {
		b.retryAfter = cfg.RetryAfter
	}
	switch {
	case !isFraction(cfg.ErrorRate):
		return b, fmt.Errorf("target: --error-rate %v: want a fraction between 0 and 1", cfg.ErrorRate)
	case !isStatus(b.errorStatus):
		return b, fmt.Errorf("target: --error-status %d: want an HTTP status 200-599", cfg.ErrorStatus)
	case cfg.RetryAfter < 0:
		return b, fmt.Errorf("target: --retry-after %d: want seconds, 0 (no header) or more", cfg.RetryAfter)
	case !isFraction(cfg.ResetRate):
		return b, fmt.Errorf("target: --reset-rate %v: want a fraction between 0 and 1", cfg.ResetRate)
	case cfg.BodySize < 0 || cfg.BodySize > MaxBodySize:
		return b, fmt.Errorf("target: --body-size %d: want 0 to %d bytes", cfg.BodySize, MaxBodySize)
	case cfg.SlowBody < 0:
		return b, fmt.Errorf("target: --slow-body %s: want 0 (off) or more", cfg.SlowBody)
	}
	return b, nil
}

func isFraction(f float64) bool { return f >= 0 && f <= 1 }
func isStatus(n int) bool       { return n >= 200 && n <= 599 }

func (s *Server) listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("target: listen: %w", err)
	}
	return &countingListener{Listener: ln, s: s}, nil
}

// Addr is the bound cleartext address, host:port.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// TLSAddr is the bound TLS address, host:port, or "" without TLSListen.
func (s *Server) TLSAddr() string {
	if s.tlsLn == nil {
		return ""
	}
	return s.tlsLn.Addr().String()
}

// CACertPEM is the PEM of the CA that signed the TLSSelfSigned
// certificate, for clients to trust; nil otherwise.
func (s *Server) CACertPEM() []byte { return s.caPEM }

// Run serves until ctx ends, then shuts down: in-flight delays are cut
// short, WebSocket sessions and connections closed. It returns nil after
// ctx ends.
func (s *Server) Run(ctx context.Context) error {
	s.log.Info("target listening", "addr", s.Addr(), "tls_addr", s.TLSAddr(),
		"latency", s.def.latency.String(), "error_rate", s.def.errorRate)
	errc := make(chan error, 2)
	serving := 1
	go func() { errc <- s.srv.Serve(s.ln) }()
	if s.tlsLn != nil {
		serving++
		go func() { errc <- s.srv.ServeTLS(s.tlsLn, "", "") }()
	}
	var err error
	select {
	case serr := <-errc:
		serving--
		err = fmt.Errorf("target: serve: %w", serr)
	case <-ctx.Done():
	}
	s.cancel()
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if serr := s.srv.Shutdown(sctx); serr != nil {
		err = errors.Join(err, fmt.Errorf("target: shutdown: %w", serr), s.srv.Close())
	}
	for range serving {
		if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) {
			err = errors.Join(err, fmt.Errorf("target: serve: %w", serr))
		}
	}
	s.hijacked.Wait()
	return err
}

// Close releases the listeners of a server whose Run was never called.
func (s *Server) Close() error {
	s.cancel()
	if err := s.closeListeners(); err != nil {
		return fmt.Errorf("target: close: %w", err)
	}
	return nil
}

func (s *Server) closeListeners() error {
	err := s.ln.Close()
	if s.tlsLn != nil {
		err = errors.Join(err, s.tlsLn.Close())
	}
	return err
}

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

func (s *Server) serveStats(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(s.Stats()); err != nil {
		s.log.Debug("write stats", "err", err)
	}
}

func (s *Server) serveReset(w http.ResponseWriter, _ *http.Request) {
	s.Reset()
	w.WriteHeader(http.StatusNoContent)
}

// serveWSDrop drops ?n= active WebSocket sessions, all without n, and
// answers {"dropped": k}.
func (s *Server) serveWSDrop(w http.ResponseWriter, r *http.Request) {
	n := -1
	if v := r.URL.Query().Get("n"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 0 {
			http.Error(w, fmt.Sprintf("ws drop: n=%q: want a count, 0 or more", v), http.StatusBadRequest)
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(map[string]int{"dropped": s.DropWebSockets(n)}); err != nil {
		s.log.Debug("write ws drop", "err", err)
	}
}

// serveControlOther answers a control path with the wrong method (405) or
// one that does not exist (404).
func serveControlOther(w http.ResponseWriter, r *http.Request) {
	allow := map[string]string{StatsPath: "GET", ResetPath: "POST", WSDropPath: "POST"}[r.URL.Path]
	if allow == "" {
		http.Error(w, "no control endpoint "+r.URL.Path, http.StatusNotFound)
		return
	}
	w.Header().Set("Allow", allow)
	http.Error(w, r.URL.Path+": use "+allow, http.StatusMethodNotAllowed)
}

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
