package agent

import (
	"log/slog"
	"testing"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
)

func TestOutboxResendAckAndBound(t *testing.T) {
	o := newOutbox(3, slog.New(slog.DiscardHandler))
	o.addEvent(&surgev1.RunEvent{RunId: "r", Kind: surgev1.RunEvent_KIND_ACCEPTED})
	for seq := uint64(1); seq <= 4; seq++ {
		o.addSnapshot(&surgev1.Snapshot{RunId: "r", Seq: seq, Final: seq == 4})
	}
	// Bound 3: seq 1 was dropped.
	if o.dropped["r"] != 1 {
		t.Fatalf("dropped %d, want 1", o.dropped["r"])
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
