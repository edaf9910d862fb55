// Package cluster is surge's gossip membership: a thin layer over
// hashicorp/memberlist that publishes each node's Meta (role, id, region,
// the controller's gRPC address), turns memberlist callbacks into typed
// Events without ever blocking memberlist, and re-joins seeds periodically so
// the cluster re-forms after a partition with no manual step.
//
// Gossip only discovers and confirms; it never carries work or histograms.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// Node is this process's membership in the cluster. Create it with Join and
// release it with Close.
type Node struct {
	ml       *memberlist.Memberlist
	delegate *metaDelegate
	members  *tracker
	log      *slog.Logger
	seeds    []string
	name     string
	tcpTO    time.Duration
	addr     string // advertised gossip host:port

	metaMu sync.Mutex // serialises SetMeta
	meta   Meta

	stopRejoin context.CancelFunc
	wg         sync.WaitGroup

	closeOnce sync.Once
	closeErr  error
}

// Join starts a memberlist node described by cfg and joins the seeds in
// cfg.Join. If seeds are given and none can be joined, Join fails unless
// cfg.JoinBestEffort is set; the caller may retry.
//
// ctx bounds the initial join and the lifetime of the background re-join
// loop: once ctx is cancelled seeds are no longer re-joined, though the node
// stays a member until Close.
func Join(ctx context.Context, cfg Config) (*Node, error) {
	meta := cfg.Meta
	if meta.Incarnation == "" {
		meta.Incarnation = NewIncarnation()
	}
	if err := meta.validate(); err != nil {
		return nil, err
	}
	encoded, err := meta.Encode()
	if err != nil {
		return nil, err
	}
	mc, err := cfg.memberlistConfig()
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("cluster: join: %w", err)
	}
	n := newNode(cfg, meta, encoded, mc.TCPTimeout)
	if err := n.create(mc); err != nil {
		return nil, err
	}
	if joined, err := n.joinSeeds(ctx, n.seeds); joined == 0 && len(n.seeds) > 0 {
		if err == nil {
			err = errors.New("no seed answered")
		}
		if !cfg.JoinBestEffort || ctx.Err() != nil {
			_ = n.ml.Shutdown()
			n.members.close()
			return nil, fmt.Errorf("cluster: join seeds: %w", err)
		}
		n.log.Warn("no seed answered; will keep trying", slog.Any("err", err))
	}

	interval := cfg.RejoinInterval
	if interval == 0 {
		interval = DefaultRejoinInterval
	}
	loopCtx, cancel := context.WithCancel(ctx)
	n.stopRejoin = cancel
	if interval > 0 && len(n.seeds) > 0 {
		n.wg.Go(func() { n.rejoinLoop(loopCtx, interval) })
	}
	return n, nil
}

// newNode returns the node of meta, not yet a member.
func newNode(cfg Config, meta Meta, encoded []byte, tcpTO time.Duration) *Node {
	bufSize := cfg.EventBuffer
	if bufSize <= 0 {
		bufSize = DefaultEventBuffer
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	n := &Node{
		delegate: &metaDelegate{},
		log:      logger.With(slog.String("component", "cluster"), slog.String("node", meta.Name())),
		seeds:    slices.Clone(cfg.Join),
		name:     meta.Name(),
		meta:     meta,
		tcpTO:    tcpTO,
	}
	n.members = newTracker(bufSize)
	n.delegate.meta.Store(&encoded)
	return n
}

// create starts n's memberlist with mc and learns n's own address; on
// error nothing is left running.
func (n *Node) create(mc *memberlist.Config) error {
	mc.Name = n.name
	mc.Delegate = n.delegate
	mc.Events = n.members

	// memberlist binds port 0 itself (a free TCP port, then UDP on the same
	// number, with retries when the UDP side is taken).
	ml, err := memberlist.Create(mc)
	if err != nil {
		n.members.close()
		return fmt.Errorf("cluster: create memberlist: %w", err)
	}
	n.ml = ml
	// Create reported this node's own join, with its final address.
	self, ok := n.members.get(n.name)
	if !ok {
		_ = ml.Shutdown()
		n.members.close()
		return errors.New("cluster: create memberlist: local node not reported")
	}
	n.addr = self.Addr
	return nil
}

// joinSeeds joins the given seeds one by one (skipping this node's own
// address) and returns how many answered. It stops early if ctx ends.
func (n *Node) joinSeeds(ctx context.Context, seeds []string) (int, error) {
	var errs []error
	joined, tried := 0, 0
	self := n.LocalAddr()
	for _, seed := range seeds {
		if ctx.Err() != nil {
			errs = append(errs, ctx.Err())
			break
		}
		if slices.Contains(resolveSeed(ctx, seed), self) {
			continue
		}
		tried++
		if _, err := n.ml.Join([]string{seed}); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", seed, err))
			continue
		}
		joined++
	}
	if tried == 0 && len(errs) == 0 {
		// Every seed is this node: nothing to join, nothing failed.
		return len(seeds), nil
	}
	return joined, errors.Join(errs...)
}

// rejoinLoop re-joins, every interval, each seed whose address is not a live
// member. memberlist never does this by itself, so without it two halves of
// a partition that declared each other dead would stay apart.
func (n *Node) rejoinLoop(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		live := make(map[string]bool)
		for _, m := range n.members.list() {
			if m.Name != n.name {
				live[m.Addr] = true
			}
		}
		var missing []string
		for _, seed := range n.seeds {
			addrs := resolveSeed(ctx, seed)
			if !slices.ContainsFunc(addrs, func(a string) bool { return live[a] }) {
				missing = append(missing, seed)
			}
		}
		if len(missing) == 0 {
			continue
		}
		joined, err := n.joinSeeds(ctx, missing)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			n.log.Debug("re-join seeds", slog.Int("joined", joined), slog.Any("err", err))
		case joined > 0:
			n.log.Info("re-joined seeds", slog.Int("joined", joined))
		}
	}
}

