// Package target is surge's built-in system under test: a small HTTP/1.1
// keep-alive server with a configurable latency distribution and error rate,
// which counts the requests and connections it sees. `surge target` and
// `surge demo` run it; tests read its counters directly or, from another
// process, at GET /__surge/stats.
package target

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Paths of the control endpoints; requests to them are not counted.
const (
	StatsPath = "/__surge/stats"
	ResetPath = "/__surge/reset"
	// RedirectPath answers 302 to its "to" query parameter; the request is
	// counted like any other.
	RedirectPath = "/redirect"
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

// shutdownGrace is how long Run waits for open connections when its
// context ends.
const shutdownGrace = 5 * time.Second

// Config configures a target.
type Config struct {
	// Listen is host:port; port 0 picks a free one.
	Listen string
	// Latency is the response delay distribution (see ParseLatency).
	Latency string
	// ErrorRate is the fraction of requests answered 500, in [0, 1].
	ErrorRate float64
	// Logger; default discards.
	Logger *slog.Logger
}

// Stats are the target's counters since start or the last reset.
type Stats struct {
	// Requests counts every request except those to the control endpoints.
	Requests int64 `json:"requests"`
	// ByPath counts Requests by URL path.
	ByPath map[string]int64 `json:"by_path"`
	// Errors counts the 500 responses sent.
	Errors int64 `json:"errors"`
	// ConnsAccepted counts TCP connections accepted; ConnsActive is how many
	// are open now (not reset).
	ConnsAccepted int64 `json:"conns_accepted"`
	ConnsActive   int64 `json:"conns_active"`
	// BySecond counts Requests by the Unix second they arrived in (the last
	// hour's seconds with any arrival).
	BySecond map[int64]int64 `json:"by_second"`
}

// Server is a running target.
type Server struct {
	latency   Latency
	errorRate float64
	log       *slog.Logger
	ln        net.Listener
	srv       *http.Server

	// base is the context of every request; cancelled when Run's context
	// ends, so delayed responses do not hold up shutdown.
	base   context.Context
	cancel context.CancelFunc

	requests, errors        atomic.Int64
	connsAccepted, connsAct atomic.Int64

	mu     sync.Mutex
	byPath map[string]*atomic.Int64
	// bySecond is a ring of per-second arrival counts, indexed by the Unix
	// second modulo secondsKept; guarded by mu.
	bySecond [secondsKept]secondCount
}

type secondCount struct{ sec, n int64 }

// New validates cfg and binds the listener.
func New(cfg Config) (*Server, error) {
	lat, err := ParseLatency(cfg.Latency)
	if err != nil {
		return nil, fmt.Errorf("target: --latency %q: %w", cfg.Latency, err)
	}
	if !(cfg.ErrorRate >= 0 && cfg.ErrorRate <= 1) {
		return nil, fmt.Errorf("target: --error-rate %v: want a fraction between 0 and 1", cfg.ErrorRate)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	listen := cfg.Listen
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("target: listen: %w", err)
	}
	s := &Server{
		latency:   lat,
		errorRate: cfg.ErrorRate,
		log:       log,
		byPath:    make(map[string]*atomic.Int64),
	}
	s.ln = &countingListener{Listener: ln, s: s}
	s.base, s.cancel = context.WithCancel(context.Background())
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+StatsPath, s.serveStats)
	mux.HandleFunc("POST "+ResetPath, s.serveReset)
	mux.HandleFunc(RedirectPath, s.serveRedirect)
	mux.HandleFunc("/", s.serve)
	s.srv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		BaseContext:       func(net.Listener) context.Context { return s.base },
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	return s, nil
}

// Addr is the bound address, host:port.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Run serves until ctx ends, then shuts down: in-flight delays are cut
// short and connections closed. It returns nil after ctx ends.
func (s *Server) Run(ctx context.Context) error {
	s.log.Info("target listening", "addr", s.Addr(), "latency", s.latency.String(), "error_rate", s.errorRate)
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(s.ln) }()
	select {
	case err := <-errc:
		s.cancel()
		return fmt.Errorf("target: serve: %w", err)
	case <-ctx.Done():
	}
	s.cancel()
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	err := s.srv.Shutdown(sctx)
	if err != nil {
		err = errors.Join(err, s.srv.Close())
	}
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	if err != nil {
		return fmt.Errorf("target: shutdown: %w", err)
	}
	return nil
}

// Close releases the listener of a server whose Run was never called.
func (s *Server) Close() error {
	s.cancel()
	if err := s.ln.Close(); err != nil {
		return fmt.Errorf("target: close: %w", err)
	}
	return nil
}

// Stats returns the counters.
func (s *Server) Stats() Stats {
	st := Stats{
		Requests:      s.requests.Load(),
		Errors:        s.errors.Load(),
		ConnsAccepted: s.connsAccepted.Load(),
		ConnsActive:   s.connsAct.Load(),
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

// Reset zeroes the counters, except ConnsActive.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests.Store(0)
	s.errors.Store(0)
	s.connsAccepted.Store(0)
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

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	s.countPath(r.URL.Path)
	_, _ = io.Copy(io.Discard, r.Body)
	if d := s.latency.Draw(); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if s.errorRate > 0 && rand.Float64() < s.errorRate {
		s.errors.Add(1)
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = io.WriteString(w, "error\n")
		return
	}
	_, _ = io.WriteString(w, "ok\n")
}

// serveRedirect counts the request and answers 302 to the "to" parameter,
// so tests can check that a client does not follow a redirect where it
// must not go.
func (s *Server) serveRedirect(w http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	s.countPath(r.URL.Path)
	to := r.URL.Query().Get("to")
	if to == "" {
		http.Error(w, "redirect: give ?to=URL", http.StatusBadRequest)
		return
	}
	http.Redirect(w, r, to, http.StatusFound)
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

// countingListener counts accepted and open connections.
type countingListener struct {
	net.Listener
	s *Server
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.s.connsAccepted.Add(1)
	l.s.connsAct.Add(1)
	return &countedConn{Conn: c, s: l.s}, nil
}

type countedConn struct {
	net.Conn
	s    *Server
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() { c.s.connsAct.Add(-1) })
	return c.Conn.Close()
}
