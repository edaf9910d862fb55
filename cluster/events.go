package cluster

import (
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/memberlist"
)

// EventKind says what happened to a member.
type EventKind int

const (
	// Joined: a member appeared (or came back) alive.
	Joined EventKind = iota + 1
	// Left: a member left gracefully or was declared dead.
	Left
	// Updated: a member changed its meta.
	Updated
)

// String returns "joined", "left" or "updated".
func (k EventKind) String() string {
	switch k {
	case Joined:
		return "joined"
	case Left:
		return "left"
	case Updated:
		return "updated"
	default:
		return "unknown"
	}
}

// Event is one membership change.
type Event struct {
	Kind   EventKind
	Member Member
}

// Member states. memberlist (v0.7.0) does not expose a node's state through
// its public API (memberlist.Node.State is never filled in), so surge reports
// what it can tell: members listed by Members and carried by Joined and
// Updated events are StateAlive (memberlist lists suspect nodes as live too);
// the member in a Left event is StateLeft, whether it left gracefully or was
// declared dead.
const (
	StateAlive = "alive"
	StateLeft  = "left"
)

// Member is one node of the cluster as seen from here.
type Member struct {
	// Name is the memberlist node name: Meta.ID + "-" + Meta.Incarnation.
	Name string
	// Addr is the member's gossip address, host:port.
	Addr string
	// Meta is the member's decoded meta.
	Meta Meta
	// State is StateAlive or, in a Left event, StateLeft.
	State string
}

// toMember converts a memberlist node; it fails when the meta does not decode.
func toMember(n *memberlist.Node, state string) (Member, error) {
	meta, err := DecodeMeta(n.Meta)
	if err != nil {
		return Member{}, err
	}
	return Member{Name: n.Name, Addr: n.Address(), Meta: meta, State: state}, nil
}

// tracker is the memberlist.EventDelegate. It keeps surge's own table of
// live members and queues typed events.
//
// memberlist calls it with its node lock held and the node it passes is
// memberlist's internal state, which memberlist.Members would hand out and
// keep mutating (a data race). Copying it here, under that lock, is the only
// race-free view, so Members reads this table instead.
//
// It never blocks: an event that does not fit in the channel is dropped and
// counted; the table is always complete.
type tracker struct {
	mu      sync.Mutex
	closed  bool
	members map[string]Member
	ch      chan Event
	dropped atomic.Int64
	badMeta atomic.Int64
}

var _ memberlist.EventDelegate = (*tracker)(nil)

func newTracker(size int) *tracker {
	return &tracker{ch: make(chan Event, size), members: make(map[string]Member)}
}

// NotifyJoin implements memberlist.EventDelegate.
func (t *tracker) NotifyJoin(n *memberlist.Node) { t.record(Joined, n) }

// NotifyLeave implements memberlist.EventDelegate.
func (t *tracker) NotifyLeave(n *memberlist.Node) { t.record(Left, n) }

// NotifyUpdate implements memberlist.EventDelegate.
func (t *tracker) NotifyUpdate(n *memberlist.Node) { t.record(Updated, n) }

func (t *tracker) record(kind EventKind, n *memberlist.Node) {
	state := StateAlive
	if kind == Left {
		state = StateLeft
	}
	m, err := toMember(n, state)

	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		// memberlist timers may still fire after Shutdown.
		return
	}
	if err != nil {
		t.badMeta.Add(1)
		delete(t.members, n.Name)
		return
	}
	if kind == Left {
		delete(t.members, m.Name)
	} else {
		t.members[m.Name] = m
	}
	select {
	case t.ch <- Event{Kind: kind, Member: m}:
	default:
		t.dropped.Add(1)
	}
}

// list returns the live members sorted by name.
func (t *tracker) list() []Member {
	t.mu.Lock()
	out := make([]Member, 0, len(t.members))
	for _, m := range t.members {
		out = append(out, m)
	}
	t.mu.Unlock()
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// get returns the member named name, if live.
func (t *tracker) get(name string) (Member, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	m, ok := t.members[name]
	return m, ok
}

// close stops recording and closes the channel.
func (t *tracker) close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.closed {
		t.closed = true
		close(t.ch)
	}
}

// metaDelegate is the memberlist.Delegate: it serves the node meta and
// nothing else (no user messages, no state exchange over gossip).
type metaDelegate struct {
	meta atomic.Pointer[[]byte]
}

var _ memberlist.Delegate = (*metaDelegate)(nil)

// NodeMeta implements memberlist.Delegate.
func (d *metaDelegate) NodeMeta(limit int) []byte {
	p := d.meta.Load()
	if p == nil || len(*p) > limit {
		return nil // cannot happen: Meta.Encode checked the size.
	}
	return *p
}

// NotifyMsg implements memberlist.Delegate; surge sends no user messages.
func (d *metaDelegate) NotifyMsg([]byte) {}

// GetBroadcasts implements memberlist.Delegate.
func (d *metaDelegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }

// LocalState implements memberlist.Delegate.
func (d *metaDelegate) LocalState(join bool) []byte { return nil }

// MergeRemoteState implements memberlist.Delegate.
func (d *metaDelegate) MergeRemoteState(buf []byte, join bool) {}