// resolveSeed returns the host:port forms a seed may appear as in the member
// list. A host that does not resolve yields the seed itself.
func resolveSeed(ctx context.Context, seed string) []string {
	host, port, err := net.SplitHostPort(seed)
	if err != nil {
		return []string{seed}
	}
	if ip := net.ParseIP(host); ip != nil {
		if ip4 := ip.To4(); ip4 != nil {
			ip = ip4
		}
		return []string{net.JoinHostPort(ip.String(), port)}
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	ips, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err != nil || len(ips) == 0 {
		return []string{seed}
	}
	out := make([]string, 0, len(ips))
	for _, ip := range ips {
		a := ip.IP
		if a4 := a.To4(); a4 != nil {
			a = a4
		}
		out = append(out, net.JoinHostPort(a.String(), port))
	}
	return out
}

// Name is this node's memberlist name: Meta.ID + "-" + Meta.Incarnation.
func (n *Node) Name() string { return n.name }

// Meta returns the meta this node currently gossips.
func (n *Node) Meta() Meta {
	n.metaMu.Lock()
	defer n.metaMu.Unlock()
	return n.meta
}

// SetMeta changes the meta this node gossips (for example a controller's
// GRPCAddr once its listener is up) and waits, within ctx, for the update to
// be broadcast. ID and Incarnation cannot change: they make up the name.
func (n *Node) SetMeta(ctx context.Context, m Meta) error {
	n.metaMu.Lock()
	defer n.metaMu.Unlock()
	if m.ID != n.meta.ID || m.Incarnation != n.meta.Incarnation {
		return fmt.Errorf("cluster: set meta: id and incarnation cannot change (have %q, got %q)", n.meta.Name(), m.Name())
	}
	if err := m.validate(); err != nil {
		return err
	}
	b, err := m.Encode()
	if err != nil {
		return err
	}
	n.delegate.meta.Store(&b)
	n.meta = m
	timeout := n.tcpTO
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	if timeout <= 0 {
		return fmt.Errorf("cluster: set meta: %w", context.DeadlineExceeded)
	}
	if err := n.ml.UpdateNode(timeout); err != nil {
		return fmt.Errorf("cluster: set meta: %w", err)
	}
	return nil
}

// Events returns membership changes, including this node's own Joined at
// start. The channel is closed by Close. Events that arrive while the buffer
// is full are dropped (see Dropped); Members is always the current truth.
func (n *Node) Events() <-chan Event { return n.members.ch }

// Dropped returns how many events were dropped because the Events buffer was
// full.
func (n *Node) Dropped() int64 { return n.members.dropped.Load() }

// InvalidMeta returns how many membership notifications were ignored because
// the member's meta did not decode; such members are not listed.
func (n *Node) InvalidMeta() int64 { return n.members.badMeta.Load() }

// Members returns the live members (memberlist counts suspect nodes as
// live), this node included, sorted by name. Members whose meta does not
// decode are not listed (see InvalidMeta).
func (n *Node) Members() []Member { return n.members.list() }

// Controllers returns the live members whose role is controller.
func (n *Node) Controllers() []Member {
	return slices.DeleteFunc(n.Members(), func(m Member) bool { return m.Meta.Role != RoleController })
}

// LocalAddr returns the gossip host:port other nodes reach this node at (the
// advertised address; with port 0 in BindAddr, the port actually bound).
func (n *Node) LocalAddr() string { return n.addr }

// Close leaves the cluster gracefully (waiting at most a few seconds, or
// until ctx ends, for the leave to be broadcast; an unconfirmed leave is
// logged, not returned), shuts memberlist down, stops the re-join loop and
// closes Events. It waits for every goroutine it owns;
// a re-join in flight may delay it by up to the profile's TCP timeout. Close
// is safe to call more than once.
func (n *Node) Close(ctx context.Context) error {
	n.closeOnce.Do(func() {
		n.stopRejoin()
		var errs []error
		if err := ctx.Err(); err != nil {
			errs = append(errs, fmt.Errorf("cluster: leave: %w", err))
		} else {
			timeout := defaultLeaveTimeout
			if dl, ok := ctx.Deadline(); ok && time.Until(dl) < timeout {
				timeout = time.Until(dl)
			}
			// A leave that times out is not a failure: it happens when
			// the last peers leave at the same moment (memberlist then has
			// nobody left to gossip to), and otherwise probing declares
			// this node dead soon enough.
			if err := n.ml.Leave(timeout); err != nil {
				n.log.Warn("leave not confirmed", slog.Any("err", err))
			}
		}
		if err := n.ml.Shutdown(); err != nil {
			errs = append(errs, fmt.Errorf("cluster: shutdown: %w", err))
		}
		n.wg.Wait()
		n.members.close()
		n.closeErr = errors.Join(errs...)
	})
	return n.closeErr
}

// WaitForMember returns the first live member of n that satisfies pred,
// checking until ctx ends. Agents use it to find the controller:
//
//	c, err := cluster.WaitForMember(ctx, node, func(m cluster.Member) bool {
//		return m.Meta.Role == cluster.RoleController && m.Meta.GRPCAddr != ""
//	})
func WaitForMember(ctx context.Context, n *Node, pred func(Member) bool) (Member, error) {
	const poll = 50 * time.Millisecond
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		for _, m := range n.Members() {
			if pred(m) {
				return m, nil
			}
		}
		select {
		case <-ctx.Done():
			return Member{}, fmt.Errorf("cluster: wait for member: %w", ctx.Err())
		case <-t.C:
		}
	}
}
