package cluster

import (
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/hashicorp/memberlist"
)

// Gossip profiles, after memberlist's DefaultLocalConfig, DefaultLANConfig and
// DefaultWANConfig.
const (
	ProfileLocal = "local"
	ProfileLAN   = "lan"
	ProfileWAN   = "wan"
)

// Defaults used when the corresponding Config field is zero.
const (
	DefaultRejoinInterval = 10 * time.Second
	DefaultEventBuffer    = 256
	defaultLeaveTimeout   = 3 * time.Second
)

// Gossip is the part of a node's Config that the agent's and the
// controller's configurations set: where it listens, whom it joins, its
// timing profile and what keeps clusters apart.
type Gossip struct {
	// Bind is the memberlist address (host:port; port 0 picks one). Empty
	// means the process does not gossip.
	Bind string
	// Join are the seeds (for an agent, usually the controller's gossip
	// address).
	Join []string
	// Profile is "local", "lan" or "wan"; empty picks one by address.
	Profile string
	// Key encrypts gossip (16, 24 or 32 bytes); Label keeps clusters apart.
	// Both must match on every node.
	Key   []byte
	Label string
}

// Node is the Config of a node with these gossip settings and meta; seeds
// that are not up yet are re-joined rather than failing the Join.
func (g Gossip) Node(meta Meta, log *slog.Logger) Config {
	return Config{
		BindAddr:       g.Bind,
		Join:           g.Join,
		JoinBestEffort: true,
		Meta:           meta,
		Profile:        g.Profile,
		SecretKey:      g.Key,
		Label:          g.Label,
		Logger:         log,
	}
}

// Config describes one node of the gossip cluster. It is plain data; Join
// turns it into a running Node.
type Config struct {
	// BindAddr is the host:port to listen on (UDP and TCP). Port 0 picks a
	// free port; Node.LocalAddr tells which.
	BindAddr string
	// AdvertiseAddr is the host or host:port other nodes should use to reach
	// this one, when it differs from the bound address (NAT, containers).
	AdvertiseAddr string
	// Join lists seed nodes as host:port.
	Join []string
	// JoinBestEffort lets Join succeed when no seed answers: the node starts
	// alone and the re-join loop keeps trying the seeds. Without it Join
	// fails if seeds were given and none could be joined.
	JoinBestEffort bool
	// Meta is what this node gossips about itself. An empty Incarnation is
	// filled with NewIncarnation().
	Meta Meta
	// Profile is "local", "lan" or "wan". Empty means "local" when the bind
	// host is loopback, "lan" otherwise.
	Profile string
	// SecretKey, if set, encrypts gossip; it must be 16, 24 or 32 bytes
	// (AES-128/192/256) and the same on every node.
	SecretKey []byte
	// Label is the cluster label; nodes with different labels ignore each
	// other, so staging agents cannot join production.
	Label string
	// RejoinInterval is how often seeds that are not live members are
	// joined again (memberlist never re-joins after a partition by itself).
	// Zero means DefaultRejoinInterval; negative disables the loop.
	RejoinInterval time.Duration
	// EventBuffer is the capacity of the Events channel. Zero means
	// DefaultEventBuffer. Events that do not fit are dropped and counted
	// (Node.Dropped); memberlist is never blocked.
	EventBuffer int
	// Logger receives memberlist's log lines and the node's own. Nil
	// discards them.
	Logger *slog.Logger

	// tune adjusts the memberlist configuration after the profile preset is
	// applied; tests use it for short timings.
	tune func(*memberlist.Config)
}

