package sink

import (
	"context"
	"encoding/base64"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/surgeload/surge/controller/store"
	surgev1 "github.com/surgeload/surge/gen/surge/v1"
	"github.com/surgeload/surge/hist"
	"github.com/surgeload/surge/internal/poll"
)

// phaseSeries is one series with ttfb (and, with dns, dns) values scaled
// by scale, and retries.
func phaseSeries(scale int64, dns bool) []*surgev1.Series {
	set := hist.NewSet()
	sr := set.Get(hist.Key{Scenario: "s", Request: "get", Status: "2xx"})
	for v := int64(1); v <= 40; v++ {
		_ = sr.Latency.RecordValue(v * scale)
		sr.RecordPhase(hist.PhaseTTFB, v*scale/2)
		if dns {
			sr.RecordPhase(hist.PhaseDNS, v)
		}
	}
	sr.Counters.Requests, sr.Counters.Retries = 40, scale/100
	return set.ToProto()
}

func rttProto(scale int64) *surgev1.Histogram {
	h := hist.New()
	for v := int64(1); v <= 30; v++ {
		_ = h.RecordValue(v * scale)
	}
	return hist.ToProto(h)
}

func statsInterval(i int64) IntervalData {
	return IntervalData{
		Run: testRun, Index: i, Start: testRun.Start.Add(time.Duration(i) * time.Second), EmittedAt: time.Now(),
		Regions: map[string][]*surgev1.Series{"eu": phaseSeries(100, true), "us": phaseSeries(300, false)},
		Scenarios: map[string][]*surgev1.ScenarioStats{
			"eu": {{Scenario: "s", Started: 4, ConnsOpened: 5, ConnsClosed: 2, ConnsOpen: 9}},
			"us": {{Scenario: "s", Started: 6, ConnsOpened: 7, ConnsClosed: 1, ConnsOpen: 11}, {Scenario: "t", ConnsOpen: 1}},
		},
		WebSockets: map[string][]*surgev1.WebSocketStats{
			"eu": {{Scenario: "s", Flow: "chat", Step: "ws", SessionsOpened: 3, SessionsActive: 20, MessagesOut: 10, AbnormalCloses: 0, RoundTrip: rttProto(10)}},
			"us": {{Scenario: "s", Flow: "chat", Step: "ws", SessionsOpened: 4, SessionsActive: 30, MessagesOut: 12, AbnormalCloses: 1,
				SessionsClosed: 1, RoundTrip: rttProto(70)}},
		},
	}
}

