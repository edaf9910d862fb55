package agent

import (
	"fmt"
	"log/slog"
	"sync"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
	"github.com/surgeload/surge/hist"
)

// outbox holds what the agent has to tell the controller, in order: run
// events until they were sent, and snapshots until the controller acked
// them, so they survive a broken stream and are resent on the next one.
// Snapshots are bounded per run: past the bound the two oldest never-sent
// ones are merged into one (memory stays flat while the controller is
// away), and only when nothing can merge is the oldest dropped and counted. It is safe for concurrent use.
type outbox struct {
	log    *slog.Logger
	limit  int
	notify chan struct{} // capacity 1: something to send, or closed

	mu      sync.Mutex
	items   []*outItem
	perRun  map[string]int
	dropped map[string]int64
	merged  map[string]int64
	gen     uint64
	closed  bool
}

type outItem struct {
	msg      *surgev1.AgentMessage
	run      string
	seq      uint64
	snapshot bool
	final    bool
	sentGen  uint64 // the session that sent it; 0: not sent
}

func newOutbox(limit int, log *slog.Logger) *outbox {
	return &outbox{log: log, limit: limit, notify: make(chan struct{}, 1),
		perRun: make(map[string]int), dropped: make(map[string]int64), merged: make(map[string]int64)}
}

func (o *outbox) wake() {
	select {
	case o.notify <- struct{}{}:
	default:
	}
}

func (o *outbox) addEvent(e *surgev1.RunEvent) {
	o.mu.Lock()
	o.items = append(o.items, &outItem{msg: &surgev1.AgentMessage{Msg: &surgev1.AgentMessage_RunEvent{RunEvent: e}}, run: e.GetRunId()})
	o.mu.Unlock()
	o.wake()
}

func (o *outbox) addSnapshot(s *surgev1.Snapshot) {
	o.mu.Lock()
	run := s.GetRunId()
	o.items = append(o.items, &outItem{msg: &surgev1.AgentMessage{Msg: &surgev1.AgentMessage_Snapshot{Snapshot: s}},
		run: run, seq: s.GetSeq(), snapshot: true, final: s.GetFinal()})
	o.perRun[run]++
	if o.perRun[run] > o.limit {
		o.shrink(run)
	}
	o.mu.Unlock()
	o.wake()
}

// shrink brings run back to its bound: it merges the two oldest queued
// snapshots of the run that were never sent (so the controller cannot have
// counted either: the merged one covers their seq range under the later
// seq), or, when none can merge, drops the oldest non-final one and counts
// it. Caller holds o.mu.
func (o *outbox) shrink(run string) {
	var prev *outItem
	prevIdx := -1
	for i, it := range o.items {
		if !it.snapshot || it.run != run {
			continue
		}
		if it.sentGen != 0 || it.final {
			prev, prevIdx = nil, -1
			continue
		}
		if prev != nil {
			merged, err := mergeSnapshots(prev.msg.GetSnapshot(), it.msg.GetSnapshot())
			if err == nil {
				it.msg = &surgev1.AgentMessage{Msg: &surgev1.AgentMessage_Snapshot{Snapshot: merged}}
				o.items = append(o.items[:prevIdx], o.items[prevIdx+1:]...)
				o.perRun[run]--
				o.merged[run]++
				return
			}
			o.log.Warn("could not merge queued snapshots", "run", run, "err", err)
		}
		prev, prevIdx = it, i
	}
	for i, it := range o.items {
		if it.snapshot && !it.final && it.run == run {
			o.items = append(o.items[:i], o.items[i+1:]...)
			o.perRun[run]--
			o.dropped[run]++
			o.log.Warn("snapshot buffer full: dropped the oldest unacknowledged snapshot",
				"run", run, "seq", it.seq, "limit", o.limit, "dropped_total", o.dropped[run])
			return
		}
	}
}

// counts returns how many snapshots of run were merged and dropped.
func (o *outbox) counts(run string) (merged, dropped int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.merged[run], o.dropped[run]
}

// newSession starts a session generation: everything not acked is unsent
// for it.
func (o *outbox) newSession() uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.gen++
	return o.gen
}

// unsent returns the items session gen has not sent yet, in order.
func (o *outbox) unsent(gen uint64) []*outItem {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []*outItem
	for _, it := range o.items {
		if it.sentGen != gen {
			out = append(out, it)
		}
	}
	return out
}

// sent marks it sent by session gen: events are done, snapshots wait for
// their ack.
func (o *outbox) sent(it *outItem, gen uint64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	it.sentGen = gen
	if it.snapshot {
		return
	}
	for i, x := range o.items {
		if x == it {
			o.items = append(o.items[:i], o.items[i+1:]...)
			return
		}
	}
}

// ack drops the acknowledged snapshot.
func (o *outbox) ack(run string, seq uint64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for i, it := range o.items {
		if it.snapshot && it.run == run && it.seq == seq {
			o.items = append(o.items[:i], o.items[i+1:]...)
			o.perRun[run]--
			if o.perRun[run] == 0 {
				delete(o.perRun, run)
			}
			return
		}
	}
}

