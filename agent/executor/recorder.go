package executor

import (
	"math"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/surgeload/surge/agent/httpclient"
	"github.com/surgeload/surge/agent/wsclient"
	surgev1 "github.com/surgeload/surge/gen/surge/v1"
	"github.com/surgeload/surge/hist"
)

// Recorder collects one run's measurements for the current interval. It is
// safe for concurrent use: a mutex guards the current set, which Swap
// replaces at each interval boundary. Raw samples are never kept.
type Recorder struct {
	// observe, if set, sees every latency recorded (see SetObserver).
	observe func(scenario, request, status string, latencyUS int64)

	mu  sync.Mutex
	set *hist.Set
	// spare is a set handed back by Recycle, cleared, for the next Swap.
	spare *hist.Set
	// enc encodes the lateness histograms at Swap.
	enc   hist.Encoder
	scen  map[string]*ScenarioRecorder
	order []string
	// ws are the WebSocket steps' stats in registration order; wsIdx
	// finds them by key. Guarded by mu.
	ws    []wsEntry
	wsIdx map[wsKey]int
	// wsEnc encodes WebSocket histograms; guarded by wsSwap.
	wsSwap sync.Mutex
	wsEnc  hist.Encoder
}

// wsKey names one WebSocket step's stats.
type wsKey struct{ scenario, flow, step string }

type wsEntry struct {
	key   wsKey
	stats *wsclient.Stats
}

// NewRecorder returns an empty recorder.
func NewRecorder() *Recorder {
	return &Recorder{set: hist.NewSet(), scen: make(map[string]*ScenarioRecorder)}
}

// SetObserver installs fn to be called with every latency recorded. Call it
// before recording starts; fn must be safe for concurrent use.
func (r *Recorder) SetObserver(fn func(scenario, request, status string, latencyUS int64)) {
	r.observe = fn
}

// Gauges are a scenario's execution state at an instant.
type Gauges struct {
	ActiveVUs, AllocatedVUs int64
	// TargetRate is the agent's planned arrival rate per second.
	TargetRate float64
}

// ScenarioRecorder records one scenario's results into its Recorder.
type ScenarioRecorder struct {
	r    *Recorder
	name string

	// Guarded by r.mu.
	started, completed, dropped, deficit int64
	scheduledCount                       int64 // counted when no DueCounter
	lastScheduled                        int64
	lateness                             *hdrhistogram.Histogram
	gauges                               func(at time.Time) Gauges
	// conns counts the scenario client's connections; lastOpened and
	// lastClosed are its counts at the last Swap.
	conns                  *httpclient.ConnStats
	lastOpened, lastClosed int64
	scheduled              func(at time.Time) int64 // cumulative
	// startedBy, if set, counts the arrivals started by intended time
	// (cumulative, see SetStarted); Arrival then does not count them.
	startedBy   func(at time.Time) int64
	lastStarted int64
}

// Scenario returns the recorder of the named scenario, creating it.
func (r *Recorder) Scenario(name string) *ScenarioRecorder {
	r.mu.Lock()
	defer r.mu.Unlock()
	sr, ok := r.scen[name]
	if !ok {
		sr = &ScenarioRecorder{r: r, name: name, lateness: hist.New()}
		r.scen[name] = sr
		r.order = append(r.order, name)
	}
	return sr
}

