// Package target is surge's built-in system under test: a small HTTP server
// (HTTP/1.1 keep-alive, optionally h2c on the same port and HTTP/2 or
// HTTP/1.1 over TLS on a second port) with a WebSocket echo at /ws and a
// small stateful API (login, account, orders: shop.go). It
// delays replies by a configurable latency distribution, fails, resets or
// slows a configurable share of them, limits connections, and counts what
// it sees. `surge target` and `surge demo` run it; tests read its counters
// directly or, from another process, at GET /__surge/stats.
package target

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
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

// shutdownGrace is how long Run waits for open connections when its
// context ends.
const shutdownGrace = 5 * time.Second

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

	c    counters
	shop *shop
	// durations is the /metrics histogram; nil without Config.Metrics.
	durations *durations

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
		shop:        newShop(),
	}
	s.filler = makeFiller()
	if cfg.Metrics {
		s.durations = newDurations()
	}
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

	mux := s.routes()
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

// routes are the target's handlers: control endpoints, the shop, the
// WebSocket echo, /metrics when on, and the load handler for the rest.
func (s *Server) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+StatsPath, s.serveStats)
	mux.HandleFunc("POST "+ResetPath, s.serveReset)
	mux.HandleFunc("POST "+WSDropPath, s.serveWSDrop)
	mux.HandleFunc("POST "+ShopLoginsPath, s.serveShopLogins)
	mux.HandleFunc(controlPrefix, serveControlOther)
	mux.HandleFunc("POST "+LoginPath, s.measured(LoginPath, s.serveLogin))
	mux.HandleFunc("GET "+AccountPath, s.measured(AccountPath, s.serveAccount))
	mux.HandleFunc("POST "+OrdersPath, s.measured(OrdersPath, s.serveCreateOrder))
	mux.HandleFunc("GET "+OrdersPath+"/{id}", s.measured(OrdersPath+"/{id}", s.serveOrder))
	mux.HandleFunc(RedirectPath, s.measured(RedirectPath, s.serveRedirect))
	mux.HandleFunc(WSPath, s.serveWS)
	if s.durations != nil {
		mux.HandleFunc("GET "+MetricsPath, s.serveMetrics)
	}
	mux.HandleFunc("/", s.measured("", s.serve))
	return mux
}

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
