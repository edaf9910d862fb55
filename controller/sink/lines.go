package sink

import (
	"encoding/base64"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/influxdata/influxdb-client-go/v2/api/write"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
	"github.com/surgeload/surge/hist"
)

// Measurements and tags of the InfluxDB schema (docs/influxdb.md).
const (
	MeasurementHTTP      = "surge_http"
	MeasurementInterval  = "surge_interval"
	MeasurementElapsed   = "surge_elapsed"
	MeasurementAgent     = "surge_agent"
	MeasurementThreshold = "surge_threshold"
	MeasurementRun       = "surge_run"

	// RegionAll is the region tag of the all-regions merge.
	RegionAll = "all"
)

// ElapsedBase is the time origin of surge_elapsed points: a point at
// ElapsedBase + d is d into its run, so runs overlay by elapsed time.
var elapsedBase = time.Unix(0, 0).UTC()

// ElapsedBase returns the origin of surge_elapsed timestamps (Unix 0).
func ElapsedBase() time.Time { return elapsedBase }

// lineWriter accumulates line protocol.
type lineWriter struct {
	sb strings.Builder
	n  int
}

func (w *lineWriter) point(measurement string, tags map[string]string, fields map[string]any, ts time.Time) {
	clean := make(map[string]string, len(tags))
	for k, v := range tags {
		if v != "" { // line protocol has no empty tag values
			clean[k] = v
		}
	}
	for k, v := range fields {
		if f, ok := v.(float64); ok && (math.IsNaN(f) || math.IsInf(f, 0)) {
			delete(fields, k)
		}
	}
	write.PointToLineProtocolBuffer(write.NewPoint(measurement, clean, fields, ts), &w.sb, time.Nanosecond)
	w.n++
}

func (w *lineWriter) bytes() []byte { return []byte(w.sb.String()) }

// httpFields are a series' fields: counts, rates, latency percentiles (µs)
// and the V2-encoded latency histogram.
func httpFields(c hist.Counters, h *hdrhistogram.Histogram, secs float64) (map[string]any, error) {
	enc, err := hist.EncodeV2(h)
	if err != nil {
		return nil, err
	}
	l := hist.Summarize(h)
	return map[string]any{
		"count":  c.Requests,
		"rps":    float64(c.Requests) / secs,
		"errors": c.Failures,
		"p50":    l.GetP50(),
		"p90":    l.GetP90(),
		"p95":    l.GetP95(),
		"p99":    l.GetP99(),
		"p999":   l.GetP999(),
		"max":    l.GetMax(),
		"min":    l.GetMin(),
		"mean":   l.GetMean(),
		"hdr":    base64.StdEncoding.EncodeToString(enc),
	}, nil
}

