package sink

import (
	"cmp"
	"encoding/base64"
	"fmt"
	"maps"
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
	MeasurementScenario  = "surge_scenario"
	MeasurementWS        = "surge_ws"
	MeasurementInterval  = "surge_interval"
	MeasurementElapsed   = "surge_elapsed"
	MeasurementAgent     = "surge_agent"
	MeasurementThreshold = "surge_threshold"
	MeasurementRun       = "surge_run"
	MeasurementMonitor   = "surge_monitor"

	// RegionAll is the region tag of the all-regions merge.
	RegionAll = "all"
)

// ElapsedBase is the time origin of surge_elapsed points: a point at
// ElapsedBase + d is d into its run, so runs overlay by elapsed time.
var elapsedBase = time.Unix(0, 0).UTC()

// ElapsedBase returns the origin of surge_elapsed timestamps (Unix 0).
func ElapsedBase() time.Time { return elapsedBase }

// lineWriter accumulates line protocol.
// lineWriter encodes points; runTags (the run's tags) go on every point
// beside the point's own tags.
type lineWriter struct {
	sb      strings.Builder
	n       int
	runTags map[string]string
}

func (w *lineWriter) point(measurement string, tags map[string]string, fields map[string]any, ts time.Time) {
	clean := make(map[string]string, len(tags)+len(w.runTags))
	for k, v := range w.runTags {
		clean[k] = v // plan.CheckTag keeps surge's own keys out
	}
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
// and the V2-encoded latency histogram, retries, extract_failed when
// any, and for every HTTP phase
// with values (dns, connect, tls, ttfb, attempt) its histogram fields
// prefixed with the phase's name (histFields).
func httpFields(sr *hist.Series, secs float64) (map[string]any, error) {
	c, h := sr.Counters, sr.Latency
	enc, err := hist.EncodeV2(h)
	if err != nil {
		return nil, err
	}
	l := hist.Summarize(h)
	fields := map[string]any{
		"count":   c.Requests,
		"rps":     float64(c.Requests) / secs,
		"errors":  c.Failures,
		"retries": c.Retries,
		"p50":     l.GetP50(),
		"p90":     l.GetP90(),
		"p95":     l.GetP95(),
		"p99":     l.GetP99(),
		"p999":    l.GetP999(),
		"max":     l.GetMax(),
		"min":     l.GetMin(),
		"mean":    l.GetMean(),
		"hdr":     base64.StdEncoding.EncodeToString(enc),
	}
	if c.ExtractFailed > 0 {
		fields["extract_failed"] = c.ExtractFailed
	}
	for p, ph := range sr.Phases {
		if err := histFields(fields, hist.Phase(p).String()+"_", ph); err != nil {
			return nil, err
		}
	}
	return fields, nil
}

// histFields adds h's fields with prefix: count, p50, p90, p95, p99, p999,
// max, mean (µs) and hdr (V2, base64); nothing for an empty h, so a phase
// without values has no fields in the point.
func histFields(fields map[string]any, prefix string, h *hdrhistogram.Histogram) error {
	if h == nil || h.TotalCount() == 0 {
		return nil
	}
	enc, err := hist.EncodeV2(h)
	if err != nil {
		return err
	}
	l := hist.Summarize(h)
	fields[prefix+"count"] = h.TotalCount()
	fields[prefix+"p50"] = l.GetP50()
	fields[prefix+"p90"] = l.GetP90()
	fields[prefix+"p95"] = l.GetP95()
	fields[prefix+"p99"] = l.GetP99()
	fields[prefix+"p999"] = l.GetP999()
	fields[prefix+"max"] = l.GetMax()
	fields[prefix+"mean"] = l.GetMean()
	fields[prefix+"hdr"] = base64.StdEncoding.EncodeToString(enc)
	return nil
}

// scenarioSums merges scenario stats by scenario name (counters and
// gauges summed: the regions' gauges are disjoint agents').
func scenarioSums(into map[string]*surgev1.ScenarioStats, list []*surgev1.ScenarioStats) {
	for _, sc := range list {
		t := into[sc.GetScenario()]
		if t == nil {
			t = &surgev1.ScenarioStats{Scenario: sc.GetScenario()}
			into[sc.GetScenario()] = t
		}
		t.Scheduled += sc.GetScheduled()
		t.Started += sc.GetStarted()
		t.Completed += sc.GetCompleted()
		t.Dropped += sc.GetDropped()
		t.Deficit += sc.GetDeficit()
		t.ActiveVus += sc.GetActiveVus()
		t.AllocatedVus += sc.GetAllocatedVus()
		t.TargetRate += sc.GetTargetRate()
		t.ConnsOpened += sc.GetConnsOpened()
		t.ConnsClosed += sc.GetConnsClosed()
		t.ConnsOpen += sc.GetConnsOpen()
	}
}

// wsMerged is one WebSocket step's stats merged over regions.
type wsMerged struct {
	c                           *surgev1.WebSocketStats // counters and sessions_active
	connect, session, roundTrip *hdrhistogram.Histogram
}

type wsStepKey struct{ scenario, flow, step string }

// wsSums merges WebSocket stats by step: counters and sessions active
// summed, histograms merged exactly.
func wsSums(into map[wsStepKey]*wsMerged, list []*surgev1.WebSocketStats) error {
	for _, w := range list {
		k := wsStepKey{w.GetScenario(), w.GetFlow(), w.GetStep()}
		m := into[k]
		if m == nil {
			m = &wsMerged{c: &surgev1.WebSocketStats{Scenario: k.scenario, Flow: k.flow, Step: k.step},
				connect: hist.New(), session: hist.New(), roundTrip: hist.New()}
			into[k] = m
		}
		c := m.c
		c.SessionsOpened += w.GetSessionsOpened()
		c.SessionsClosed += w.GetSessionsClosed()
		c.SessionsActive += w.GetSessionsActive()
		c.AbnormalCloses += w.GetAbnormalCloses()
		c.ConnectFailures += w.GetConnectFailures()
		c.Reconnects += w.GetReconnects()
		c.MessagesOut += w.GetMessagesOut()
		c.MessagesIn += w.GetMessagesIn()
		c.BytesOut += w.GetBytesOut()
		c.BytesIn += w.GetBytesIn()
		c.RepliesMissed += w.GetRepliesMissed()
		for _, x := range []struct {
			dst *hdrhistogram.Histogram
			src *surgev1.Histogram
		}{{m.connect, w.GetConnect()}, {m.session, w.GetSession()}, {m.roundTrip, w.GetRoundTrip()}} {
			if _, err := hist.MergeProto(x.dst, x.src); err != nil {
				return fmt.Errorf("websocket %s/%s: %w", k.scenario, k.step, err)
			}
		}
	}
	return nil
}

// statsLines writes surge_scenario and surge_ws for one interval, per
// region and for region=all, and returns the regions' connection totals
// (conns_opened, conns_closed, conns_open over every scenario) for
// surge_interval and surge_elapsed.
func statsLines(w *lineWriter, d IntervalData, regions []string, secs float64) (map[string][3]int64, error) {
	regions, allScen, allWS, err := statsRegions(d, regions)
	if err != nil {
		return nil, err
	}
	conns := map[string][3]int64{}
	for _, region := range regions {
		scen := map[string]*surgev1.ScenarioStats{}
		ws := map[wsStepKey]*wsMerged{}
		if region == RegionAll {
			scen, ws = allScen, allWS
		} else {
			scenarioSums(scen, d.Scenarios[region])
			if err := wsSums(ws, d.WebSockets[region]); err != nil {
				return nil, fmt.Errorf("interval %d region %s: %w", d.Index, region, err)
			}
		}
		conns[region] = scenarioLines(w, d, region, scen, secs)
		if err := wsLines(w, d, region, ws, secs); err != nil {
			return nil, err
		}
	}
	return conns, nil
}

// statsRegions returns regions plus those with scenario or WebSocket stats
// but no series, and the stats of every region summed (for region=all).
func statsRegions(d IntervalData, regions []string) ([]string, map[string]*surgev1.ScenarioStats, map[wsStepKey]*wsMerged, error) {
	regions = slices.Clone(regions)
	allScen := map[string]*surgev1.ScenarioStats{}
	allWS := map[wsStepKey]*wsMerged{}
	for _, region := range regions {
		if region == RegionAll {
			continue
		}
		scenarioSums(allScen, d.Scenarios[region])
		if err := wsSums(allWS, d.WebSockets[region]); err != nil {
			return nil, nil, nil, fmt.Errorf("interval %d region %s: %w", d.Index, region, err)
		}
	}
	for _, region := range slices.Sorted(maps.Keys(d.Scenarios)) {
		if !slices.Contains(regions, region) {
			scenarioSums(allScen, d.Scenarios[region])
			regions = append(regions, region)
		}
	}
	for _, region := range slices.Sorted(maps.Keys(d.WebSockets)) {
		if !slices.Contains(regions, region) {
			if err := wsSums(allWS, d.WebSockets[region]); err != nil {
				return nil, nil, nil, fmt.Errorf("interval %d region %s: %w", d.Index, region, err)
			}
			regions = append(regions, region)
		}
	}
	return regions, allScen, allWS, nil
}

// scenarioLines writes region's surge_scenario points and returns its
// connection totals (opened, closed, open).
func scenarioLines(w *lineWriter, d IntervalData, region string, scen map[string]*surgev1.ScenarioStats, secs float64) [3]int64 {
	var tot [3]int64
	for _, name := range slices.Sorted(maps.Keys(scen)) {
		sc := scen[name]
		tot[0] += sc.GetConnsOpened()
		tot[1] += sc.GetConnsClosed()
		tot[2] += sc.GetConnsOpen()
		w.point(MeasurementScenario, map[string]string{"run": d.Run.ID, "plan": d.Run.PlanName, "scenario": name, "region": region}, map[string]any{
			"conns_opened": sc.GetConnsOpened(), "conns_closed": sc.GetConnsClosed(), "conns_open": sc.GetConnsOpen(),
			"conns_opened_rps": float64(sc.GetConnsOpened()) / secs,
			"scheduled":        sc.GetScheduled(), "started": sc.GetStarted(), "completed": sc.GetCompleted(),
			"dropped": sc.GetDropped(), "deficit": sc.GetDeficit(),
			"active_vus": sc.GetActiveVus(), "allocated_vus": sc.GetAllocatedVus(), "target_rps": sc.GetTargetRate(),
		}, d.Start)
	}
	return tot
}

// wsLines writes region's surge_ws points, one per WebSocket step.
func wsLines(w *lineWriter, d IntervalData, region string, ws map[wsStepKey]*wsMerged, secs float64) error {
	keys := slices.SortedFunc(maps.Keys(ws), func(a, b wsStepKey) int {
		return cmp.Or(cmp.Compare(a.scenario, b.scenario), cmp.Compare(a.flow, b.flow), cmp.Compare(a.step, b.step))
	})
	for _, k := range keys {
		m := ws[k]
		c := m.c
		fields := map[string]any{
			"sessions_opened": c.GetSessionsOpened(), "sessions_closed": c.GetSessionsClosed(), "sessions_active": c.GetSessionsActive(),
			"abnormal_closes": c.GetAbnormalCloses(), "connect_failures": c.GetConnectFailures(), "reconnects": c.GetReconnects(),
			"messages_out": c.GetMessagesOut(), "messages_in": c.GetMessagesIn(),
			"messages_out_rps": float64(c.GetMessagesOut()) / secs, "messages_in_rps": float64(c.GetMessagesIn()) / secs,
			"bytes_out": c.GetBytesOut(), "bytes_in": c.GetBytesIn(), "replies_missed": c.GetRepliesMissed(),
		}
		for _, h := range []struct {
			prefix string
			h      *hdrhistogram.Histogram
		}{{"connect_", m.connect}, {"session_", m.session}, {"round_trip_", m.roundTrip}} {
			if err := histFields(fields, h.prefix, h.h); err != nil {
				return err
			}
		}
		w.point(MeasurementWS, map[string]string{"run": d.Run.ID, "plan": d.Run.PlanName, "scenario": k.scenario,
			"flow": k.flow, "step": k.step, "region": region}, fields, d.Start)
	}
	return nil
}

// intervalLines encodes an interval: surge_http per series per region and
// for region=all, surge_interval (merged latency) and surge_elapsed per
// region and all, and (first emission only) the progress fields of
// surge_interval (rates) and surge_threshold.
func intervalLines(d IntervalData) ([]byte, int, error) {
	w := lineWriter{runTags: d.Run.Tags}
	secs := d.Run.Interval.Seconds()
	if secs <= 0 {
		secs = 1
	}
	regions, sets, err := regionSets(d)
	if err != nil {
		return nil, 0, err
	}
	conns, err := statsLines(&w, d, regions, secs)
	if err != nil {
		return nil, 0, err
	}
	for _, region := range regions {
		if err := regionLines(&w, d, region, sets[region], conns[region], secs); err != nil {
			return nil, 0, err
		}
	}
	progressLines(&w, d)
	return w.bytes(), w.n, nil
}

// regionSets decodes the interval's series by region, sorted, with
// RegionAll (every region merged) last.
func regionSets(d IntervalData) ([]string, map[string]*hist.Set, error) {
	all := hist.NewSet()
	regions := make([]string, 0, len(d.Regions)+1)
	sets := map[string]*hist.Set{}
	for region, list := range d.Regions {
		set := hist.NewSet()
		if _, err := set.MergeProto(list); err != nil {
			return nil, nil, fmt.Errorf("interval %d region %s: %w", d.Index, region, err)
		}
		all.Merge(set)
		sets[region] = set
		regions = append(regions, region)
	}
	slices.Sort(regions)
	sets[RegionAll] = all
	return append(regions, RegionAll), sets, nil
}

// regionLines writes region's surge_http points, one per series, and its
// surge_interval and surge_elapsed points; c are its connection totals.
func regionLines(w *lineWriter, d IntervalData, region string, set *hist.Set, c [3]int64, secs float64) error {
	for _, k := range set.Keys() {
		fields, err := httpFields(set.Lookup(k), secs)
		if err != nil {
			return err
		}
		w.point(MeasurementHTTP, map[string]string{
			"run": d.Run.ID, "plan": d.Run.PlanName, "scenario": k.Scenario, "flow": k.Flow,
			"request": k.Request, "region": region, "status": k.Status,
		}, fields, d.Start)
	}
	t := set.Total(nil)
	l := hist.Summarize(t.Latency)
	// Fields only: a first write adds the progress fields (progressLines);
	// a rewrite replaces these and keeps those (InfluxDB merges the field
	// sets of points with the same series and timestamp).
	fields := map[string]any{
		"count": t.Counters.Requests, "rps": float64(t.Counters.Requests) / secs, "errors": t.Counters.Failures,
		"p50": l.GetP50(), "p90": l.GetP90(), "p95": l.GetP95(), "p99": l.GetP99(), "p999": l.GetP999(), "max": l.GetMax(),
		"retries": t.Counters.Retries, "conns_opened": c[0], "conns_closed": c[1], "conns_open": c[2],
	}
	for p, h := range t.Phases {
		if h == nil || h.TotalCount() == 0 {
			continue
		}
		pl, name := hist.Summarize(h), hist.Phase(p).String()
		fields[name+"_count"], fields[name+"_p50"], fields[name+"_p95"] = h.TotalCount(), pl.GetP50(), pl.GetP95()
		fields[name+"_p99"], fields[name+"_max"] = pl.GetP99(), pl.GetMax()
	}
	w.point(MeasurementInterval, map[string]string{"run": d.Run.ID, "plan": d.Run.PlanName, "region": region}, fields, d.Start)
	w.point(MeasurementElapsed, map[string]string{"run": d.Run.ID, "plan": d.Run.PlanName, "region": region}, map[string]any{
		"count": t.Counters.Requests, "rps": float64(t.Counters.Requests) / secs, "errors": t.Counters.Failures,
		"p50": l.GetP50(), "p95": l.GetP95(), "p99": l.GetP99(), "interval": d.Index,
		"retries": t.Counters.Retries, "conns_opened": c[0], "conns_open": c[2],
	}, elapsedBase.Add(time.Duration(d.Index)*d.Run.Interval))
	return nil
}

// progressLines writes, on an interval's first emission, the progress
// fields of surge_interval (rates) per region and all, and surge_threshold.
func progressLines(w *lineWriter, d IntervalData) {
	p := d.Progress
	if p == nil {
		return
	}
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

// agentLines encodes one agent's stats for one interval as surge_agent.
func agentLines(d AgentData) ([]byte, int) {
	w := lineWriter{runTags: d.Run.Tags}
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
	w := lineWriter{runTags: r.Tags}
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
	monitorLines(&w, r, sum)
	return w.bytes(), w.n
}

// monitorLines writes each monitor's value per interval as surge_monitor,
// stamped at the interval's start as surge_interval is. They are written
// once, with the final summary: a sample arrives after its interval was
// emitted.
func monitorLines(w *lineWriter, r RunInfo, sum *surgev1.RunSummary) {
	for _, m := range sum.GetMonitors() {
		tags := map[string]string{"run": r.ID, "plan": r.PlanName, "monitor": m.GetName()}
		for _, v := range m.GetValues() {
			w.point(MeasurementMonitor, tags, map[string]any{"value": v.GetValue(), "interval": v.GetInterval()},
				r.Start.Add(time.Duration(v.GetInterval())*r.Interval))
		}
	}
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}