// memberlistConfig checks cfg and builds the memberlist configuration. The
// caller sets Name, Delegate and Events.
func (cfg *Config) memberlistConfig() (*memberlist.Config, error) {
	host, portStr, err := net.SplitHostPort(cfg.BindAddr)
	if err != nil {
		return nil, fmt.Errorf("cluster: bind address %q: %w", cfg.BindAddr, err)
	}
	port, err := parsePort(portStr)
	if err != nil {
		return nil, fmt.Errorf("cluster: bind address %q: %w", cfg.BindAddr, err)
	}
	if host == "" {
		host = "0.0.0.0"
	}

	mc, err := cfg.preset(host)
	if err != nil {
		return nil, err
	}
	mc.BindAddr = host
	mc.BindPort = port
	mc.AdvertiseAddr = ""
	mc.AdvertisePort = port
	if cfg.AdvertiseAddr != "" {
		if mc.AdvertiseAddr, mc.AdvertisePort, err = cfg.advertise(port); err != nil {
			return nil, err
		}
	}
	if err := checkSeeds(cfg.Join); err != nil {
		return nil, err
	}
	if len(cfg.SecretKey) > 0 {
		switch len(cfg.SecretKey) {
		case 16, 24, 32:
		default:
			return nil, fmt.Errorf("cluster: secret key is %d bytes, want 16, 24 or 32", len(cfg.SecretKey))
		}
		mc.SecretKey = append([]byte(nil), cfg.SecretKey...)
	}
	if len(cfg.Label) > memberlist.LabelMaxSize {
		return nil, fmt.Errorf("cluster: label is %d bytes, limit is %d", len(cfg.Label), memberlist.LabelMaxSize)
	}
	mc.Label = cfg.Label
	mc.Logger = newMemberlistLogger(cfg.Logger)
	mc.LogOutput = nil

	if cfg.tune != nil {
		cfg.tune(mc)
	}
	return mc, nil
}

// preset is the memberlist configuration of cfg's profile; without one,
// local on a loopback host and lan otherwise.
func (cfg *Config) preset(host string) (*memberlist.Config, error) {
	profile := cfg.Profile
	if profile == "" {
		profile = ProfileLAN
		if isLoopback(host) {
			profile = ProfileLocal
		}
	}
	switch profile {
	case ProfileLocal:
		return memberlist.DefaultLocalConfig(), nil
	case ProfileLAN:
		return memberlist.DefaultLANConfig(), nil
	case ProfileWAN:
		return memberlist.DefaultWANConfig(), nil
	}
	return nil, fmt.Errorf("cluster: unknown profile %q (want %q, %q or %q)", cfg.Profile, ProfileLocal, ProfileLAN, ProfileWAN)
}

// advertise checks AdvertiseAddr (an IP, with or without a port; no port
// or port 0 advertises the bind port) and returns its host and port.
func (cfg *Config) advertise(port int) (string, int, error) {
	ahost, aport := cfg.AdvertiseAddr, port
	if h, p, err := net.SplitHostPort(cfg.AdvertiseAddr); err == nil {
		ahost = h
		if aport, err = parsePort(p); err != nil {
			return "", 0, fmt.Errorf("cluster: advertise address %q: %w", cfg.AdvertiseAddr, err)
		}
		if aport != 0 && port == 0 {
			return "", 0, fmt.Errorf("cluster: advertise address %q: an advertised port needs a fixed bind port", cfg.AdvertiseAddr)
		}
		if aport == 0 {
			aport = port
		}
	}
	if net.ParseIP(ahost) == nil {
		return "", 0, fmt.Errorf("cluster: advertise address %q: host must be an IP address", cfg.AdvertiseAddr)
	}
	return ahost, aport, nil
}

// checkSeeds checks that every seed is host:port with a non-zero port.
func checkSeeds(join []string) error {
	for _, seed := range join {
		if _, p, err := net.SplitHostPort(seed); err != nil {
			return fmt.Errorf("cluster: seed %q: want host:port: %w", seed, err)
		} else if n, err := parsePort(p); err != nil || n == 0 {
			return fmt.Errorf("cluster: seed %q: want host:port with a non-zero port", seed)
		}
	}
	return nil
}

func parsePort(s string) (int, error) {
	p, err := strconv.ParseUint(s, 10, 16)
	if err != nil {
		return 0, fmt.Errorf("bad port %q", s)
	}
	return int(p), nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
