// Package report renders a run's summary: the stable JSON document that
// `surge run --json` and `surge report --json` write, and the human text
// summary printed at the end of a run.
package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
)

// Summary is the stable JSON form of a run summary. Field names and meanings
// are part of surge's documented interface; add fields, never rename them.
type Summary struct {
	RunID string `json:"run_id"`
	Plan  string `json:"plan"`
	// Tags are the run's tags; {} without any.
	Tags      map[string]string `json:"tags"`
	Status    string            `json:"status"`
	Verdict   string            `json:"verdict"`
	DurationS float64           `json:"duration_s"`
	// StartedAt is RFC 3339 (UTC); empty if the run never started.
	StartedAt string `json:"started_at"`
	EndedAt   string `json:"ended_at,omitempty"`
	// Stats are the whole run's, across every region and scenario.
	Stats
	Regions   map[string]RegionStats `json:"regions"`
	Scenarios map[string]Stats       `json:"scenarios"`
	// ByRequest are per request, sorted by scenario, flow and request.
	ByRequest []RequestStats `json:"by_request"`
	// WebSocket is null for a run without WebSocket steps.
	WebSocket     *WebSockets `json:"websocket"`
	Agents        []Agent     `json:"agents"`
	Thresholds    []Threshold `json:"thresholds"`
	StartSpreadUS int64       `json:"start_spread_us"`
	Notes         []string    `json:"notes"`
	// Saturation lists each (interval, agent) whose generation was
	// saturated; empty when none was.
	Saturation []Saturation `json:"saturation"`
	// Monitors are the plan's monitors, sorted by name; empty without.
	Monitors []Monitor `json:"monitors"`
	Error    string    `json:"error,omitempty"`
}

// Stats are the counters and latency of a run, a region or a scenario.
type Stats struct {
	Requests          int64   `json:"requests"`
	Failures          int64   `json:"failures"`
	RPS               float64 `json:"rps"`
	LatencyUS         Latency `json:"latency_us"`
	DroppedIterations int64   `json:"dropped_iterations"`
	Deficit           int64   `json:"deficit"`
	// Errors are failures by error name: timeout, refused, reset, tls,
	// dns, http_4xx, http_5xx, protocol, blocked, other.
	Errors map[string]int64 `json:"errors"`
	// Retries are attempts beyond the first.
	Retries int64 `json:"retries"`
	// PhasesUS are the HTTP phases with values, by name: dns, connect,
	// tls, ttfb, attempt.
	PhasesUS map[string]Latency `json:"phases_us"`
	// Connections are the scenario's, region's or run's connections.
	Connections Connections `json:"connections"`
	// SendLatenessUS is the send lateness of open-model arrivals (actual
	// send - intended send); absent without open-model scenarios.
	SendLatenessUS *Latency `json:"send_lateness_us,omitempty"`
	// ExpectedLatencyUS is the latency of expected responses only (status
	// 1xx-3xx), as k6's http_req_duration{expected_response:true}; null
	// without any.
	ExpectedLatencyUS *Latency `json:"expected_latency_us"`
	// VUsMax is the most VUs busy at an interval's end, summed over agents
	// (k6's vus_max is the allocated count; this is the busy peak).
	VUsMax int64 `json:"vus_max"`
	// ChecksPassed and ChecksFailed count the checks made on responses.
	ChecksPassed int64 `json:"checks_passed"`
	ChecksFailed int64 `json:"checks_failed"`
	// ExtractFailed counts responses an extraction found nothing in (no
	// default): each ended its iteration.
	ExtractFailed int64 `json:"extract_failed"`
}

// RegionStats are one region's Stats and how many agents ran in it.
type RegionStats struct {
	Stats
	Agents int64 `json:"agents"`
}

// Latency is a latency distribution's summary in microseconds.
type Latency struct {
	P50  int64   `json:"p50"`
	P90  int64   `json:"p90"`
	P95  int64   `json:"p95"`
	P99  int64   `json:"p99"`
	P999 int64   `json:"p999"`
	Max  int64   `json:"max"`
	Min  int64   `json:"min"`
	Mean float64 `json:"mean"`
	// Count is how many values the distribution holds.
	Count int64 `json:"count"`
}

// Agent is one agent's part in the run.
type Agent struct {
	ID            string `json:"id"`
	Region        string `json:"region"`
	Requests      int64  `json:"requests"`
	ClockOffsetUS int64  `json:"clock_offset_us"`
}

// Threshold is one threshold's final state. Value is null when the metric
// had no finite value (no data).
type Threshold struct {
	Metric string   `json:"metric"`
	Expr   string   `json:"expr"`
	OK     bool     `json:"ok"`
	Value  *float64 `json:"value"`
}

