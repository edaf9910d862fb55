package report

import (
	surgev1 "github.com/surgeload/surge/gen/surge/v1"
	"github.com/surgeload/surge/hist"
)

// Connections are the connections of a scenario, a region or the run:
// opened and closed over the run, open at its end, and the peak open at an
// interval's end (summed over agents).
type Connections struct {
	Opened   int64 `json:"opened"`
	Closed   int64 `json:"closed"`
	Open     int64 `json:"open"`
	PeakOpen int64 `json:"peak_open"`
}

// RequestStats are one request's whole-run figures, every region and
// status merged.
type RequestStats struct {
	Scenario  string  `json:"scenario"`
	Flow      string  `json:"flow"`
	Request   string  `json:"request"`
	Requests  int64   `json:"requests"`
	Failures  int64   `json:"failures"`
	RPS       float64 `json:"rps"`
	LatencyUS Latency `json:"latency_us"`
	// ExpectedLatencyUS: expected responses only (1xx-3xx); null without.
	ExpectedLatencyUS *Latency         `json:"expected_latency_us"`
	Errors            map[string]int64 `json:"errors"`
	Retries           int64            `json:"retries"`
	// PhasesUS are the HTTP phases with values: dns, connect, tls, ttfb,
	// attempt.
	PhasesUS map[string]Latency `json:"phases_us"`
	// Checks are the request's checks by name, sorted; [] without any.
	Checks []Check `json:"checks"`
	// ExtractFailed counts its responses an extraction found nothing in.
	ExtractFailed int64 `json:"extract_failed"`
}

// Check is one check's passes and fails on a request's responses.
type Check struct {
	Name   string `json:"name"`
	Passes int64  `json:"passes"`
	Fails  int64  `json:"fails"`
}

// WebSockets is the run's WebSocket section: every step merged, and each
// step apart.
type WebSockets struct {
	WSFigures
	// Steps are per step, sorted by scenario, flow and step.
	Steps []WebSocketStep `json:"steps"`
}

// WebSocketStep is one WebSocket step's whole-run figures.
type WebSocketStep struct {
	Scenario string `json:"scenario"`
	Flow     string `json:"flow"`
	Step     string `json:"step"`
	WSFigures
}

// WSFigures are WebSocket sessions' whole-run figures, every region merged.
// A latency is null when there was no such value (no session ended, no
// reply came).
type WSFigures struct {
	// Sessions are the sessions opened (handshake succeeded), as k6's
	// ws_sessions.
	Sessions           int64    `json:"sessions"`
	SessionsClosed     int64    `json:"sessions_closed"`
	SessionsActive     int64    `json:"sessions_active"`
	SessionsPeakActive int64    `json:"sessions_peak_active"`
	AbnormalCloses     int64    `json:"abnormal_closes"`
	ConnectFailures    int64    `json:"connect_failures"`
	Reconnects         int64    `json:"reconnects"`
	MessagesOut        int64    `json:"messages_out"`
	MessagesIn         int64    `json:"messages_in"`
	BytesOut           int64    `json:"bytes_out"`
	BytesIn            int64    `json:"bytes_in"`
	RepliesMissed      int64    `json:"replies_missed"`
	ConnectUS          *Latency `json:"connect_us"`
	SessionUS          *Latency `json:"session_us"`
	RoundTripUS        *Latency `json:"round_trip_us"`
}

func latencyFromProto(l *surgev1.LatencyStats) Latency {
	return Latency{
		P50: l.GetP50(), P90: l.GetP90(), P95: l.GetP95(), P99: l.GetP99(),
		P999: l.GetP999(), Max: l.GetMax(), Min: l.GetMin(), Mean: finite(l.GetMean()), Count: l.GetCount(),
	}
}

func latencyPtr(l *surgev1.LatencyStats) *Latency {
	if l == nil {
		return nil
	}
	v := latencyFromProto(l)
	return &v
}

// errorsFromProto reads a failures map under the summary's error names:
// summaries stored before the names were settled say "4xx" and "5xx".
func errorsFromProto(m map[string]int64) map[string]int64 {
	out := make(map[string]int64, len(m))
	for k, v := range m {
		if name := hist.ErrorName(k); name != "" {
			out[name] += v
		}
	}
	return out
}

func phasesFromProto(m map[string]*surgev1.LatencyStats) map[string]Latency {
	out := make(map[string]Latency, len(m))
	for k, l := range m {
		out[k] = latencyFromProto(l)
	}
	return out
}

func requestsFromProto(list []*surgev1.RequestStats) []RequestStats {
	out := make([]RequestStats, 0, len(list))
	for _, r := range list {
		st := r.GetStats()
		out = append(out, RequestStats{
			Scenario: r.GetScenario(), Flow: r.GetFlow(), Request: r.GetRequest(),
			Requests: st.GetRequests(), Failures: st.GetFailures(), RPS: finite(st.GetRps()),
			LatencyUS: latencyFromProto(st.GetLatencyUs()), ExpectedLatencyUS: latencyPtr(st.GetExpectedLatencyUs()),
			Errors:  errorsFromProto(st.GetErrors()),
			Retries: st.GetRetries(), PhasesUS: phasesFromProto(st.GetPhasesUs()),
			Checks: checksFromProto(r.GetChecks()), ExtractFailed: st.GetExtractFailed(),
		})
	}
	return out
}

func checksFromProto(list []*surgev1.CheckStats) []Check {
	out := make([]Check, 0, len(list))
	for _, c := range list {
		out = append(out, Check{Name: c.GetName(), Passes: c.GetPasses(), Fails: c.GetFails()})
	}
	return out
}

func wsFiguresFromProto(w *surgev1.WebSocketSummary) WSFigures {
	return WSFigures{
		Sessions: w.GetSessionsOpened(), SessionsClosed: w.GetSessionsClosed(),
		SessionsActive: w.GetSessionsActive(), SessionsPeakActive: w.GetSessionsPeakActive(),
		AbnormalCloses: w.GetAbnormalCloses(), ConnectFailures: w.GetConnectFailures(), Reconnects: w.GetReconnects(),
		MessagesOut: w.GetMessagesOut(), MessagesIn: w.GetMessagesIn(), BytesOut: w.GetBytesOut(), BytesIn: w.GetBytesIn(),
		RepliesMissed: w.GetRepliesMissed(),
		ConnectUS:     latencyPtr(w.GetConnectUs()), SessionUS: latencyPtr(w.GetSessionUs()), RoundTripUS: latencyPtr(w.GetRoundTripUs()),
	}
}

// websocketsFromProto is the WebSocket section, nil for a run without
// WebSocket steps.
func websocketsFromProto(total *surgev1.WebSocketSummary, steps []*surgev1.WebSocketSummary) *WebSockets {
	if total == nil && len(steps) == 0 {
		return nil
	}
	out := &WebSockets{WSFigures: wsFiguresFromProto(total), Steps: make([]WebSocketStep, 0, len(steps))}
	for _, w := range steps {
		out.Steps = append(out.Steps, WebSocketStep{Scenario: w.GetScenario(), Flow: w.GetFlow(), Step: w.GetStep(),
			WSFigures: wsFiguresFromProto(w)})
	}
	return out
}
