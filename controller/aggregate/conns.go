package aggregate

import (
	"cmp"
	"fmt"
	"maps"
	"slices"

	"github.com/HdrHistogram/hdrhistogram-go"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
	"github.com/surgeload/surge/hist"
)

// DefaultMaxWebSockets bounds the WebSocket stats of one snapshot.
const DefaultMaxWebSockets = 1_000

// WSKey names one WebSocket step of a plan.
type WSKey struct {
	Scenario, Flow, Step string
}

func compareWSKeys(a, b WSKey) int {
	return cmp.Or(cmp.Compare(a.Scenario, b.Scenario), cmp.Compare(a.Flow, b.Flow), cmp.Compare(a.Step, b.Step))
}

func wsKeyOf(w *surgev1.WebSocketStats) WSKey {
	return WSKey{Scenario: w.GetScenario(), Flow: w.GetFlow(), Step: w.GetStep()}
}

// WSStats are one WebSocket step's stats merged exactly over agents (and
// intervals): counters summed, histograms merged. Active is the sessions
// open: summed over agents, each agent's latest report.
type WSStats struct {
	Opened, Closed, Active           int64
	Abnormal, ConnectFailures        int64
	Reconnects                       int64
	MessagesOut, MessagesIn          int64
	BytesOut, BytesIn, RepliesMissed int64
	Connect, Session, RoundTrip      *hdrhistogram.Histogram
}

// newWSStats returns empty stats with histograms from p (nil: new ones).
func newWSStats(p *hist.Pool) *WSStats {
	return &WSStats{Connect: p.Get(), Session: p.Get(), RoundTrip: p.Get()}
}

// release gives s's histograms to p; s must not be used afterwards.
func (s *WSStats) release(p *hist.Pool) {
	p.Put(s.Connect)
	p.Put(s.Session)
	p.Put(s.RoundTrip)
	*s = WSStats{}
}

// reset empties s, keeping its histograms.
func (s *WSStats) reset() {
	*s = WSStats{Connect: s.Connect, Session: s.Session, RoundTrip: s.RoundTrip}
	s.Connect.Reset()
	s.Session.Reset()
	s.RoundTrip.Reset()
}

// addCounters adds w's counters (not its gauge, not its histograms).
func (s *WSStats) addCounters(w *surgev1.WebSocketStats) {
	s.Opened += w.GetSessionsOpened()
	s.Closed += w.GetSessionsClosed()
	s.Abnormal += w.GetAbnormalCloses()
	s.ConnectFailures += w.GetConnectFailures()
	s.Reconnects += w.GetReconnects()
	s.MessagesOut += w.GetMessagesOut()
	s.MessagesIn += w.GetMessagesIn()
	s.BytesOut += w.GetBytesOut()
	s.BytesIn += w.GetBytesIn()
	s.RepliesMissed += w.GetRepliesMissed()
}

// add merges validated wire stats w into s; it returns the values the
// histograms dropped.
func (s *WSStats) add(m *hist.Merger, w *surgev1.WebSocketStats) (dropped int64, err error) {
	for _, x := range []struct {
		dst *hdrhistogram.Histogram
		src *surgev1.Histogram
	}{{s.Connect, w.GetConnect()}, {s.Session, w.GetSession()}, {s.RoundTrip, w.GetRoundTrip()}} {
		d, err := m.MergeProto(x.dst, x.src)
		if err != nil {
			return dropped, err
		}
		dropped += d
	}
	s.addCounters(w)
	return dropped, nil
}

// merge adds o into s, gauge included.
func (s *WSStats) merge(o *WSStats) {
	s.Opened += o.Opened
	s.Closed += o.Closed
	s.Active += o.Active
	s.Abnormal += o.Abnormal
	s.ConnectFailures += o.ConnectFailures
	s.Reconnects += o.Reconnects
	s.MessagesOut += o.MessagesOut
	s.MessagesIn += o.MessagesIn
	s.BytesOut += o.BytesOut
	s.BytesIn += o.BytesIn
	s.RepliesMissed += o.RepliesMissed
	s.Connect.Merge(o.Connect)
	s.Session.Merge(o.Session)
	s.RoundTrip.Merge(o.RoundTrip)
}

