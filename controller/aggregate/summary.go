package aggregate

import (
	"fmt"
	"maps"
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
	// matched); such a threshold counts as ok and never aborts.
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
		}
	}
	return true
}

// merged sums the whole-run series matching tags: counters and latency.
func (r *Run) merged(tags map[string]string) (hist.Counters, *hdrhistogram.Histogram) {
	var c hist.Counters
	h := hist.New()
	for region, set := range r.whole {
		for _, k := range set.Keys() {
			if !keyMatches(tags, region, k) {
				continue
			}
			sr := set.Lookup(k)
			c.Add(sr.Counters)
			h.Merge(sr.Latency)
		}
	}
	return c, h
}

// scenarioTotals sums scenario stats matching tags (scenario and region;
// request and status do not apply and match nothing when given).
func (r *Run) scenarioTotals(tags map[string]string) scenTotals {
	var t scenTotals
	if tags["request"] != "" || tags["status"] != "" || tags["flow"] != "" {
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
			_, h := r.merged(spec.Tags)
			if h.TotalCount() == 0 {
				res.HasData = false
				break
			}
			switch spec.Agg {
			case "p":
				res.Value = float64(h.ValueAtQuantile(spec.Percentile)) / 1000
			case "med":
				res.Value = float64(h.ValueAtQuantile(50)) / 1000
			case "avg":
				res.Value = h.Mean() / 1000
			case "min":
				res.Value = float64(h.Min()) / 1000
			case "max":
				res.Value = float64(h.Max()) / 1000
			}
		case "http_req_failed":
			c, _ := r.merged(spec.Tags)
			if c.Requests == 0 {
				res.HasData = false
				break
			}
			res.Value = float64(c.Failures) / float64(c.Requests)
		case "http_reqs":
			c, _ := r.merged(spec.Tags)
			if spec.Agg == "rate" {
				if elapsed <= 0 {
					res.HasData = false
					break
				}
				res.Value = float64(c.Requests) / elapsed.Seconds()
			} else {
				res.Value = float64(c.Requests)
			}
		case "checks", "checks_failed":
			c, _ := r.merged(spec.Tags)
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
		default:
			res.HasData = false
		}
		res.OK = !res.HasData || spec.Holds(res.Value)
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
	for _, region := range slices.Sorted(maps.Keys(r.whole)) {
		rb := newStatsBuilder()
		set := r.whole[region]
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
	for name, sb := range scen {
		sum.Scenarios[name] = sb.stats(secs)
	}
	sum.Saturation = r.saturationFlags
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
	c                hist.Counters
	h                *hdrhistogram.Histogram
	errors           map[string]int64
	dropped, deficit int64
	iterations       int64
}

func newStatsBuilder() *statsBuilder {
	return &statsBuilder{h: hist.New(), errors: map[string]int64{}}
}

func (b *statsBuilder) add(k hist.Key, sr *hist.Series) {
	b.c.Add(sr.Counters)
	b.h.Merge(sr.Latency)
	if sr.Counters.Failures > 0 {
		b.errors[k.Status] += sr.Counters.Failures
	}
}

func (b *statsBuilder) stats(secs float64) *surgev1.Stats {
	st := &surgev1.Stats{
		Requests:          b.c.Requests,
		Failures:          b.c.Failures,
		LatencyUs:         hist.Summarize(b.h),
		DroppedIterations: b.dropped,
		Deficit:           b.deficit,
		ChecksPassed:      b.c.ChecksPassed,
		ChecksFailed:      b.c.ChecksFailed,
		Iterations:        b.iterations,
	}
	if secs > 0 {
		st.Rps = float64(b.c.Requests) / secs
	}
	if len(b.errors) > 0 {
		st.Errors = b.errors
	}
	return st
}
