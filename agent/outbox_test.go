package agent

import (
	"log/slog"
	"testing"
	"time"

	"github.com/surgeload/surge/agent/executor"
	surgev1 "github.com/surgeload/surge/gen/surge/v1"
	"github.com/surgeload/surge/hist"
	"github.com/surgeload/surge/plan"
)

func TestOutboxResendAckAndBound(t *testing.T) {
	o := newOutbox(3, slog.New(slog.DiscardHandler))
	o.addEvent(&surgev1.RunEvent{RunId: "r", Kind: surgev1.RunEvent_KIND_ACCEPTED})
	for seq := uint64(1); seq <= 4; seq++ {
		o.addSnapshot(&surgev1.Snapshot{RunId: "r", Seq: seq, Final: seq == 4})
	}
	// Bound 3: seqs 1 and 2, never sent, were merged into one (seq 2,
	// covering 1..2); nothing was dropped.
	if m, d := o.counts("r"); m != 1 || d != 0 {
		t.Fatalf("merged %d dropped %d, want 1 and 0", m, d)
	}
	if first := o.items[1].msg.GetSnapshot().GetSeqFirst(); first != 1 {
		t.Fatalf("merged snapshot seq_first %d, want 1", first)
	}
	g1 := o.newSession()
	items := o.unsent(g1)
	if len(items) != 4 || items[0].snapshot || items[1].seq != 2 {
		t.Fatalf("unsent = %d items", len(items))
	}
	for _, it := range items {
		o.sent(it, g1)
	}
	if n := len(o.unsent(g1)); n != 0 {
		t.Fatalf("%d unsent after sending all", n)
	}
	o.ack("r", 3)
	// The stream broke: a new session resends the unacked snapshots only.
	g2 := o.newSession()
	var seqs []uint64
	for _, it := range o.unsent(g2) {
		seqs = append(seqs, it.seq)
	}
	if len(seqs) != 2 || seqs[0] != 2 || seqs[1] != 4 {
		t.Errorf("resent %v, want [2 4]", seqs)
	}
	if o.drained(g2) {
		t.Error("drained before close")
	}
	for _, it := range o.unsent(g2) {
		o.sent(it, g2)
	}
	o.close()
	if !o.drained(g2) {
		t.Error("not drained after close")
	}
}

// Snapshots already sent may have been counted by the controller: they are
// never merged; with nothing mergeable the oldest non-final one is dropped
// and counted.
func TestOutboxDropsOnlyWhenNothingMerges(t *testing.T) {
	o := newOutbox(2, slog.New(slog.DiscardHandler))
	o.addSnapshot(&surgev1.Snapshot{RunId: "r", Seq: 1})
	o.addSnapshot(&surgev1.Snapshot{RunId: "r", Seq: 2})
	g := o.newSession()
	for _, it := range o.unsent(g) {
		o.sent(it, g)
	}
	o.addSnapshot(&surgev1.Snapshot{RunId: "r", Seq: 3})
	if m, d := o.counts("r"); m != 0 || d != 1 {
		t.Fatalf("merged %d dropped %d, want 0 and 1", m, d)
	}
}

func TestMergeSnapshotsAddsUp(t *testing.T) {
	mk := func(seq uint64, n int64) *surgev1.Snapshot {
		set := hist.NewSet()
		sr := set.Get(hist.Key{Scenario: "s", Request: "GET /", Status: "2xx"})
		for range n {
			_ = sr.Latency.RecordValue(1000)
			_ = sr.Service.RecordValue(900)
		}
		sr.Counters.Add(hist.Counters{Requests: n})
		return &surgev1.Snapshot{RunId: "r", AgentId: "a", Seq: seq, Epoch: 1, Interval: int64(seq),
			Series: set.ToProto(), Scenarios: []*surgev1.ScenarioStats{{Scenario: "s", Started: n, Deficit: 1, TargetRate: float64(seq)}}}
	}
	m, err := mergeSnapshots(mk(4, 3), mk(5, 7))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mergeSnapshots(m, mk(3, 1)); err == nil {
		t.Fatal("merged out of order")
	}
	if m.GetSeq() != 5 || m.GetSeqFirst() != 4 || m.GetInterval() != 5 {
		t.Errorf("seq %d first %d interval %d", m.GetSeq(), m.GetSeqFirst(), m.GetInterval())
	}
	if got := m.GetSeries()[0].GetCounters().GetRequests(); got != 10 {
		t.Errorf("requests %d, want 10", got)
	}
	if got := m.GetSeries()[0].GetLatency().GetTotal(); got != 10 {
		t.Errorf("latency count %d, want 10", got)
	}
	st := m.GetScenarios()[0]
	if st.GetStarted() != 10 || st.GetDeficit() != 2 || st.GetTargetRate() != 5 {
		t.Errorf("stats %+v", st)
	}
}

func TestProgressionPacerPartitionsExactly(t *testing.T) {
	p, err := plan.Parse("p.yaml", []byte("name: p\nscenarios:\n  s:\n    executor: constant-arrival-rate\n    rate: 100\n    duration: 10s\n    requests: [{url: 'http://127.0.0.1:1/'}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	sc := p.Scenarios["s"]
	total, lost := int64(1000), int64(333)
	base := executor.NewSchedulePacer(sc, lost, total)
	first := base.DueBy(4 * time.Second) // the reshare instant
	seen := map[time.Duration]int{}
	var n int64
	for i := range int64(3) {
		p := newProgressionPacer(sc, plan.ScenarioShare{Arrivals: lost, TotalArrivals: total, ArrivalFirst: first + i, ArrivalStride: 3})
		for k := int64(0); ; k++ {
			d, stop := p.Next(k)
			if stop {
				break
			}
			if d <= 4*time.Second {
				t.Fatalf("part %d arrival %d due %v, before the reshare", i, k, d)
			}
			seen[d]++
			n++
		}
		if got := p.DueBy(10 * time.Second); got != p.count {
			t.Errorf("part %d: DueBy(end) %d, count %d", i, got, p.count)
		}
	}
	if n != lost-first || len(seen) != int(n) {
		t.Errorf("parts send %d arrivals (%d distinct), want %d", n, len(seen), lost-first)
	}
}

func TestClockEstimatorMinRTT(t *testing.T) {
	e := newClockEstimator()
	// Controller 1000ns ahead. A slow sample with asymmetric delay and a
	// fast symmetric one: the fast one wins.
	p1 := e.probe(0)
	e.reply(&surgev1.ClockProbe{Id: p1.Id, ControllerRecvNs: 1900, ControllerSendNs: 1900}, 1000) // rtt 1000
	p2 := e.probe(2000)
	e.reply(&surgev1.ClockProbe{Id: p2.Id, ControllerRecvNs: 3010, ControllerSendNs: 3010}, 2020) // rtt 20
	off, rtt, ok := e.estimate()
	if !ok || off != 1000 || rtt != 20 {
		t.Errorf("estimate = %d, %d, %v; want 1000, 20", off, rtt, ok)
	}
	e.reply(&surgev1.ClockProbe{Id: p2.Id, ControllerRecvNs: 1, ControllerSendNs: 1}, 5) // duplicate: ignored
	if off2, _, _ := e.estimate(); off2 != off {
		t.Error("duplicate reply changed the estimate")
	}
}