func (s *WSStats) proto(k WSKey, e *hist.Encoder) *surgev1.WebSocketStats {
	return &surgev1.WebSocketStats{
		Scenario: k.Scenario, Flow: k.Flow, Step: k.Step,
		SessionsOpened: s.Opened, SessionsClosed: s.Closed, SessionsActive: s.Active,
		AbnormalCloses: s.Abnormal, ConnectFailures: s.ConnectFailures, Reconnects: s.Reconnects,
		MessagesOut: s.MessagesOut, MessagesIn: s.MessagesIn, BytesOut: s.BytesOut, BytesIn: s.BytesIn,
		RepliesMissed: s.RepliesMissed,
		Connect:       e.ToProto(s.Connect), Session: e.ToProto(s.Session), RoundTrip: e.ToProto(s.RoundTrip),
	}
}

// scenGauge is one agent's gauges for one scenario at an interval's end.
type scenGauge struct {
	connsOpen, activeVUs, allocatedVUs int64
	targetRate                         float64
}

// gauges are one agent's gauges as of one snapshot: the latest (highest
// seq) report wins, per interval and for the run.
type gauges struct {
	seq  uint64
	scen map[string]scenGauge
	ws   map[WSKey]int64 // sessions_active
}

func gaugesOf(s *surgev1.Snapshot) *gauges {
	g := &gauges{seq: s.GetSeq(), scen: make(map[string]scenGauge, len(s.GetScenarios()))}
	for _, sc := range s.GetScenarios() {
		v := g.scen[sc.GetScenario()]
		v.connsOpen += sc.GetConnsOpen()
		v.activeVUs += sc.GetActiveVus()
		v.allocatedVUs += sc.GetAllocatedVus()
		v.targetRate += sc.GetTargetRate()
		g.scen[sc.GetScenario()] = v
	}
	if len(s.GetWebsockets()) > 0 {
		g.ws = make(map[WSKey]int64, len(s.GetWebsockets()))
		for _, w := range s.GetWebsockets() {
			g.ws[wsKeyOf(w)] += w.GetSessionsActive()
		}
	}
	return g
}

// keepLatest stores g in *dst unless *dst is from a later snapshot.
func keepLatest(dst **gauges, g *gauges) {
	if *dst == nil || (*dst).seq <= g.seq {
		*dst = g
	}
}

// scenCounters are a scenario's summed counters over agents and intervals.
type scenCounters struct {
	scheduled, started, completed, dropped, deficit int64
	connsOpened, connsClosed                        int64
}

func (c *scenCounters) add(sc *surgev1.ScenarioStats) {
	c.scheduled += sc.GetScheduled()
	c.started += sc.GetStarted()
	c.completed += sc.GetCompleted()
	c.dropped += sc.GetDropped()
	c.deficit += sc.GetDeficit()
	c.connsOpened += sc.GetConnsOpened()
	c.connsClosed += sc.GetConnsClosed()
}

