package aggregate

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
	"github.com/surgeload/surge/hist"
	"github.com/surgeload/surge/plan"
)

// ThresholdResult is one threshold evaluated on the merged data.
type ThresholdResult struct {
	Spec  plan.ThresholdSpec
	Value float64
	OK    bool
	// HasData is false when the metric had no samples yet (no requests
	// matched): such a threshold fails (it held on nothing), its value is
	// NaN ("no data"), and it never aborts a run.
	HasData bool
}

// Proto converts the result for the wire.
func (t ThresholdResult) Proto() *surgev1.ThresholdResult {
	return &surgev1.ThresholdResult{
		Metric:      t.Spec.Key,
		Expr:        t.Spec.Expr,
		Ok:          t.OK,
		Value:       t.Value,
		AbortOnFail: t.Spec.AbortOnFail,
	}
}

// AbortReason is non-empty when a failed abort_on_fail threshold, past its
// delay_abort_eval, requires stopping the run at elapsed.
func (t ThresholdResult) AbortReason(elapsed time.Duration) string {
	if t.OK || !t.HasData || !t.Spec.AbortOnFail || elapsed < t.Spec.DelayAbortEval {
		return ""
	}
	return fmt.Sprintf("threshold %s: %s failed (value %g)", t.Spec.Key, t.Spec.Expr, t.Value)
}

// statusMatches matches a threshold's status tag (an HTTP status code such
// as "503") against a series status, which is a class ("5xx") or an error
// kind: the code matches its class. A tag equal to the series status (e.g.
// "timeout") matches too.
func statusMatches(tag, status string) bool {
	if tag == status {
		return true
	}
	return len(tag) == 3 && status == tag[:1]+"xx"
}

func keyMatches(tags map[string]string, region string, k hist.Key) bool {
	for tag, v := range tags {
		switch tag {
		case "scenario":
			if k.Scenario != v {
				return false
			}
		case "request":
			if k.Request != v {
				return false
			}
		case "status":
			if !statusMatches(v, k.Status) {
				return false
			}
		case "region":
			if region != v {
				return false
			}
		case "flow":
			if k.Flow != v {
				return false
			}
		case "expected_response":
			if (hist.ErrorName(k.Status) == "") != (v == "true") {
				return false
			}
		}
	}
	return true
}

// merged merges the whole-run series matching tags exactly: counters,
// latency and phases (service time is left out). The series is the Run's
// scratch, valid until the next call; a phase without values is nil or
// empty.
func (r *Run) merged(tags map[string]string) *hist.Series {
	t := r.scratch.merged
	if t == nil {
		t = &hist.Series{Latency: hist.New()}
		r.scratch.merged = t
	} else {
		t.Counters = hist.Counters{}
		t.Latency.Reset()
		for _, h := range t.Phases {
			if h != nil {
				h.Reset()
			}
		}
	}
	for region, set := range r.wholeSets() {
		for _, k := range set.Keys() {
			if !keyMatches(tags, region, k) {
				continue
			}
			sr := set.Lookup(k)
			t.Counters.Add(sr.Counters)
			t.Latency.Merge(sr.Latency)
			for p, h := range sr.Phases {
				if h == nil {
					continue
				}
				if t.Phases[p] == nil {
					t.Phases[p] = hist.New()
				}
				t.Phases[p].Merge(h)
			}
		}
	}
	return t
}

// phaseMetrics maps the threshold metrics of HTTP phases to their phase
// (k6's names where k6 has the metric).
var phaseMetrics = map[string]hist.Phase{
	"http_req_dns":             hist.PhaseDNS,
	"http_req_connecting":      hist.PhaseConnect,
	"http_req_tls_handshaking": hist.PhaseTLS,
	"http_req_waiting":         hist.PhaseTTFB,
	"http_req_attempt":         hist.PhaseAttempt,
}