// Swap ends the current interval at at: it returns the interval's series
// and scenario stats and starts a new, empty interval. The set is the
// caller's; see Recycle.
func (r *Recorder) Swap(at time.Time) (*hist.Set, []*surgev1.ScenarioStats) {
	r.mu.Lock()
	set := r.set
	if r.set = r.spare; r.set == nil {
		r.set = hist.NewSet()
	}
	r.spare = nil
	type gaugeFn struct {
		st  *surgev1.ScenarioStats
		fn  func(time.Time) Gauges
		sch func(time.Time) int64
		stb func(time.Time) int64
		sr  *ScenarioRecorder
	}
	fns := make([]gaugeFn, 0, len(r.order))
	for _, name := range r.order {
		sr := r.scen[name]
		st := &surgev1.ScenarioStats{
			Scenario:  name,
			Scheduled: sr.scheduledCount,
			Started:   sr.started,
			Completed: sr.completed,
			Dropped:   sr.dropped,
			Deficit:   sr.deficit,
			Lateness:  r.enc.ToProto(sr.lateness),
		}
		if c := sr.conns; c != nil {
			opened, closed := c.Opened.Load(), c.Closed.Load()
			st.ConnsOpened, st.ConnsClosed = opened-sr.lastOpened, closed-sr.lastClosed
			st.ConnsOpen = max(opened-closed, 0)
			sr.lastOpened, sr.lastClosed = opened, closed
		}
		sr.started, sr.completed, sr.dropped, sr.deficit, sr.scheduledCount = 0, 0, 0, 0, 0
		sr.lateness.Reset()
		fns = append(fns, gaugeFn{st: st, fn: sr.gauges, sch: sr.scheduled, stb: sr.startedBy, sr: sr})
	}
	r.mu.Unlock()

	// Gauge and schedule callbacks run outside the lock: they may take
	// executor state of their own.
	stats := make([]*surgev1.ScenarioStats, 0, len(fns))
	for _, f := range fns {
		if f.fn != nil {
			g := f.fn(at)
			f.st.ActiveVus, f.st.AllocatedVus, f.st.TargetRate = g.ActiveVUs, g.AllocatedVUs, g.TargetRate
		}
		if f.sch != nil {
			cum := f.sch(at)
			r.mu.Lock()
			f.st.Scheduled += max(cum-f.sr.lastScheduled, 0)
			f.sr.lastScheduled = max(cum, f.sr.lastScheduled)
			r.mu.Unlock()
		}
		if f.stb != nil {
			cum := f.stb(at)
			r.mu.Lock()
			f.st.Started += max(cum-f.sr.lastStarted, 0)
			f.sr.lastStarted = max(cum, f.sr.lastStarted)
			r.mu.Unlock()
		}
		stats = append(stats, f.st)
	}
	return set, stats
}

// Recycle hands back a set Swap returned once the caller is done with it.
// When every series of s recorded something (the usual case: the same
// requests every interval), its histograms are cleared and a later
// interval records into them, so that intervals allocate no histograms
// (three of 184 KB per series each interval, each allocation zeroed under
// the recorder's lock by the first request of the interval, and the
// garbage collections they caused, whose assists stalled the arrival loop
// for milliseconds). A set with an empty series is dropped, so a key no
// longer recorded stays two intervals at most: a set Swap returns may hold
// empty series (no counters, no values) of keys recorded before.
func (r *Recorder) Recycle(s *hist.Set) {
	keys := s.Keys()
	for _, k := range keys {
		sr := s.Lookup(k)
		if sr.Latency == nil || sr.Service == nil || sr.Counters == (hist.Counters{}) && sr.Latency.TotalCount() == 0 {
			return
		}
	}
	for _, k := range keys {
		sr := s.Lookup(k)
		sr.Counters = hist.Counters{}
		sr.Checks = sr.Checks[:0] // its array is reused for the next checks
		for _, h := range append([]*hdrhistogram.Histogram{sr.Latency, sr.Service}, sr.Phases[:]...) {
			if h != nil {
				h.Reset()
			}
		}
	}
	r.mu.Lock()
	r.spare = s
	r.mu.Unlock()
}

// SetConnStats installs the counters of the scenario client's connections,
// which Swap reports as conns_opened, conns_closed and conns_open.
func (s *ScenarioRecorder) SetConnStats(c *httpclient.ConnStats) {
	s.r.mu.Lock()
	s.conns, s.lastOpened, s.lastClosed = c, 0, 0
	s.r.mu.Unlock()
}

