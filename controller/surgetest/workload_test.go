package surgetest

import (
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/surgeload/surge/cmd/surge/target"
)

// concurrencyTarget answers after a fixed delay and records, for each path,
// the peak number of requests in flight per 100ms window since the first
// request.
type concurrencyTarget struct {
	delay    time.Duration
	mu       sync.Mutex
	start    time.Time
	inflight map[string]int
	peak     map[string]map[int]int // path → window → peak
	total    atomic.Int64
}

func (c *concurrencyTarget) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.total.Add(1)
	c.mu.Lock()
	now := time.Now()
	if c.start.IsZero() {
		c.start = now
	}
	p := r.URL.Path
	c.inflight[p]++
	win := int(now.Sub(c.start) / (100 * time.Millisecond))
	if c.peak[p] == nil {
		c.peak[p] = map[int]int{}
	}
	c.peak[p][win] = max(c.peak[p][win], c.inflight[p])
	c.mu.Unlock()
	tm := time.NewTimer(c.delay)
	select {
	case <-tm.C:
	case <-r.Context().Done():
	}
	tm.Stop()
	c.mu.Lock()
	c.inflight[p]--
	c.mu.Unlock()
}

// peakIn is the highest in-flight count of path in windows [from, to).
func (c *concurrencyTarget) peakIn(path string, from, to int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := 0
	for w := from; w < to; w++ {
		m = max(m, c.peak[path][w])
	}
	return m
}

// windowsOff lists where path's in-flight count in windows [from, to)
// is not want: any 100ms window above it, or any span of three windows
// whose peak is below it (a VU between two iterations is briefly out of
// flight, so one window's peak can miss it; three cannot, on a machine
// that runs).
func (c *concurrencyTarget) windowsOff(path string, from, to, want int) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var off []string
	for w := from; w < to; w++ {
		if got := c.peak[path][w]; got > want {
			off = append(off, fmt.Sprintf("window %d: %d", w, got))
		}
	}
	for w := from; w+3 <= to; w += 3 {
		if got := max(c.peak[path][w], c.peak[path][w+1], c.peak[path][w+2]); got < want {
			off = append(off, fmt.Sprintf("windows %d-%d: %d", w, w+2, got))
		}
	}
	return off
}

// Every executor against real targets across 3 agents: the arrival-rate
// executors' counts within 1% of the plan (exact with uniform arrivals),
// iteration executors' counts exact, and the VU executors hold exactly the
// planned VUs in every 300ms of each stage (a target with a fixed
// latency counts them in flight).
func TestWorkloadExecutors(t *testing.T) {
	c := Start(t, Options{
		Agents: []AgentSpec{{ID: "a1", Region: "us-east"}, {ID: "a2", Region: "us-east"}, {ID: "a3", Region: "eu-west"}},
		Target: target.Config{Latency: "1ms"},
	})
	ct := &concurrencyTarget{delay: 50 * time.Millisecond, inflight: map[string]int{}, peak: map[string]map[int]int{}}
	vuSrv := httptest.NewServer(ct)
	defer vuSrv.Close()
	url := c.TargetURL()
	planYAML := fmt.Sprintf(`name: executors
scenarios:
  ramp:
    executor: ramping-arrival-rate
    start_rate: 20
    stages: [{duration: 2s, target: 60}, {duration: 1s, target: 60}, {duration: 1s, target: 0}]
    pre_allocated_vus: 30
    requests: [{url: "%[1]s/ramp"}]
  bursty:
    executor: constant-arrival-rate
    rate: 30
    duration: 3s
    start_time: 1s
    pre_allocated_vus: 30
    arrivals: {on-off: {on: 500ms, off: 1s, factor: 2}}
    requests: [{url: "%[1]s/bursty"}]
  shared:
    executor: shared-iterations
    vus: 6
    iterations: 120
    max_duration: 20s
    requests: [{url: "%[1]s/shared"}]
  pervu:
    executor: per-vu-iterations
    vus: 5
    iterations: 7
    requests: [{url: "%[1]s/pervu"}]
  steady:
    executor: constant-vus
    vus: 7
    duration: 3s
    graceful_stop: 0s
    requests: [{url: "%[2]s/steady"}]
  steps:
    executor: ramping-vus
    stages: [{duration: 1ms, target: 9}, {duration: 1500ms, target: 9}, {duration: 1ms, target: 4}, {duration: 1500ms, target: 4}]
    graceful_ramp_down: 0s
    graceful_stop: 0s
    requests: [{url: "%[2]s/steps"}]
`, url, vuSrv.URL)
	s, _ := c.Run(t, "executors.yaml", []byte(planYAML))
	by := c.Target.Stats().ByPath
	sc := s.GetScenarios()
	t.Logf("measured: target by path %v; dropped ramp %d bursty %d; status %s verdict %s",
		by, sc["ramp"].GetDroppedIterations(), sc["bursty"].GetDroppedIterations(), s.GetStatus(), s.GetVerdict())
	// 20→60 over 2s (80) + 60 for 1s (60) + 60→0 over 1s (30) = 170.
	for _, tc := range []struct {
		path, scen string
		want       int64
	}{{"/ramp", "ramp", 170}, {"/bursty", "bursty", 90}} {
		got := by[tc.path] + sc[tc.scen].GetDroppedIterations()
		if math.Abs(float64(got-tc.want)) > 0.01*float64(tc.want) {
			t.Errorf("%s: %d sent + dropped, planned %d (±1%%)", tc.path, got, tc.want)
		}
	}
	if by["/shared"] != 120 || by["/pervu"] != 35 {
		t.Errorf("iterations: shared %d (want 120), per-vu %d (want 35)", by["/shared"], by["/pervu"])
	}
	// Windows of 100ms from the first request; skip the edges of stages.
	steady := ct.peakIn("/steady", 3, 27)
	stage1 := ct.peakIn("/steps", 3, 13)
	stage2 := ct.peakIn("/steps", 19, 28)
	t.Logf("measured: constant-vus peak in flight %d (plan 7); ramping-vus stage 1 %d (plan 9), stage 2 %d (plan 4)", steady, stage1, stage2)
	for _, st := range []struct {
		name, path    string
		from, to, vus int
	}{{"constant-vus", "/steady", 3, 27, 7}, {"ramping-vus stage 1", "/steps", 3, 13, 9}, {"ramping-vus stage 2", "/steps", 19, 28, 4}} {
		if off := ct.windowsOff(st.path, st.from, st.to, st.vus); len(off) > 0 {
			t.Errorf("%s: VUs in flight not the planned %d in windows %d-%d: %v", st.name, st.vus, st.from, st.to-1, off)
		}
	}
	if strings.Contains(fmt.Sprint(s.GetNotes()), "rejected") {
		t.Errorf("notes: %v", s.GetNotes())
	}
}