// intervalLines encodes an interval: surge_http per series per region and
// for region=all, surge_interval (merged latency) and surge_elapsed per
// region and all, and (first emission only) the progress fields of
// surge_interval (rates) and surge_threshold.
func intervalLines(d IntervalData) ([]byte, int, error) {
	var w lineWriter
	secs := d.Run.Interval.Seconds()
	if secs <= 0 {
		secs = 1
	}
	all := hist.NewSet()
	regions := make([]string, 0, len(d.Regions)+1)
	sets := map[string]*hist.Set{}
	for region, list := range d.Regions {
		set := hist.NewSet()
		if _, err := set.MergeProto(list); err != nil {
			return nil, 0, fmt.Errorf("interval %d region %s: %w", d.Index, region, err)
		}
		all.Merge(set)
		sets[region] = set
		regions = append(regions, region)
	}
	slices.Sort(regions)
	regions = append(regions, RegionAll)
	sets[RegionAll] = all
	elapsedAt := elapsedBase.Add(time.Duration(d.Index) * d.Run.Interval)
	for _, region := range regions {
		set := sets[region]
		for _, k := range set.Keys() {
			sr := set.Lookup(k)
			fields, err := httpFields(sr.Counters, sr.Latency, secs)
			if err != nil {
				return nil, 0, err
			}
			w.point(MeasurementHTTP, map[string]string{
				"run": d.Run.ID, "plan": d.Run.PlanName, "scenario": k.Scenario, "flow": k.Flow,
				"request": k.Request, "region": region, "status": k.Status,
			}, fields, d.Start)
		}
		t := set.Total(nil)
		l := hist.Summarize(t.Latency)
		// Fields only: a first write adds the progress fields below; a
		// rewrite replaces these and keeps those (InfluxDB merges the
		// field sets of points with the same series and timestamp).
		w.point(MeasurementInterval, map[string]string{"run": d.Run.ID, "plan": d.Run.PlanName, "region": region}, map[string]any{
			"count": t.Counters.Requests, "rps": float64(t.Counters.Requests) / secs, "errors": t.Counters.Failures,
			"p50": l.GetP50(), "p90": l.GetP90(), "p95": l.GetP95(), "p99": l.GetP99(), "p999": l.GetP999(), "max": l.GetMax(),
		}, d.Start)
		w.point(MeasurementElapsed, map[string]string{"run": d.Run.ID, "plan": d.Run.PlanName, "region": region}, map[string]any{
			"count": t.Counters.Requests, "rps": float64(t.Counters.Requests) / secs, "errors": t.Counters.Failures,
			"p50": l.GetP50(), "p95": l.GetP95(), "p99": l.GetP99(), "interval": d.Index,
		}, elapsedAt)
	}
	if p := d.Progress; p != nil {
		for _, rp := range append(slices.Clone(p.GetRegions()), p.GetAll()) {
			if rp == nil {
				continue
			}
			w.point(MeasurementInterval, map[string]string{"run": d.Run.ID, "plan": d.Run.PlanName, "region": rp.GetRegion()}, map[string]any{
				"target_rps": rp.GetTargetRps(), "achieved_rps": rp.GetAchievedRps(), "arrival_rps": rp.GetArrivalRps(),
				"agents": rp.GetAgents(), "requests": rp.GetRequests(), "failures": rp.GetFailures(),
			}, d.Start)
		}
		for _, t := range p.GetThresholds() {
			ok := int64(0)
			if t.GetOk() {
				ok = 1
			}
			w.point(MeasurementThreshold, map[string]string{"run": d.Run.ID, "plan": d.Run.PlanName, "metric": t.GetMetric(), "expr": t.GetExpr()},
				map[string]any{"ok": ok, "value": t.GetValue()}, d.Start)
		}
	}
	return w.bytes(), w.n, nil
}

// agentLines encodes one agent's stats for one interval as surge_agent.
func agentLines(d AgentData) ([]byte, int) {
	var w lineWriter
	var dropped, deficit, active, scheduled, started int64
	var target float64
	for _, sc := range d.Scenarios {
		dropped += sc.GetDropped()
		deficit += sc.GetDeficit()
		active += sc.GetActiveVus()
		scheduled += sc.GetScheduled()
		started += sc.GetStarted()
		target += sc.GetTargetRate()
	}
	w.point(MeasurementAgent, map[string]string{"run": d.Run.ID, "plan": d.Run.PlanName, "agent": d.Agent, "region": d.Region}, map[string]any{
		"cpu": d.Stats.GetCpuPercent(), "rss": d.Stats.GetRssBytes(), "goroutines": d.Stats.GetGoroutines(),
		"conns_open": d.Stats.GetConnsOpen(), "dropped": dropped, "deficit": deficit, "active_vus": active,
		"scheduled": scheduled, "started": started, "target_rps": target,
	}, d.Start)
	return w.bytes(), w.n
}

// runLines encodes a run annotation (surge_run): its start, or its end with
// the verdict when sum is set.
func runLines(r RunInfo, sum *surgev1.RunSummary) ([]byte, int) {
	var w lineWriter
	tags := map[string]string{"run": r.ID, "plan": r.PlanName}
	if sum == nil {
		w.point(MeasurementRun, tags, map[string]any{
			"event": "start", "title": "start " + r.PlanName,
			"text": fmt.Sprintf("run %s of plan %s started", r.ID, r.PlanName),
		}, r.Start)
		return w.bytes(), w.n
	}
	end := time.UnixMilli(sum.GetEndedAtUnixMs())
	if sum.GetEndedAtUnixMs() == 0 {
		end = time.Now()
	}
	w.point(MeasurementRun, tags, map[string]any{
		"event": "end", "title": "end " + r.PlanName + ": " + sum.GetVerdict(),
		"text":     fmt.Sprintf("run %s %s, verdict %s, %d requests, %d failures", r.ID, sum.GetStatus(), sum.GetVerdict(), sum.GetAll().GetRequests(), sum.GetAll().GetFailures()),
		"status":   sum.GetStatus(),
		"verdict":  sum.GetVerdict(),
		"requests": sum.GetAll().GetRequests(),
		"failures": sum.GetAll().GetFailures(),
		"pass":     boolInt(sum.GetVerdict() == "pass"),
	}, end)
	return w.bytes(), w.n
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}
