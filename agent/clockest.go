package agent

import (
	"sync"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
)

// clockSamples is how many recent probe results the estimate draws from.
const clockSamples = 16

type clockSample struct{ offset, rtt int64 }

// clockEstimator estimates the controller's clock offset NTP-style from
// ClockProbe round trips: offset = ((t2-t1)+(t3-t4))/2 of the recent sample
// with the smallest round trip. It is safe for concurrent use.
type clockEstimator struct {
	mu      sync.Mutex
	nextID  uint64
	pending map[uint64]int64 // probe id -> t1
	samples []clockSample    // ring of the last clockSamples
	next    int
}

func newClockEstimator() *clockEstimator {
	return &clockEstimator{pending: make(map[uint64]int64)}
}

// probe returns a new probe sent at now (agent Unix ns).
func (e *clockEstimator) probe(now int64) *surgev1.ClockProbe {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.nextID++
	if len(e.pending) >= 64 { // replies lost: forget the oldest
		for id := range e.pending {
			if id+64 <= e.nextID {
				delete(e.pending, id)
			}
		}
	}
	e.pending[e.nextID] = now
	return &surgev1.ClockProbe{Id: e.nextID, AgentSendNs: now}
}

// reply adds the sample of a probe reply received at t4 (agent Unix ns).
func (e *clockEstimator) reply(p *surgev1.ClockProbe, t4 int64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	t1, ok := e.pending[p.GetId()]
	if !ok {
		return // unknown or duplicate reply
	}
	delete(e.pending, p.GetId())
	t2, t3 := p.GetControllerRecvNs(), p.GetControllerSendNs()
	rtt := (t4 - t1) - (t3 - t2)
	if rtt < 0 || t2 == 0 || t3 == 0 {
		return
	}
	s := clockSample{offset: ((t2 - t1) + (t3 - t4)) / 2, rtt: rtt}
	if len(e.samples) < clockSamples {
		e.samples = append(e.samples, s)
	} else {
		e.samples[e.next] = s
		e.next = (e.next + 1) % clockSamples
	}
}

// estimate returns the offset (controller - agent) and the round trip of
// the minimum-RTT recent sample.
func (e *clockEstimator) estimate() (offset, rtt int64, ok bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i, s := range e.samples {
		if i == 0 || s.rtt < rtt {
			offset, rtt, ok = s.offset, s.rtt, true
		}
	}
	return offset, rtt, ok
}