// validateStats checks a snapshot's scenario and WebSocket stats.
func (r *Run) validateStats(s *surgev1.Snapshot) error {
	if n := len(s.GetScenarios()); n > r.cfg.MaxScenarios {
		return fmt.Errorf("%d scenario stats, at most %d", n, r.cfg.MaxScenarios)
	}
	for i, sc := range s.GetScenarios() {
		for _, v := range []int64{sc.GetScheduled(), sc.GetStarted(), sc.GetCompleted(), sc.GetDropped(), sc.GetDeficit(),
			sc.GetActiveVus(), sc.GetAllocatedVus(), sc.GetConnsOpened(), sc.GetConnsClosed(), sc.GetConnsOpen()} {
			if v < 0 {
				return fmt.Errorf("scenario stats %d (%q): negative counter", i, sc.GetScenario())
			}
		}
		if !finiteNonNeg(sc.GetTargetRate()) {
			return fmt.Errorf("scenario stats %d (%q): target rate %v", i, sc.GetScenario(), sc.GetTargetRate())
		}
		if err := hist.Validate(sc.GetLateness()); err != nil {
			return fmt.Errorf("scenario stats %d (%q) lateness: %w", i, sc.GetScenario(), err)
		}
	}
	if n := len(s.GetWebsockets()); n > r.cfg.MaxWebSockets {
		return fmt.Errorf("%d websocket stats, at most %d", n, r.cfg.MaxWebSockets)
	}
	for i, w := range s.GetWebsockets() {
		for _, v := range []int64{w.GetSessionsOpened(), w.GetSessionsClosed(), w.GetSessionsActive(), w.GetAbnormalCloses(),
			w.GetConnectFailures(), w.GetReconnects(), w.GetMessagesOut(), w.GetMessagesIn(), w.GetBytesOut(), w.GetBytesIn(),
			w.GetRepliesMissed()} {
			if v < 0 {
				return fmt.Errorf("websocket stats %d (%s/%s): negative counter", i, w.GetScenario(), w.GetStep())
			}
		}
		if w.GetAbnormalCloses() > w.GetSessionsClosed() {
			return fmt.Errorf("websocket stats %d (%s/%s): %d abnormal closes of %d sessions closed", i, w.GetScenario(), w.GetStep(),
				w.GetAbnormalCloses(), w.GetSessionsClosed())
		}
		for _, h := range []struct {
			what string
			p    *surgev1.Histogram
		}{{"connect", w.GetConnect()}, {"session", w.GetSession()}, {"round_trip", w.GetRoundTrip()}} {
			if err := hist.Validate(h.p); err != nil {
				return fmt.Errorf("websocket stats %d (%s/%s) %s: %w", i, w.GetScenario(), w.GetStep(), h.what, err)
			}
		}
	}
	if st := s.GetAgent(); st != nil && st.GetConnsOpen() < 0 {
		return fmt.Errorf("agent conns_open %d", st.GetConnsOpen())
	}
	return nil
}

// mergeWS merges a validated snapshot's WebSocket stats into per-step
// stats (counters and histograms; gauges are kept apart). New stats take
// their histograms from p (nil: new ones).
func (r *Run) mergeWS(dst map[WSKey]*WSStats, ws []*surgev1.WebSocketStats, p *hist.Pool) error {
	for _, w := range ws {
		k := wsKeyOf(w)
		st := dst[k]
		if st == nil {
			st = newWSStats(p)
			dst[k] = st
		}
		d, err := st.add(&r.merger, w)
		if err != nil {
			return err
		}
		r.droppedValues += d
	}
	return nil
}

// peakKey names a peak gauge: a scenario (or WebSocket step) in a region;
// an empty scenario or region means all of them.
type peakKey struct {
	scenario, region string
}

// wsPeakKey names a peak of sessions active: a step (every step when
// zero) in a region (every region when empty).
type wsPeakKey struct {
	ws     WSKey
	region string
}

// updatePeaks raises the run's peaks of connections open, VUs busy and
// WebSocket sessions active to interval iv's sums over agents (each agent's latest
// report in iv), per scenario and region, per scenario, per region and in
// all, after one agent's latest gauges in iv went from old (nil: none) to
// cur. The sums are kept per interval and changed by the difference, so a
// snapshot costs the same however many agents reported the interval.
func (r *Run) updatePeaks(iv *interval, region string, old, cur *gauges) {
	if iv.connSums == nil {
		iv.connSums, iv.wsSums, iv.vuSums = map[peakKey]int64{}, map[wsPeakKey]int64{}, map[peakKey]int64{}
	}
	apply := func(g *gauges, sign int64) {
		for sc, v := range g.scen {
			for _, k := range [...]peakKey{{sc, region}, {sc, ""}, {"", region}, {"", ""}} {
				iv.connSums[k] += sign * v.connsOpen
				iv.vuSums[k] += sign * v.activeVUs
			}
		}
		for k, v := range g.ws {
			for _, pk := range [...]wsPeakKey{{k, region}, {k, ""}, {WSKey{}, region}, {WSKey{}, ""}} {
				iv.wsSums[pk] += sign * v
			}
		}
	}
	if old != nil {
		apply(old, -1)
	}
	apply(cur, 1)
	for sc := range cur.scen {
		for _, k := range [...]peakKey{{sc, region}, {sc, ""}, {"", region}, {"", ""}} {
			r.peakConns[k] = max(r.peakConns[k], iv.connSums[k])
			r.peakVUs[k] = max(r.peakVUs[k], iv.vuSums[k])
		}
	}
	for k := range cur.ws {
		for _, pk := range [...]wsPeakKey{{k, region}, {k, ""}, {WSKey{}, region}, {WSKey{}, ""}} {
			r.peakWS[pk] = max(r.peakWS[pk], iv.wsSums[pk])
		}
	}
}

