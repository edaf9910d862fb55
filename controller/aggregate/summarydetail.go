package aggregate

import (
	"cmp"
	"slices"

	"github.com/HdrHistogram/hdrhistogram-go"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
	"github.com/surgeload/surge/hist"
)

// setConns puts connection stats into summary stats.
func setConns(st *surgev1.Stats, c ConnStats) {
	st.ConnsOpened, st.ConnsClosed, st.ConnsOpen, st.ConnsPeakOpen = c.Opened, c.Closed, c.Open, c.PeakOpen
}

type requestKey struct{ scenario, flow, request string }

// requestStats are the whole run's stats per request (every region and
// status merged), sorted, with rates over secs.
func (r *Run) requestStats(secs float64) []*surgev1.RequestStats {
	by := map[requestKey]*statsBuilder{}
	for _, set := range r.wholeSets() {
		for _, k := range set.Keys() {
			rk := requestKey{k.Scenario, k.Flow, k.Request}
			b := by[rk]
			if b == nil {
				b = newStatsBuilder()
				by[rk] = b
			}
			b.add(k, set.Lookup(k))
		}
	}
	keys := make([]requestKey, 0, len(by))
	for k := range by {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b requestKey) int {
		return cmp.Or(cmp.Compare(a.scenario, b.scenario), cmp.Compare(a.flow, b.flow), cmp.Compare(a.request, b.request))
	})
	out := make([]*surgev1.RequestStats, 0, len(keys))
	for _, k := range keys {
		b := by[k]
		out = append(out, &surgev1.RequestStats{Scenario: k.scenario, Flow: k.flow, Request: k.request, Stats: b.stats(secs),
			Checks: hist.ChecksProto(b.checks)})
	}
	return out
}

// websocketSummaries are the whole run's WebSocket stats, every region
// merged: every step together (nil without WebSocket steps), and per step.
func (r *Run) websocketSummaries() (*surgev1.WebSocketSummary, []*surgev1.WebSocketSummary) {
	steps := r.WebSockets("")
	out := make([]*surgev1.WebSocketSummary, 0, len(steps))
	for _, st := range steps {
		out = append(out, wsSummary(st))
	}
	tot, ok := r.WebSocketTotal("")
	if !ok {
		return nil, out
	}
	return wsSummary(tot), out
}

func wsSummary(st WSStep) *surgev1.WebSocketSummary {
	return &surgev1.WebSocketSummary{
		Scenario: st.Key.Scenario, Flow: st.Key.Flow, Step: st.Key.Step,
		SessionsOpened: st.Opened, SessionsClosed: st.Closed, SessionsActive: st.Active, SessionsPeakActive: st.PeakActive,
		AbnormalCloses: st.Abnormal, ConnectFailures: st.ConnectFailures, Reconnects: st.Reconnects,
		MessagesOut: st.MessagesOut, MessagesIn: st.MessagesIn, BytesOut: st.BytesOut, BytesIn: st.BytesIn,
		RepliesMissed: st.RepliesMissed,
		ConnectUs:     summarize(st.Connect), SessionUs: summarize(st.Session), RoundTripUs: summarize(st.RoundTrip),
	}
}

// summarize is hist.Summarize, nil for a histogram without values.
func summarize(h *hdrhistogram.Histogram) *surgev1.LatencyStats {
	if h == nil || h.TotalCount() == 0 {
		return nil
	}
	return hist.Summarize(h)
}
