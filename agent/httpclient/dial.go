package httpclient

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// ConnStats counts one scenario's connections. Every connection the client
// dials adds one to Opened, and one to Closed when it closes: exactly once
// each.
type ConnStats struct {
	Opened, Closed atomic.Int64
}

// Open returns the connections open now.
func (s *ConnStats) Open() int64 { return s.Opened.Load() - s.Closed.Load() }

// hostOverride is a hosts: entry: an address and, optionally, a port.
type hostOverride struct {
	ip   netip.Addr
	port string
}

// dialer resolves, checks and connects. It is immutable after New but for
// the source address counter.
type dialer struct {
	allow    *AllowList
	resolver *net.Resolver
	hosts    map[string]hostOverride // lower-case name → address
	sources  []netip.Addr
	next     atomic.Uint64
	timeout  time.Duration
	gauge    *atomic.Int64 // agent-wide open connections; may be nil
	stats    *ConnStats    // the scenario's; may be nil
}

// parseHosts checks hosts: entries.
func parseHosts(hosts map[string]string) (map[string]hostOverride, error) {
	if len(hosts) == 0 {
		return nil, nil
	}
	names := make([]string, 0, len(hosts))
	for n := range hosts {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make(map[string]hostOverride, len(hosts))
	var errs []error
	for _, name := range names {
		addr := hosts[name]
		host, port := addr, ""
		if h, p, err := net.SplitHostPort(addr); err == nil {
			host, port = h, p
			if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
				errs = append(errs, fmt.Errorf("connection.hosts.%s: invalid port in %q", name, addr))
				continue
			}
		}
		ip, err := netip.ParseAddr(strings.Trim(host, "[]"))
		if err != nil {
			errs = append(errs, fmt.Errorf("connection.hosts.%s: want an IP address or IP:port, got %q", name, addr))
			continue
		}
		out[strings.ToLower(strings.TrimSuffix(name, "."))] = hostOverride{ip: ip.Unmap(), port: port}
	}
	return out, errors.Join(errs...)
}

// parseSources checks source_addresses: each must be an IP address of this
// machine (bound once, briefly, to make sure).
func parseSources(addrs []string) ([]netip.Addr, error) {
	var out []netip.Addr
	var errs []error
	for i, a := range addrs {
		ip, err := netip.ParseAddr(a)
		if err != nil {
			errs = append(errs, fmt.Errorf("connection.source_addresses[%d]: want an IP address, got %q", i, a))
			continue
		}
		ip = ip.Unmap()
		pc, err := net.ListenPacket("udp", netip.AddrPortFrom(ip, 0).String())
		if err != nil {
			errs = append(errs, fmt.Errorf("connection.source_addresses[%d]: %s is not an address of this machine: %w", i, a, err))
			continue
		}
		pc.Close()
		out = append(out, ip)
	}
	return out, errors.Join(errs...)
}

// dialPhases are the dial's timings, when they happened.
type dialPhases struct {
	dns, connect, tls time.Duration
	has               Phases
}

// dial resolves addr ("host:port") after the hosts overrides, checks every
// address against the allow-list, and connects to the first that answers,
// from the next source address. The connection is counted. Errors of the
// resolution or connect are connectErrors.
func (d *dialer) dial(ctx context.Context, network, addr string, now func() time.Time, ph *dialPhases) (*countedConn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	if o, ok := d.hosts[strings.ToLower(strings.TrimSuffix(host, "."))]; ok {
		host = o.ip.String()
		if o.port != "" {
			port = o.port
		}
	}
	t0 := now()
	ips, err := d.allow.Resolve(ctx, d.resolver, host)
	if err == nil && ips == nil { // allowed by name: resolve it all the same
		ips, err = lookup(ctx, d.resolver, host)
	}
	if _, perr := netip.ParseAddr(strings.Trim(host, "[]")); perr != nil { // a name was resolved
		t1 := now()
		if ph != nil {
			ph.dns, ph.has = t1.Sub(t0), ph.has|HasDNS
		}
		t0 = t1
	}
	if err != nil {
		var be *BlockedError
		if errors.As(err, &be) {
			return nil, err
		}
		return nil, &connectError{fmt.Errorf("dial %s: %w", addr, err)}
	}
	var conn net.Conn
	var errs []error
	for _, ip := range ips {
		nd := net.Dialer{Timeout: d.timeout, KeepAlive: 30 * time.Second}
		if len(d.sources) > 0 {
			src, ok := d.source(ip)
			if !ok {
				errs = append(errs, fmt.Errorf("dial %s: no source address of the family of %s", addr, ip))
				continue
			}
			nd.LocalAddr = &net.TCPAddr{IP: src.AsSlice()}
		}
		conn, err = nd.DialContext(ctx, network, net.JoinHostPort(ip.String(), port))
		if err == nil {
			break
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	if conn == nil {
		return nil, &connectError{fmt.Errorf("dial %s: %w", addr, errors.Join(errs...))}
	}
	if ph != nil {
		ph.connect, ph.has = now().Sub(t0), ph.has|HasConnect
	}
	if d.gauge != nil {
		d.gauge.Add(1)
	}
	if d.stats != nil {
		d.stats.Opened.Add(1)
	}
	return &countedConn{Conn: conn, d: d}, nil
}

// lookup resolves host with r.
func lookup(ctx context.Context, r *net.Resolver, host string) ([]netip.Addr, error) {
	got, err := r.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, fmt.Errorf("resolve %q: %w", host, err)
	}
	if len(got) == 0 {
		return nil, fmt.Errorf("resolve %q: %w", host, &net.DNSError{Err: "no addresses", Name: host, IsNotFound: true})
	}
	for i, ip := range got {
		got[i] = ip.Unmap()
	}
	return got, nil
}

// source returns the next source address of ip's family, round robin.
func (d *dialer) source(ip netip.Addr) (netip.Addr, bool) {
	n := uint64(len(d.sources))
	start := d.next.Add(1) - 1
	for i := range n {
		s := d.sources[(start+i)%n]
		if s.Is4() == ip.Is4() {
			return s, true
		}
	}
	return netip.Addr{}, false
}

// DialContext dials addr ("host:port") as the client's HTTP connections
// are dialed: hosts overrides, allow-list, source addresses, and counted in
// the client's ConnStats and open-connection gauge until the returned
// connection is closed. It is for clients of other protocols (WebSocket).
func (c *Client) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	cc, err := c.d.dial(ctx, network, addr, time.Now, nil)
	if err != nil {
		return nil, err
	}
	return cc, nil
}

// countedConn is a dialed connection; its first Close updates the counts.
type countedConn struct {
	net.Conn
	d      *dialer
	closed atomic.Bool
}

func (c *countedConn) Close() error {
	if c.closed.CompareAndSwap(false, true) {
		if c.d.gauge != nil {
			c.d.gauge.Add(-1)
		}
		if c.d.stats != nil {
			c.d.stats.Closed.Add(1)
		}
	}
	return c.Conn.Close()
}
