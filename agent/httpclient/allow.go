package httpclient

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// DefaultAllow is the allow-list used when none is configured: loopback only.
var defaultAllow = []string{"127.0.0.0/8", "::1"}

// AllowList is the set of hosts and networks an agent may send traffic to.
// Entries are CIDRs ("10.0.0.0/8"), IP addresses ("10.1.2.3", "::1") or
// host names ("api.example.com"). A host name entry allows connections to
// that exact name, whatever it resolves to; every other name is resolved and
// all of its addresses must fall in an allowed network.
type AllowList struct {
	entries []string
	nets    []netip.Prefix
	hosts   map[string]bool
}

// ParseAllowList parses entries; empty entries mean loopback only. Every
// invalid entry is reported.
func ParseAllowList(entries []string) (*AllowList, error) {
	if len(entries) == 0 {
		entries = defaultAllow
	}
	l := &AllowList{hosts: make(map[string]bool)}
	var errs []error
	for _, e := range entries {
		e = strings.TrimSpace(e)
		switch {
		case e == "":
			errs = append(errs, errors.New("allow-list: empty entry"))
			continue
		case strings.Contains(e, "/"):
			p, err := netip.ParsePrefix(e)
			if err != nil {
				errs = append(errs, fmt.Errorf("allow-list: entry %q: %w", e, err))
				continue
			}
			l.nets = append(l.nets, p.Masked())
		default:
			if ip, err := netip.ParseAddr(strings.Trim(e, "[]")); err == nil {
				ip = ip.Unmap()
				l.nets = append(l.nets, netip.PrefixFrom(ip, ip.BitLen()))
			} else if validHostname(e) {
				l.hosts[strings.ToLower(strings.TrimSuffix(e, "."))] = true
			} else {
				errs = append(errs, fmt.Errorf("allow-list: entry %q is neither a CIDR, an IP address nor a host name", e))
				continue
			}
		}
		l.entries = append(l.entries, e)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return l, nil
}

func validHostname(h string) bool {
	h = strings.TrimSuffix(h, ".")
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// Entries returns the list as configured (the default when none was).
func (l *AllowList) Entries() []string { return append([]string(nil), l.entries...) }

// String formats the list as "[127.0.0.0/8 ::1]".
func (l *AllowList) String() string { return "[" + strings.Join(l.entries, " ") + "]" }

// AllowsIP reports whether ip lies in an allowed network.
func (l *AllowList) AllowsIP(ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, p := range l.nets {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// allowsName reports whether host is allowed by name.
func (l *AllowList) allowsName(host string) bool {
	return l.hosts[strings.ToLower(strings.TrimSuffix(host, "."))]
}

// BlockedError is returned when a target is not in the allow-list.
type BlockedError struct {
	Host  string
	IPs   []netip.Addr // the resolved addresses; Bad are the refused ones
	Bad   []netip.Addr
	Allow string
}

func (e *BlockedError) Error() string {
	bad := make([]string, len(e.Bad))
	for i, ip := range e.Bad {
		bad[i] = ip.String()
	}
	return fmt.Sprintf("target host %q (%s) is not in the allow-list %s; start the agent with --allow %s to permit it",
		e.Host, strings.Join(bad, ", "), e.Allow, e.Host)
}

// Resolve checks host against the list: an allowed name is returned with no
// addresses (the caller dials it by name); otherwise host is resolved with r
// and every address must be allowed. The checked addresses are returned so
// the caller dials exactly those.
func (l *AllowList) Resolve(ctx context.Context, r *net.Resolver, host string) ([]netip.Addr, error) {
	host = strings.Trim(host, "[]")
	if l.allowsName(host) {
		return nil, nil
	}
	var ips []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		ips = []netip.Addr{ip.Unmap()}
	} else {
		if r == nil {
			r = &net.Resolver{}
		}
		got, err := r.LookupNetIP(ctx, "ip", host)
		if err != nil {
			return nil, fmt.Errorf("resolve %q: %w", host, err)
		}
		if len(got) == 0 {
			return nil, fmt.Errorf("resolve %q: %w", host, &net.DNSError{Err: "no addresses", Name: host, IsNotFound: true})
		}
		for _, ip := range got {
			ips = append(ips, ip.Unmap())
		}
	}
	var bad []netip.Addr
	for _, ip := range ips {
		if !l.AllowsIP(ip) {
			bad = append(bad, ip)
		}
	}
	if len(bad) > 0 {
		return nil, &BlockedError{Host: host, IPs: ips, Bad: bad, Allow: l.String()}
	}
	return ips, nil
}