// close marks the end: no more items will be added.
func (o *outbox) close() {
	o.mu.Lock()
	o.closed = true
	o.mu.Unlock()
	o.wake()
}

// drained reports that the outbox is closed and session gen sent
// everything.
func (o *outbox) drained(gen uint64) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.closed {
		return false
	}
	for _, it := range o.items {
		if it.sentGen != gen {
			return false
		}
	}
	return true
}

func (o *outbox) isClosed() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.closed
}

// wsStatsKey names one WebSocket step's stats in a snapshot.
type wsStatsKey struct{ scenario, flow, step string }

// mergeWebSocketStats merges WebSocket step stats b into a copy of a, step
// by step: counters add up and histograms merge exactly; sessions_active
// adds up when a and b describe the same instant (parts of one run), and is
// b's otherwise (b is the later snapshot). Steps only in b are appended.
// Neither a nor b is modified.
func mergeWebSocketStats(a, b []*surgev1.WebSocketStats, sameInstant bool) ([]*surgev1.WebSocketStats, error) {
	if len(a)+len(b) == 0 {
		return nil, nil
	}
	out := make([]*surgev1.WebSocketStats, 0, max(len(a), len(b)))
	idx := make(map[wsStatsKey]int, cap(out))
	for _, src := range [][]*surgev1.WebSocketStats{a, b} {
		for _, w := range src {
			k := wsStatsKey{w.GetScenario(), w.GetFlow(), w.GetStep()}
			i, ok := idx[k]
			if !ok {
				idx[k] = len(out)
				out = append(out, &surgev1.WebSocketStats{
					Scenario: k.scenario, Flow: k.flow, Step: k.step,
					SessionsOpened: w.GetSessionsOpened(), SessionsClosed: w.GetSessionsClosed(),
					SessionsActive: w.GetSessionsActive(), AbnormalCloses: w.GetAbnormalCloses(),
					ConnectFailures: w.GetConnectFailures(), Reconnects: w.GetReconnects(),
					MessagesOut: w.GetMessagesOut(), MessagesIn: w.GetMessagesIn(),
					BytesOut: w.GetBytesOut(), BytesIn: w.GetBytesIn(), RepliesMissed: w.GetRepliesMissed(),
					Connect: w.GetConnect(), Session: w.GetSession(), RoundTrip: w.GetRoundTrip(),
				})
				continue
			}
			d := out[i]
			d.SessionsOpened += w.GetSessionsOpened()
			d.SessionsClosed += w.GetSessionsClosed()
			d.AbnormalCloses += w.GetAbnormalCloses()
			d.ConnectFailures += w.GetConnectFailures()
			d.Reconnects += w.GetReconnects()
			d.MessagesOut += w.GetMessagesOut()
			d.MessagesIn += w.GetMessagesIn()
			d.BytesOut += w.GetBytesOut()
			d.BytesIn += w.GetBytesIn()
			d.RepliesMissed += w.GetRepliesMissed()
			if sameInstant {
				d.SessionsActive += w.GetSessionsActive()
			} else {
				d.SessionsActive = w.GetSessionsActive()
			}
			var err error
			if d.Connect, err = mergeHistProto(d.GetConnect(), w.GetConnect()); err != nil {
				return nil, fmt.Errorf("merge websocket stats %s/%s/%s: connect: %w", k.scenario, k.flow, k.step, err)
			}
			if d.Session, err = mergeHistProto(d.GetSession(), w.GetSession()); err != nil {
				return nil, fmt.Errorf("merge websocket stats %s/%s/%s: session: %w", k.scenario, k.flow, k.step, err)
			}
			if d.RoundTrip, err = mergeHistProto(d.GetRoundTrip(), w.GetRoundTrip()); err != nil {
				return nil, fmt.Errorf("merge websocket stats %s/%s/%s: round trip: %w", k.scenario, k.flow, k.step, err)
			}
		}
	}
	return out, nil
}

// mergeHistProto returns the exact merge of two wire histograms (either
// may be nil) as a new one; neither is modified.
func mergeHistProto(x, y *surgev1.Histogram) (*surgev1.Histogram, error) {
	if y.GetTotal() == 0 {
		return x, nil
	}
	if x.GetTotal() == 0 {
		return y, nil
	}
	h, err := hist.FromProto(x)
	if err != nil {
		return nil, err
	}
	dropped, err := hist.MergeProto(h, y)
	if err != nil {
		return nil, err
	}
	if dropped > 0 {
		return nil, fmt.Errorf("%d values out of range", dropped)
	}
	return hist.ToProto(h), nil
}

// mergeConnCounts merges the connection counters of o into dst: opened
// and closed add up; open adds up when both describe the same instant
// (parts of one run) and is o's otherwise (o is the later snapshot).
func mergeConnCounts(dst, o *surgev1.ScenarioStats, sameInstant bool) {
	dst.ConnsOpened += o.GetConnsOpened()
	dst.ConnsClosed += o.GetConnsClosed()
	if sameInstant {
		dst.ConnsOpen += o.GetConnsOpen()
	} else {
		dst.ConnsOpen = o.GetConnsOpen()
	}
}