func decodeHdr(t *testing.T, field string) *hdrhistogram.Histogram {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(strings.Trim(field, `"`))
	if err != nil {
		t.Fatal(err)
	}
	h, err := hist.DecodeV2(raw)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func linesOf(t *testing.T, raw []string, measurement string) map[string]line {
	out := map[string]line{}
	for _, s := range raw {
		if strings.HasPrefix(s, measurement+",") {
			l := parseLine(t, s)
			out[l.tags["region"]+"/"+l.tags["scenario"]+"/"+l.tags["step"]] = l
		}
	}
	return out
}

// surge_http carries retries and phase fields (absent for phases without
// values), surge_scenario the connections per scenario, surge_ws the
// WebSocket steps; region=all is the exact merge; a rewrite writes the
// same series at the same timestamps.
func TestInfluxPhasesConnsAndWebSockets(t *testing.T) {
	f := newFakeInflux(t)
	s := newTestInflux(t, f, nil)
	d := statsInterval(2)
	s.Interval(d)
	poll.Eventually(t, 5*time.Second, "first write", func() bool { return len(f.snapshot()) > 0 })
	raw := f.snapshot()

	http := linesOf(t, raw, MeasurementHTTP)
	eu, us, all := http["eu/s/"], http["us/s/"], http["all/s/"]
	if eu.fields["retries"] != "1i" || us.fields["retries"] != "3i" || all.fields["retries"] != "4i" {
		t.Errorf("retries eu %s us %s all %s", eu.fields["retries"], us.fields["retries"], all.fields["retries"])
	}
	if _, ok := us.fields["dns_p50"]; ok {
		t.Errorf("us has no dns values but a dns field: %v", us.fields)
	}
	if eu.fields["dns_count"] != "40i" || all.fields["dns_count"] != "40i" {
		t.Errorf("dns_count eu %s all %s", eu.fields["dns_count"], all.fields["dns_count"])
	}
	want := hist.New()
	for _, region := range []string{"eu", "us"} {
		if _, err := hist.MergeProto(want, d.Regions[region][0].GetTtfb()); err != nil {
			t.Fatal(err)
		}
	}
	if got := decodeHdr(t, all.fields["ttfb_hdr"]); got.TotalCount() != want.TotalCount() || got.ValueAtQuantile(99) != want.ValueAtQuantile(99) || got.Max() != want.Max() {
		t.Errorf("all ttfb_hdr: %d values p99 %d, want %d p99 %d", got.TotalCount(), got.ValueAtQuantile(99), want.TotalCount(), want.ValueAtQuantile(99))
	}
	if all.fields["ttfb_p99"] != itoa(want.ValueAtQuantile(99)) {
		t.Errorf("all ttfb_p99 %s, want %d", all.fields["ttfb_p99"], want.ValueAtQuantile(99))
	}

	scen := linesOf(t, raw, MeasurementScenario)
	if len(scen) != 5 { // eu/s, us/s, us/t, all/s, all/t
		t.Fatalf("%d surge_scenario lines: %v", len(scen), scen)
	}
	if l := scen["all/s/"]; l.fields["conns_opened"] != "12i" || l.fields["conns_closed"] != "3i" || l.fields["conns_open"] != "20i" ||
		l.fields["started"] != "10i" {
		t.Errorf("all/s %v", l.fields)
	}
	ws := linesOf(t, raw, MeasurementWS)
	if len(ws) != 3 {
		t.Fatalf("%d surge_ws lines: %v", len(ws), ws)
	}
	wall := ws["all/s/ws"]
	if wall.tags["flow"] != "chat" || wall.fields["sessions_active"] != "50i" || wall.fields["sessions_opened"] != "7i" ||
		wall.fields["messages_out"] != "22i" || wall.fields["abnormal_closes"] != "1i" || wall.fields["round_trip_count"] != "60i" {
		t.Errorf("surge_ws all %v %v", wall.tags, wall.fields)
	}
	if _, ok := wall.fields["connect_p50"]; ok {
		t.Errorf("connect fields without connect values: %v", wall.fields)
	}
	rtt := hist.New()
	for _, sc := range []int64{10, 70} {
		_, _ = hist.MergeProto(rtt, rttProto(sc))
	}
	if got := decodeHdr(t, wall.fields["round_trip_hdr"]); got.TotalCount() != 60 || got.ValueAtQuantile(50) != rtt.ValueAtQuantile(50) || got.Max() != rtt.Max() {
		t.Errorf("round trip hdr: %d values p50 %d max %d", got.TotalCount(), got.ValueAtQuantile(50), got.Max())
	}
	iv := linesOf(t, raw, MeasurementInterval)
	if l := iv["all//"]; l.fields["conns_opened"] != "12i" || l.fields["conns_open"] != "21i" || l.fields["retries"] != "4i" ||
		l.fields["ttfb_p99"] != itoa(want.ValueAtQuantile(99)) || l.fields["dns_count"] != "40i" {
		t.Errorf("surge_interval all %v", l.fields)
	}
	if _, ok := iv["us//"].fields["dns_p95"]; ok {
		t.Errorf("surge_interval us has dns fields without dns values")
	}

	// A rewrite writes the same surge_scenario and surge_ws series.
	before := len(f.snapshot())
	re := statsInterval(2)
	re.Rewrite = true
	re.WebSockets["eu"][0].SessionsOpened = 5
	s.Interval(re)
	poll.Eventually(t, 5*time.Second, "rewrite", func() bool { return len(f.snapshot()) > before })
	again := f.snapshot()[before:]
	for _, m := range []string{MeasurementScenario, MeasurementWS} {
		orig := linesOf(t, raw, m)
		for k, l := range linesOf(t, again, m) {
			o, ok := orig[k]
			if !ok || !maps2Equal(o.tags, l.tags) || o.ts != l.ts {
				t.Errorf("%s rewrite %v@%d matches no original point", m, l.tags, l.ts)
			}
		}
	}
	if got := linesOf(t, again, MeasurementWS)["all/s/ws"].fields["sessions_opened"]; got != "9i" {
		t.Errorf("rewritten sessions_opened %s, want 9i", got)
	}
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) + "i" }

// The run store sink keeps an interval's scenario and WebSocket stats.
func TestRunStoreSinkStats(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "runs.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s := NewRunStore(st, 0, nil)
	s.Interval(statsInterval(0))
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	recs, err := st.Intervals(testRun.ID)
	if err != nil || len(recs) != 1 {
		t.Fatalf("records %d %v", len(recs), err)
	}
	if r := recs[0]; len(r.Scenarios["us"]) != 2 || r.WebSockets["eu"][0].GetSessionsActive() != 20 ||
		r.Regions["eu"][0].GetDns() == nil {
		t.Errorf("stored %v / %v", r.Scenarios, r.WebSockets)
	}
}