// FromProto converts a wire summary to its stable JSON form. Maps and lists
// are never nil, so they encode as {} and [] rather than null.
func FromProto(s *surgev1.RunSummary) *Summary {
	out := &Summary{
		RunID:         s.GetRunId(),
		Plan:          s.GetPlanName(),
		Tags:          make(map[string]string, len(s.GetTags())),
		Status:        s.GetStatus(),
		Verdict:       s.GetVerdict(),
		DurationS:     finite(s.GetDurationS()),
		StartedAt:     unixMs(s.GetStartedAtUnixMs()),
		EndedAt:       unixMs(s.GetEndedAtUnixMs()),
		Stats:         statsFromProto(s.GetAll()),
		Regions:       make(map[string]RegionStats),
		Scenarios:     make(map[string]Stats),
		Agents:        []Agent{},
		Thresholds:    []Threshold{},
		StartSpreadUS: s.GetStartSpreadUs(),
		Notes:         append([]string{}, s.GetNotes()...),
		Error:         s.GetError(),
		Saturation:    saturationFromProto(s.GetSaturation()),
		Monitors:      monitorsFromProto(s.GetMonitors()),
	}
	maps.Copy(out.Tags, s.GetTags())
	for name, st := range s.GetRegions() {
		out.Regions[name] = RegionStats{Stats: statsFromProto(st), Agents: s.GetRegionAgents()[name]}
	}
	for name, n := range s.GetRegionAgents() {
		if _, ok := out.Regions[name]; !ok {
			out.Regions[name] = RegionStats{Stats: statsFromProto(nil), Agents: n}
		}
	}
	for name, st := range s.GetScenarios() {
		out.Scenarios[name] = statsFromProto(st)
	}
	out.ByRequest = requestsFromProto(s.GetRequests())
	out.WebSocket = websocketsFromProto(s.GetWebsocket(), s.GetWebsocketSteps())
	for _, a := range s.GetAgents() {
		out.Agents = append(out.Agents, Agent{
			ID:            a.GetId(),
			Region:        a.GetRegion(),
			Requests:      a.GetRequests(),
			ClockOffsetUS: a.GetClockOffsetUs(),
		})
	}
	for _, t := range s.GetThresholds() {
		th := Threshold{Metric: t.GetMetric(), Expr: t.GetExpr(), OK: t.GetOk()}
		if v := t.GetValue(); !math.IsNaN(v) && !math.IsInf(v, 0) {
			th.Value = &v
		}
		out.Thresholds = append(out.Thresholds, th)
	}
	return out
}

func statsFromProto(st *surgev1.Stats) Stats {
	out := Stats{
		Requests:          st.GetRequests(),
		Failures:          st.GetFailures(),
		RPS:               finite(st.GetRps()),
		LatencyUS:         latencyFromProto(st.GetLatencyUs()),
		DroppedIterations: st.GetDroppedIterations(),
		Deficit:           st.GetDeficit(),
		Errors:            errorsFromProto(st.GetErrors()),
		Retries:           st.GetRetries(),
		PhasesUS:          phasesFromProto(st.GetPhasesUs()),
		Connections: Connections{Opened: st.GetConnsOpened(), Closed: st.GetConnsClosed(),
			Open: st.GetConnsOpen(), PeakOpen: st.GetConnsPeakOpen()},
		VUsMax:       st.GetVusMax(),
		ChecksPassed: st.GetChecksPassed(), ChecksFailed: st.GetChecksFailed(),
		ExtractFailed: st.GetExtractFailed(),
	}
	out.ExpectedLatencyUS = latencyPtr(st.GetExpectedLatencyUs())
	if l := st.GetSendLatenessUs(); l != nil {
		x := latencyFromProto(l)
		out.SendLatenessUS = &x
	}
	return out
}

// JSON encodes a run summary as surge's stable, indented JSON document
// (not protojson), ending in a newline.
func JSON(s *surgev1.RunSummary) ([]byte, error) {
	b, err := json.MarshalIndent(FromProto(s), "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode summary: %w", err)
	}
	return append(b, '\n'), nil
}

// ParseJSON decodes a document written by JSON. Unknown fields are errors,
// so a test reading a file back notices a changed format.
func ParseJSON(b []byte) (*Summary, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var s Summary
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("decode summary: %w", err)
	}
	return &s, nil
}

func unixMs(ms int64) string {
	if ms == 0 {
		return ""
	}
	return time.UnixMilli(ms).UTC().Format(time.RFC3339Nano)
}

func finite(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	return v
}

// sortedKeys are m's keys in order.
func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
