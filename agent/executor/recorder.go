package executor

import (
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
	"github.com/surgeload/surge/hist"
)

// Recorder collects one run's measurements for the current interval. It is
// safe for concurrent use: a mutex guards the current set, which Swap
// replaces at each interval boundary. Raw samples are never kept.
type Recorder struct {
	// observe, if set, sees every latency recorded (see SetObserver).
	observe func(scenario, request, status string, latencyUS int64)

	mu    sync.Mutex
	set   *hist.Set
	scen  map[string]*ScenarioRecorder
	order []string
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
	scheduled                            func(at time.Time) int64 // cumulative
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
// and scenario stats and starts a new, empty interval.
func (r *Recorder) Swap(at time.Time) (*hist.Set, []*surgev1.ScenarioStats) {
	r.mu.Lock()
	set := r.set
	r.set = hist.NewSet()
	type gaugeFn struct {
		st  *surgev1.ScenarioStats
		fn  func(time.Time) Gauges
		sch func(time.Time) int64
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
			Lateness:  hist.ToProto(sr.lateness),
		}
		sr.started, sr.completed, sr.dropped, sr.deficit, sr.scheduledCount = 0, 0, 0, 0, 0
		sr.lateness.Reset()
		fns = append(fns, gaugeFn{st: st, fn: sr.gauges, sch: sr.scheduled, sr: sr})
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
		stats = append(stats, f.st)
	}
	return set, stats
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

// Arrival records an arrival handed to a VU lateness after its intended
// time; late says whether it counts as deficit.
func (s *ScenarioRecorder) Arrival(lateness time.Duration, late bool) {
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	s.started++
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
