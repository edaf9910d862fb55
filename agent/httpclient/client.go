package httpclient

import (
	"cmp"
	"context"
	crand "crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/surgeload/surge/plan"
)

// Options configure a Client.
type Options struct {
	// Allow is enforced on every dial; nil means loopback only.
	Allow *AllowList
	// Resolver resolves target names; nil uses a zero net.Resolver.
	Resolver *net.Resolver
	// Conns, if set, counts open connections (shared across clients: the
	// agent-wide gauge).
	Conns *atomic.Int64
	// Stats, if set, counts this client's connections (per scenario).
	Stats *ConnStats
	// DialTimeout bounds one TCP connect (and a TLS handshake); default
	// Conn.DialTimeout, else 10s.
	DialTimeout time.Duration
	// Conn is the scenario's connection behaviour; nil: per-vu keep-alive
	// HTTP/1.1.
	Conn *plan.Connection
	// Retry is the scenario's retry policy; nil: no retries.
	Retry *plan.Retry
	// PeakVUs is the scenario's peak VUs on this agent: the default
	// pool_size of reuse: pool (100 when 0).
	PeakVUs int
	// Seed seeds the draws of max_lifetime and idle_timeout and the
	// backoff jitter; 0 picks one at random.
	Seed uint64
	// Limit, if set, spaces every attempt (the plan's rps; shared by the
	// run's scenarios on this agent).
	Limit *RateLimit
}

const (
	defaultDialTimeout = 10 * time.Second
	defaultIdleTimeout = 90 * time.Second
	defaultPoolSize    = 100
	defaultStreams     = 100
	maxRedirects       = 10
)

// Client sends plan requests for one scenario. It is safe for concurrent
// use; each VU should take its own Session.
type Client struct {
	d           *dialer
	tls         *tls.Config
	h2t         *http.Transport
	dialTimeout time.Duration
	reuse       string
	poolSize    int
	http2       string
	streams     int
	maxReq      int64
	lifetime    *plan.Dist
	idle        *plan.Dist // nil: defaultIdleTimeout
	retry       *retryPolicy
	limit       *RateLimit // nil: none
	cookies     bool       // each Session keeps a cookie jar
	bufs        sync.Pool  // *readBuf

	rngMu sync.Mutex
	rng   *rand.Rand

	mu      sync.Mutex
	pools   map[pooler]struct{}
	shared  atomic.Pointer[map[string]*hostPool] // reuse: pool, HTTP/1.1; copied on write
	shared2 map[string]*h2pool                   // reuse: pool, HTTP/2
	closed  bool
	def     *Session
	stop    context.CancelFunc
	reaper  sync.WaitGroup
}

// New returns a client for opts. Errors name the plan field at fault
// ("connection.tls.ca_file: ...").
func New(opts Options) (*Client, error) {
	conn := opts.Conn
	if conn == nil {
		conn = &plan.Connection{}
	}
	if opts.Allow == nil {
		var err error
		if opts.Allow, err = ParseAllowList(nil); err != nil {
			return nil, err
		}
	}
	if opts.Resolver == nil {
		opts.Resolver = &net.Resolver{}
	}
	c := &Client{reuse: conn.Reuse, http2: conn.HTTP2, maxReq: conn.MaxRequestsPerConnection,
		lifetime: conn.MaxLifetime, idle: conn.IdleTimeout, cookies: conn.CookiesOn(),
		pools: map[pooler]struct{}{}, shared2: map[string]*h2pool{}, limit: opts.Limit}
	c.bufs.New = func() any { return new(readBuf) }
	errs := c.applyConnection(conn, opts)
	var err error
	if c.tls, err = buildTLS(conn.TLS); err != nil {
		errs = append(errs, err)
	}
	hosts, err := parseHosts(conn.Hosts)
	if err != nil {
		errs = append(errs, err)
	}
	sources, err := parseSources(conn.SourceAddresses)
	if err != nil {
		errs = append(errs, err)
	}
	if c.retry, err = newRetry(opts.Retry); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	c.d = &dialer{allow: opts.Allow, resolver: opts.Resolver, hosts: hosts, sources: sources,
		timeout: c.dialTimeout, gauge: opts.Conns, stats: opts.Stats}
	c.h2t = c.newH2Transport()
	c.rng = newRand(opts.Seed)
	c.def = &Session{c: c} // Client.Do's: no VU, so no cookie jar
	if c.reuse != plan.ReuseNever {
		ctx, cancel := context.WithCancel(context.Background())
		c.stop = cancel
		c.reaper.Go(func() { c.reap(ctx) })
	}
	return c, nil
}

// applyConnection checks conn's modes and limits and fills in their
// defaults; it returns what is wrong with them.
func (c *Client) applyConnection(conn *plan.Connection, opts Options) []error {
	var errs []error
	if err := pickMode(&c.reuse, "reuse", "reuse", plan.ReusePerVU, plan.ReusePool, plan.ReuseNever); err != nil {
		errs = append(errs, err)
	}
	if err := pickMode(&c.http2, "http2", "http2 mode", plan.HTTP2Off, plan.HTTP2H2, plan.HTTP2H2C); err != nil {
		errs = append(errs, err)
	}
	// Sizes and timeouts: the first positive of the plan's, the option's
	// and the default.
	c.poolSize = cmp.Or(max(int(conn.PoolSize), 0), max(opts.PeakVUs, 0), defaultPoolSize)
	c.streams = cmp.Or(max(int(conn.MaxConcurrentStreams), 0), defaultStreams)
	if c.maxReq < 0 {
		errs = append(errs, fmt.Errorf("connection.max_requests_per_connection: must be >= 0, got %d", c.maxReq))
	}
	for name, d := range map[string]*plan.Dist{"max_lifetime": conn.MaxLifetime, "idle_timeout": conn.IdleTimeout} {
		if d != nil && d.Mean() <= 0 {
			errs = append(errs, fmt.Errorf("connection.%s: must be > 0", name))
		}
	}
	c.dialTimeout = cmp.Or(max(conn.DialTimeout.D(), 0), max(opts.DialTimeout, 0), defaultDialTimeout)
	return errs
}