// wsTotals merges the whole-run WebSocket stats matching tags: scenario,
// flow, region, and request (the step's name); a status tag matches none.
// The stats are the Run's scratch, valid until the next call.
func (r *Run) wsTotals(tags map[string]string) *WSStats {
	t := r.scratch.ws
	if t == nil {
		t = newWSStats(nil)
		r.scratch.ws = t
	} else {
		t.reset()
	}
	if tags["status"] != "" || tags["expected_response"] != "" {
		return t
	}
	for region, stats := range r.wholeWS {
		if rg, ok := tags["region"]; ok && rg != region {
			continue
		}
		for k, st := range stats {
			if sc, ok := tags["scenario"]; ok && sc != k.Scenario {
				continue
			}
			if fl, ok := tags["flow"]; ok && fl != k.Flow {
				continue
			}
			if rq, ok := tags["request"]; ok && rq != k.Step {
				continue
			}
			t.merge(st)
		}
	}
	return t
}

// durationValue reads a duration threshold's aggregation from h, in
// milliseconds; false when h has no values.
func durationValue(spec plan.ThresholdSpec, h *hdrhistogram.Histogram) (float64, bool) {
	if h == nil || h.TotalCount() == 0 {
		return 0, false
	}
	switch spec.Agg {
	case "p":
		return float64(h.ValueAtQuantile(spec.Percentile)) / 1000, true
	case "med":
		return float64(h.ValueAtQuantile(50)) / 1000, true
	case "avg":
		return h.Mean() / 1000, true
	case "min":
		return float64(h.Min()) / 1000, true
	case "max":
		return float64(h.Max()) / 1000, true
	}
	return 0, false
}

// countValue reads a counter threshold: its count, or its rate per second
// over elapsed.
func countValue(spec plan.ThresholdSpec, n int64, elapsed time.Duration) (float64, bool) {
	if spec.Agg != "rate" {
		return float64(n), true
	}
	if elapsed <= 0 {
		return 0, false
	}
	return float64(n) / elapsed.Seconds(), true
}

// scenarioTotals sums scenario stats matching tags (scenario and region;
// request and status do not apply and match nothing when given).
func (r *Run) scenarioTotals(tags map[string]string) scenTotals {
	var t scenTotals
	if tags["request"] != "" || tags["status"] != "" || tags["flow"] != "" || tags["expected_response"] != "" {
		return t
	}
	for k, v := range r.scen {
		if sc, ok := tags["scenario"]; ok && sc != k.scenario {
			continue
		}
		if rg, ok := tags["region"]; ok && rg != k.region {
			continue
		}
		t.dropped += v.dropped
		t.deficit += v.deficit
		t.completed += v.completed
	}
	return t
}

// Evaluate computes every threshold on the whole-run data merged so far.
// elapsed is the time the rates are over. Durations are milliseconds, as in
// k6.
func (r *Run) Evaluate(elapsed time.Duration) []ThresholdResult {
	out := make([]ThresholdResult, 0, len(r.cfg.Thresholds))
	for _, spec := range r.cfg.Thresholds {
		res := ThresholdResult{Spec: spec, HasData: true}
		switch spec.Metric {
		case "http_req_duration":
			res.Value, res.HasData = durationValue(spec, r.merged(spec.Tags).Latency)
		case "http_req_dns", "http_req_connecting", "http_req_tls_handshaking", "http_req_waiting", "http_req_attempt":
			res.Value, res.HasData = durationValue(spec, r.merged(spec.Tags).Phases[phaseMetrics[spec.Metric]])
		case "http_req_failed":
			c := r.merged(spec.Tags).Counters
			if c.Requests == 0 {
				res.HasData = false
				break
			}
			res.Value = float64(c.Failures) / float64(c.Requests)
		case "http_reqs":
			res.Value, res.HasData = countValue(spec, r.merged(spec.Tags).Counters.Requests, elapsed)
		case "http_req_retries":
			res.Value, res.HasData = countValue(spec, r.merged(spec.Tags).Counters.Retries, elapsed)
		case "ws_connecting":
			res.Value, res.HasData = durationValue(spec, r.wsTotals(spec.Tags).Connect)
		case "ws_session_duration":
			res.Value, res.HasData = durationValue(spec, r.wsTotals(spec.Tags).Session)
		case "ws_msg_round_trip":
			res.Value, res.HasData = durationValue(spec, r.wsTotals(spec.Tags).RoundTrip)
		case "ws_sessions":
			res.Value = float64(r.wsTotals(spec.Tags).Opened)
		case "ws_abnormal_closes":
			w := r.wsTotals(spec.Tags)
			if spec.Agg != "rate" {
				res.Value = float64(w.Abnormal)
				break
			}
			// The rate is per session opened, not per second.
			if w.Opened == 0 {
				res.HasData = false
				break
			}
			res.Value = float64(w.Abnormal) / float64(w.Opened)
		case "ws_msgs_sent":
			res.Value, res.HasData = countValue(spec, r.wsTotals(spec.Tags).MessagesOut, elapsed)
		case "ws_msgs_received":
			res.Value, res.HasData = countValue(spec, r.wsTotals(spec.Tags).MessagesIn, elapsed)
		case "ws_replies_missed":
			res.Value = float64(r.wsTotals(spec.Tags).RepliesMissed)
		case "extract_failed":
			res.Value = float64(r.merged(spec.Tags).Counters.ExtractFailed)
		case "checks", "checks_failed":
			c := r.merged(spec.Tags).Counters
			n := c.ChecksPassed + c.ChecksFailed
			switch {
			case spec.Metric == "checks_failed":
				res.Value = float64(c.ChecksFailed)
			case spec.Agg == "count":
				res.Value = float64(n)
			case n == 0:
				res.HasData = false
			default:
				res.Value = float64(c.ChecksPassed) / float64(n)
			}
		case "dropped_iterations":
			res.Value = float64(r.scenarioTotals(spec.Tags).dropped)
		case "iterations":
			res.Value = float64(r.scenarioTotals(spec.Tags).completed)
		case plan.MonitorMetric:
			res.Value, res.HasData = r.monitorValue(spec, elapsed)
		default:
			res.HasData = false
		}
		if !res.HasData {
			res.Value = math.NaN()
		}
		res.OK = res.HasData && spec.Holds(res.Value)
		out = append(out, res)
	}
	return out
}