// scenarioProtos encodes per-scenario counters plus the gauges of the
// agents in region (all regions when empty), sorted by scenario.
func (r *Run) scenarioProtos(counters map[string]*scenCounters, agentGauges map[string]*gauges, region string) []*surgev1.ScenarioStats {
	byName := map[string]*surgev1.ScenarioStats{}
	get := func(name string) *surgev1.ScenarioStats {
		p := byName[name]
		if p == nil {
			p = &surgev1.ScenarioStats{Scenario: name}
			byName[name] = p
		}
		return p
	}
	for name, c := range counters {
		p := get(name)
		p.Scheduled, p.Started, p.Completed, p.Dropped, p.Deficit = c.scheduled, c.started, c.completed, c.dropped, c.deficit
		p.ConnsOpened, p.ConnsClosed = c.connsOpened, c.connsClosed
	}
	for id, g := range agentGauges {
		if region != "" && r.agents[id].region != region {
			continue
		}
		for name, v := range g.scen {
			p := get(name)
			p.ConnsOpen += v.connsOpen
			p.ActiveVus += v.activeVUs
			p.AllocatedVus += v.allocatedVUs
			p.TargetRate += v.targetRate
		}
	}
	out := make([]*surgev1.ScenarioStats, 0, len(byName))
	for _, name := range slices.Sorted(maps.Keys(byName)) {
		out = append(out, byName[name])
	}
	return out
}

// wsProtos encodes per-step stats plus the sessions active of the agents
// in region (all regions when empty), sorted by step.
func (r *Run) wsProtos(stats map[WSKey]*WSStats, agentGauges map[string]*gauges, region string) []*surgev1.WebSocketStats {
	active := map[WSKey]int64{}
	for id, g := range agentGauges {
		if region != "" && r.agents[id].region != region {
			continue
		}
		for k, v := range g.ws {
			active[k] += v
		}
	}
	keys := slices.SortedFunc(maps.Keys(stats), compareWSKeys)
	var e hist.Encoder
	out := make([]*surgev1.WebSocketStats, 0, len(keys))
	for _, k := range keys {
		p := stats[k].proto(k, &e)
		p.SessionsActive = active[k]
		out = append(out, p)
	}
	return out
}

// IntervalStats returns interval i's merged scenario and WebSocket stats
// per region (the caller owns the result): counters summed over agents,
// gauges (conns_open, active and allocated VUs, target rate, sessions
// active) summed over each agent's latest report for the interval. Send
// lateness is not kept per interval. ok is false when the interval is
// unknown or was released.
func (r *Run) IntervalStats(i int64) (scenarios map[string][]*surgev1.ScenarioStats, websockets map[string][]*surgev1.WebSocketStats, ok bool) {
	if i < r.releasedBelow {
		return nil, nil, false
	}
	iv := r.intervals[i]
	if iv == nil {
		return nil, nil, false
	}
	scenarios = make(map[string][]*surgev1.ScenarioStats, len(iv.scen))
	for region, counters := range iv.scen {
		scenarios[region] = r.scenarioProtos(counters, iv.gauges, region)
	}
	websockets = make(map[string][]*surgev1.WebSocketStats, len(iv.ws))
	for region, stats := range iv.ws {
		websockets[region] = r.wsProtos(stats, iv.gauges, region)
	}
	return scenarios, websockets, true
}