// SetGauges installs the function Swap reads gauges from.
func (s *ScenarioRecorder) SetGauges(fn func(at time.Time) Gauges) {
	s.r.mu.Lock()
	s.gauges = fn
	s.r.mu.Unlock()
}

// SetScheduled installs the function giving the cumulative number of
// arrivals due by an instant; Swap reports its increase per interval.
func (s *ScenarioRecorder) SetScheduled(fn func(at time.Time) int64) {
	s.r.mu.Lock()
	s.scheduled = fn
	s.r.mu.Unlock()
}

// SetStarted installs the function giving the cumulative number of
// arrivals started with an intended time at or before an instant; Swap
// reports its increase per interval as started, so that an arrival counts
// in the interval it was due in. Arrival stops counting starts while it is
// installed; nil uninstalls it (Arrival counts again).
func (s *ScenarioRecorder) SetStarted(fn func(at time.Time) int64) {
	s.r.mu.Lock()
	if fn == nil && s.startedBy != nil {
		// Starts counted by the function and not yet reported.
		s.started += max(s.startedBy(time.Unix(0, math.MaxInt64))-s.lastStarted, 0)
	}
	s.startedBy, s.lastStarted = fn, 0
	s.r.mu.Unlock()
}

// Request records one request's result. latency is from the intended send
// (open model) or the send (closed model); service from the send.
func (s *ScenarioRecorder) Request(request, status string, latency, service time.Duration, c hist.Counters) {
	s.RequestFlow("", request, status, latency, service, c)
}

// RequestFlow is Request for a request of the named flow.
func (s *ScenarioRecorder) RequestFlow(flow, request, status string, latency, service time.Duration, c hist.Counters) {
	k := hist.Key{Scenario: s.name, Flow: flow, Request: request, Status: status}
	if s.r.observe != nil {
		s.r.observe(s.name, request, status, latency.Microseconds())
	}
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	sr := s.r.set.Get(k)
	sr.Counters.Add(c)
	_ = sr.Latency.RecordValue(hist.Clamp(latency.Microseconds()))
	_ = sr.Service.RecordValue(hist.Clamp(service.Microseconds()))
}

// Result records one HTTP request's result: latency is from the intended
// send (open model) or the send (closed model). Its phases are recorded
// when the request went through them, and, when attempts is set (the
// scenario retries), each attempt's own duration; its checks by name.
func (s *ScenarioRecorder) Result(flow, request string, latency time.Duration, res *httpclient.Result, c hist.Counters, attempts bool, checks []httpclient.CheckResult) {
	k := hist.Key{Scenario: s.name, Flow: flow, Request: request, Status: res.Status}
	if s.r.observe != nil {
		s.r.observe(s.name, request, res.Status, latency.Microseconds())
	}
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	sr := s.r.set.Get(k)
	sr.Counters.Add(c)
	for _, ch := range checks {
		if ch.OK {
			sr.AddCheck(ch.Name, 1, 0)
		} else {
			sr.AddCheck(ch.Name, 0, 1)
		}
	}
	service := res.End.Sub(res.Sent)
	_ = sr.Latency.RecordValue(hist.Clamp(latency.Microseconds()))
	_ = sr.Service.RecordValue(hist.Clamp(service.Microseconds()))
	if res.Phases&httpclient.HasDNS != 0 {
		sr.RecordPhase(hist.PhaseDNS, res.DNS.Microseconds())
	}
	if res.Phases&httpclient.HasConnect != 0 {
		sr.RecordPhase(hist.PhaseConnect, res.Connect.Microseconds())
	}
	if res.Phases&httpclient.HasTLS != 0 {
		sr.RecordPhase(hist.PhaseTLS, res.TLS.Microseconds())
	}
	if res.Phases&httpclient.HasTTFB != 0 {
		sr.RecordPhase(hist.PhaseTTFB, res.TTFB.Microseconds())
	}
	if !attempts {
		return
	}
	if len(res.Attempts) == 0 {
		sr.RecordPhase(hist.PhaseAttempt, service.Microseconds())
	}
	for _, d := range res.Attempts {
		sr.RecordPhase(hist.PhaseAttempt, d.Microseconds())
	}
}