// Summary builds the run summary's measurements: all, regions, scenarios,
// region_agents and agents (without clock offsets), with rates over
// duration. The caller fills identity, status, verdict, thresholds, times
// and notes.
func (r *Run) Summary(duration time.Duration) *surgev1.RunSummary {
	secs := duration.Seconds()
	sum := &surgev1.RunSummary{
		RunId:        r.cfg.RunID,
		DurationS:    secs,
		Regions:      map[string]*surgev1.Stats{},
		RegionAgents: map[string]int64{},
		Scenarios:    map[string]*surgev1.Stats{},
	}
	all := newStatsBuilder()
	scen := map[string]*statsBuilder{}
	whole := r.wholeSets()
	for _, region := range slices.Sorted(maps.Keys(whole)) {
		rb := newStatsBuilder()
		set := whole[region]
		for _, k := range set.Keys() {
			sr := set.Lookup(k)
			rb.add(k, sr)
			all.add(k, sr)
			sb := scen[k.Scenario]
			if sb == nil {
				sb = newStatsBuilder()
				scen[k.Scenario] = sb
			}
			sb.add(k, sr)
		}
		sum.Regions[region] = rb.stats(secs)
	}
	for k, t := range r.scen {
		sb := scen[k.scenario]
		if sb == nil {
			sb = newStatsBuilder()
			scen[k.scenario] = sb
		}
		sb.dropped += t.dropped
		sb.deficit += t.deficit
		sb.iterations += t.completed
		all.dropped += t.dropped
		all.deficit += t.deficit
		all.iterations += t.completed
		st := sum.Regions[k.region]
		if st == nil {
			st = newStatsBuilder().stats(secs)
			sum.Regions[k.region] = st
		}
		st.DroppedIterations += t.dropped
		st.Deficit += t.deficit
		st.Iterations += t.completed
	}
	sum.All = all.stats(secs)
	setConns(sum.All, r.Conns("", ""))
	sum.All.VusMax = r.PeakVUs("", "")
	for name, sb := range scen {
		sum.Scenarios[name] = sb.stats(secs)
		setConns(sum.Scenarios[name], r.Conns(name, ""))
		sum.Scenarios[name].VusMax = r.PeakVUs(name, "")
	}
	for region, st := range sum.Regions {
		setConns(st, r.Conns("", region))
		st.VusMax = r.PeakVUs("", region)
	}
	r.setLateness(sum)
	sum.Requests = r.requestStats(secs)
	sum.Websocket, sum.WebsocketSteps = r.websocketSummaries()
	sum.Saturation = r.saturationFlags
	sum.Monitors = r.monitorSummaries(duration)
	for _, id := range slices.Sorted(maps.Keys(r.agents)) {
		a := r.agents[id]
		sum.RegionAgents[a.region]++
		sum.Agents = append(sum.Agents, &surgev1.AgentSummary{
			Id:        id,
			Region:    a.region,
			Requests:  a.requests,
			Snapshots: a.snapshots,
		})
	}
	return sum
}