// WholeStats returns the whole run's scenario and WebSocket stats per
// region, for storage: counters summed over the run; gauges summed over
// each agent's latest report (the state at the run's end).
func (r *Run) WholeStats() (scenarios map[string][]*surgev1.ScenarioStats, websockets map[string][]*surgev1.WebSocketStats) {
	latest := r.latestGauges()
	byRegion := map[string]map[string]*scenCounters{}
	for k, t := range r.scen {
		m := byRegion[k.region]
		if m == nil {
			m = map[string]*scenCounters{}
			byRegion[k.region] = m
		}
		m[k.scenario] = &t.scenCounters
	}
	scenarios = make(map[string][]*surgev1.ScenarioStats, len(byRegion))
	for region, counters := range byRegion {
		scenarios[region] = r.scenarioProtos(counters, latest, region)
	}
	websockets = make(map[string][]*surgev1.WebSocketStats, len(r.wholeWS))
	for region, stats := range r.wholeWS {
		websockets[region] = r.wsProtos(stats, latest, region)
	}
	return scenarios, websockets
}

// latestGauges maps each agent that reported gauges to its latest ones.
func (r *Run) latestGauges() map[string]*gauges {
	out := make(map[string]*gauges, len(r.agents))
	for id, a := range r.agents {
		if a.latest != nil {
			out[id] = a.latest
		}
	}
	return out
}

// ConnStats are connections over the whole run for a scenario, region or
// all: opened and closed summed, open now (each agent's latest report),
// and the peak open at an interval's end (summed over agents per interval,
// over the intervals merged while they were retained).
type ConnStats struct {
	Opened, Closed, Open, PeakOpen int64
}

// Conns returns the connection stats of scenario in region; an empty
// scenario or region means all of them.
func (r *Run) Conns(scenario, region string) ConnStats {
	var c ConnStats
	for k, t := range r.scen {
		if (scenario == "" || k.scenario == scenario) && (region == "" || k.region == region) {
			c.Opened += t.connsOpened
			c.Closed += t.connsClosed
		}
	}
	for id, g := range r.latestGauges() {
		if region != "" && r.agents[id].region != region {
			continue
		}
		for sc, v := range g.scen {
			if scenario == "" || sc == scenario {
				c.Open += v.connsOpen
			}
		}
	}
	c.PeakOpen = r.peakConns[peakKey{scenario, region}]
	return c
}

// PeakVUs returns the most VUs of scenario in region busy at an interval's
// end, summed over agents; an empty scenario or region means all of them.
func (r *Run) PeakVUs(scenario, region string) int64 {
	return r.peakVUs[peakKey{scenario, region}]
}

// WSStep is one WebSocket step's whole-run stats.
type WSStep struct {
	Key WSKey
	WSStats
	// PeakActive is the peak of sessions active at an interval's end,
	// summed over agents.
	PeakActive int64
}

// WebSocketTotal returns every WebSocket step of region (all regions when
// empty) merged into one, with the peak of their sessions active together;
// false when the run has no WebSocket stats there.
func (r *Run) WebSocketTotal(region string) (WSStep, bool) {
	steps := r.WebSockets(region)
	if len(steps) == 0 {
		return WSStep{}, false
	}
	t := WSStep{WSStats: *newWSStats(nil), PeakActive: r.peakWS[wsPeakKey{WSKey{}, region}]}
	for _, st := range steps {
		t.merge(&st.WSStats)
	}
	return t, true
}

// WebSockets returns every WebSocket step's whole-run stats in region (all
// regions when empty), sorted by step.
func (r *Run) WebSockets(region string) []WSStep {
	merged := map[WSKey]*WSStats{}
	for rg, stats := range r.wholeWS {
		if region != "" && rg != region {
			continue
		}
		for k, st := range stats {
			m := merged[k]
			if m == nil {
				m = newWSStats(nil)
				merged[k] = m
			}
			m.merge(st)
		}
	}
	for id, g := range r.latestGauges() {
		if region != "" && r.agents[id].region != region {
			continue
		}
		for k, v := range g.ws {
			if m := merged[k]; m != nil {
				m.Active += v
			}
		}
	}
	out := make([]WSStep, 0, len(merged))
	for _, k := range slices.SortedFunc(maps.Keys(merged), compareWSKeys) {
		out = append(out, WSStep{Key: k, WSStats: *merged[k], PeakActive: r.peakWS[wsPeakKey{k, region}]})
	}
	return out
}