// pickMode checks that *mode, the plan's connection.field, is one of
// valid, the first being its default when empty.
func pickMode(mode *string, field, what string, valid ...string) error {
	if *mode == "" {
		*mode = valid[0]
	}
	if slices.Contains(valid, *mode) {
		return nil
	}
	return fmt.Errorf("connection.%s: unknown %s %q (valid: %s)", field, what, *mode, strings.Join(valid, ", "))
}

// newRand returns the client's random source, seeded with seed (0: a
// random seed).
func newRand(seed uint64) *rand.Rand {
	if seed == 0 {
		var b [8]byte
		_, _ = crand.Read(b[:])
		seed = binary.LittleEndian.Uint64(b[:])
	}
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

// reapEvery is how often idle connections are checked: a quarter of the
// mean idle timeout or lifetime, within [10ms, 1s].
func (c *Client) reapEvery() time.Duration {
	every := time.Second
	for _, d := range []*plan.Dist{c.idle, c.lifetime} {
		if d != nil {
			every = min(every, d.Mean()/4)
		}
	}
	return max(every, 10*time.Millisecond)
}

// reap closes idle connections past their idle timeout or lifetime until
// ctx ends.
func (c *Client) reap(ctx context.Context) {
	t := time.NewTicker(c.reapEvery())
	defer t.Stop()
	var pools []pooler
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		c.mu.Lock()
		pools = pools[:0]
		for p := range c.pools {
			pools = append(pools, p)
		}
		c.mu.Unlock()
		now := time.Now()
		for _, p := range pools {
			p.reap(now)
		}
		clear(pools)
	}
}

// Close stops the reaper and closes every idle connection; connections in
// use close when their request ends. Sessions are closed with it.
func (c *Client) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	pools := make([]pooler, 0, len(c.pools))
	for p := range c.pools {
		pools = append(pools, p)
	}
	c.mu.Unlock()
	if c.stop != nil {
		c.stop()
		c.reaper.Wait()
	}
	for _, p := range pools {
		p.closeAll()
	}
}

// register makes p visible to the reaper and Close; when the client is
// closed already, p is closed at once.
func (c *Client) register(p pooler) {
	c.mu.Lock()
	closed := c.closed
	if !closed {
		c.pools[p] = struct{}{}
	}
	c.mu.Unlock()
	if closed {
		p.closeAll()
	}
}

func (c *Client) unregister(p pooler) {
	c.mu.Lock()
	delete(c.pools, p)
	c.mu.Unlock()
}

// sharedPool returns the client's HTTP/1.1 pool for key (reuse: pool).
func (c *Client) sharedPool(key string) *hostPool {
	if m := c.shared.Load(); m != nil {
		if p := (*m)[key]; p != nil {
			return p
		}
	}
	c.mu.Lock()
	old := c.shared.Load()
	if old != nil {
		if p := (*old)[key]; p != nil {
			c.mu.Unlock()
			return p
		}
	}
	m := make(map[string]*hostPool, 1)
	if old != nil {
		for k, v := range *old {
			m[k] = v
		}
	}
	p := &hostPool{c: c, key: key, limit: c.poolSize}
	m[key] = p
	c.shared.Store(&m)
	c.mu.Unlock()
	c.register(p)
	return p
}

// sharedPool2 returns the client's HTTP/2 pool for rt (reuse: pool).
func (c *Client) sharedPool2(rt route) *h2pool {
	c.mu.Lock()
	p := c.shared2[rt.key]
	created := p == nil
	if created {
		p = c.newH2pool(rt, c.poolSize)
		c.shared2[rt.key] = p
	}
	c.mu.Unlock()
	if created {
		c.register(p)
	}
	return p
}

// life draws a new connection's expiry (zero: none) and idle timeout.
func (c *Client) life(now time.Time) (expires time.Time, idle time.Duration) {
	if c.lifetime == nil && c.idle == nil {
		return time.Time{}, defaultIdleTimeout
	}
	c.rngMu.Lock()
	defer c.rngMu.Unlock()
	if c.lifetime != nil {
		expires = now.Add(max(c.lifetime.Sample(c.rng), time.Nanosecond))
	}
	idle = defaultIdleTimeout
	if c.idle != nil {
		idle = max(c.idle.Sample(c.rng), time.Nanosecond)
	}
	return expires, idle
}

// uniform returns a uniform draw in [0, 1).
func (c *Client) uniform() float64 {
	c.rngMu.Lock()
	defer c.rngMu.Unlock()
	return c.rng.Float64()
}

// Do sends req on the client's shared default session, reads the body
// and classifies the outcome. now supplies the timestamps.
func (c *Client) Do(ctx context.Context, req *Request, now func() time.Time) Result {
	return c.def.Do(ctx, req, nil, now)
}

// DoWith is Do expanding req's templates from v.
func (c *Client) DoWith(ctx context.Context, req *Request, v *Vars, now func() time.Time) Result {
	return c.def.Do(ctx, req, v, now)
}