type statsBuilder struct {
	c hist.Counters
	h *hdrhistogram.Histogram
	// expected: the latency of expected responses (not failures).
	expected         *hdrhistogram.Histogram
	phases           [hist.NumPhases]*hdrhistogram.Histogram
	errors           map[string]int64
	dropped, deficit int64
	iterations       int64
	// checks: by name, for a request's stats.
	checks []hist.Check
}

func newStatsBuilder() *statsBuilder {
	return &statsBuilder{h: hist.New(), expected: hist.New(), errors: map[string]int64{}}
}

func (b *statsBuilder) add(k hist.Key, sr *hist.Series) {
	b.c.Add(sr.Counters)
	b.h.Merge(sr.Latency)
	b.checks = hist.AddChecks(b.checks, sr.Checks)
	if hist.ErrorName(k.Status) == "" {
		b.expected.Merge(sr.Latency)
	}
	for p, h := range sr.Phases {
		if h == nil {
			continue
		}
		if b.phases[p] == nil {
			b.phases[p] = hist.New()
		}
		b.phases[p].Merge(h)
	}
	if name := hist.ErrorName(k.Status); name != "" && sr.Counters.Failures > 0 {
		b.errors[name] += sr.Counters.Failures
	}
}

func (b *statsBuilder) stats(secs float64) *surgev1.Stats {
	st := &surgev1.Stats{
		Requests:          b.c.Requests,
		Failures:          b.c.Failures,
		LatencyUs:         hist.Summarize(b.h),
		ExpectedLatencyUs: summarize(b.expected),
		DroppedIterations: b.dropped,
		Deficit:           b.deficit,
		ChecksPassed:      b.c.ChecksPassed,
		ChecksFailed:      b.c.ChecksFailed,
		ExtractFailed:     b.c.ExtractFailed,
		Iterations:        b.iterations,
		Retries:           b.c.Retries,
	}
	for p, h := range b.phases {
		if h == nil || h.TotalCount() == 0 {
			continue
		}
		if st.PhasesUs == nil {
			st.PhasesUs = map[string]*surgev1.LatencyStats{}
		}
		st.PhasesUs[hist.Phase(p).String()] = hist.Summarize(h)
	}
	if secs > 0 {
		st.Rps = float64(b.c.Requests) / secs
	}
	if len(b.errors) > 0 {
		st.Errors = b.errors
	}
	return st
}

// setLateness puts the merged send lateness of open-model arrivals into the
// summary: per scenario, per region and for the whole run.
func (r *Run) setLateness(sum *surgev1.RunSummary) {
	all := hist.New()
	byScen := map[string]*hdrhistogram.Histogram{}
	byRegion := map[string]*hdrhistogram.Histogram{}
	for k, t := range r.scen {
		if t.lateness == nil {
			continue
		}
		all.Merge(t.lateness)
		for _, m := range []struct {
			in  map[string]*hdrhistogram.Histogram
			key string
		}{{byScen, k.scenario}, {byRegion, k.region}} {
			h := m.in[m.key]
			if h == nil {
				h = hist.New()
				m.in[m.key] = h
			}
			h.Merge(t.lateness)
		}
	}
	if all.TotalCount() == 0 {
		return
	}
	sum.All.SendLatenessUs = hist.Summarize(all)
	for name, h := range byScen {
		if st := sum.Scenarios[name]; st != nil {
			st.SendLatenessUs = hist.Summarize(h)
		}
	}
	for region, h := range byRegion {
		if st := sum.Regions[region]; st != nil {
			st.SendLatenessUs = hist.Summarize(h)
		}
	}
}