// Arrival records an arrival handed to a VU lateness after its intended
// time; late says whether it counts as deficit.
func (s *ScenarioRecorder) Arrival(lateness time.Duration, late bool) {
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	if s.startedBy == nil {
		s.started++
	}
	if s.scheduled == nil {
		s.scheduledCount++
	}
	if late {
		s.deficit++
	}
	_ = s.lateness.RecordValue(hist.Clamp(lateness.Microseconds()))
}

// Dropped records an arrival that found no free VU: a dropped iteration,
// and deficit.
func (s *ScenarioRecorder) Dropped() {
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	s.dropped++
	s.deficit++
	if s.scheduled == nil {
		s.scheduledCount++
	}
}

// DroppedN records n iterations that could not run: an iteration
// executor's iterations left when max_duration ended it.
func (s *ScenarioRecorder) DroppedN(n int64) {
	s.r.mu.Lock()
	s.dropped += n
	s.r.mu.Unlock()
}

// Deficit adds n arrivals that were due but never sent.
func (s *ScenarioRecorder) Deficit(n int64) {
	s.r.mu.Lock()
	s.deficit += n
	s.r.mu.Unlock()
}

// Started records a closed-model iteration start.
func (s *ScenarioRecorder) Started() {
	s.r.mu.Lock()
	s.started++
	s.r.mu.Unlock()
}

// Completed records an iteration that ran to its end.
func (s *ScenarioRecorder) Completed() {
	s.r.mu.Lock()
	s.completed++
	s.r.mu.Unlock()
}

// ChecksFlow records the named check of the named flow's request that is
// not tied to one response (a WebSocket session's expect.count): counts
// only, no request and no latency.
func (s *ScenarioRecorder) ChecksFlow(flow, request, status, check string, passed, failed int64) {
	k := hist.Key{Scenario: s.name, Flow: flow, Request: request, Status: status}
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	s.r.set.Get(k).AddCheck(check, passed, failed)
}

// WebSocket returns the stats of the named flow's WebSocket step, creating
// them: every session of the step records there, and SwapWebSockets
// reports them each interval from then on.
func (s *ScenarioRecorder) WebSocket(flow, step string) *wsclient.Stats {
	k := wsKey{scenario: s.name, flow: flow, step: step}
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	if i, ok := s.r.wsIdx[k]; ok {
		return s.r.ws[i].stats
	}
	if s.r.wsIdx == nil {
		s.r.wsIdx = make(map[wsKey]int)
	}
	st := wsclient.NewStats()
	s.r.wsIdx[k] = len(s.r.ws)
	s.r.ws = append(s.r.ws, wsEntry{key: k, stats: st})
	return st
}

// SwapWebSockets ends the interval of every WebSocket step's stats: it
// returns their counters and histograms since the last call, with the
// sessions open now, one entry per step (idle ones included, so the
// sessions-active gauge is always reported), and starts new intervals.
// Call it with Swap at each interval boundary.
func (r *Recorder) SwapWebSockets() []*surgev1.WebSocketStats {
	r.mu.Lock()
	entries := r.ws[:len(r.ws):len(r.ws)]
	r.mu.Unlock()
	if len(entries) == 0 {
		return nil
	}
	r.wsSwap.Lock()
	defer r.wsSwap.Unlock()
	out := make([]*surgev1.WebSocketStats, len(entries))
	for i, e := range entries {
		st := e.stats.Swap(&r.wsEnc)
		st.Scenario, st.Flow, st.Step = e.key.scenario, e.key.flow, e.key.step
		out[i] = st
	}
	return out
}
