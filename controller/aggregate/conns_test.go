package aggregate

import (
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"google.golang.org/protobuf/proto"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
	"github.com/surgeload/surge/hist"
	"github.com/surgeload/surge/plan"
)

// connSnap is one agent's interval with a request series carrying phases,
// retries, connection counts and one WebSocket step. The values derive
// from (agent, interval) so the test can sum them independently.
type connSnap struct {
	agent    string
	seq      uint64
	interval int64
	opened   int64 // conns opened; closed = opened/2, open = 10*interval + opened
	sessions int64 // ws sessions opened; active = sessions + interval
	rtts     []int64
	ttfb     []int64
	connects []int64
	status   string
}

func (c connSnap) open() int64 { return 10*c.interval + c.opened }

func (c connSnap) wire() *surgev1.Snapshot {
	set := hist.NewSet()
	st := c.status
	if st == "" {
		st = "2xx"
	}
	sr := set.Get(hist.Key{Scenario: "s", Request: "r", Status: st})
	sr.Counters.Requests = int64(len(c.ttfb))
	sr.Counters.Retries = 2
	if st != "2xx" {
		sr.Counters.Failures = sr.Counters.Requests
	}
	for _, v := range c.ttfb {
		_ = sr.Latency.RecordValue(2 * v)
		sr.RecordPhase(hist.PhaseTTFB, v)
	}
	for _, v := range c.connects {
		sr.RecordPhase(hist.PhaseConnect, v)
	}
	var e hist.Encoder
	rtt := hist.New()
	for _, v := range c.rtts {
		_ = rtt.RecordValue(v)
	}
	return &surgev1.Snapshot{
		RunId: "run", AgentId: c.agent, Seq: c.seq, Epoch: 1, Interval: c.interval, Series: set.ToProto(),
		Scenarios: []*surgev1.ScenarioStats{{Scenario: "s", Started: 5, Completed: 5,
			ConnsOpened: c.opened, ConnsClosed: c.opened / 2, ConnsOpen: c.open()}},
		Websockets: []*surgev1.WebSocketStats{{Scenario: "s", Flow: "chat", Step: "ws",
			SessionsOpened: c.sessions, SessionsClosed: c.sessions / 2, SessionsActive: c.sessions + c.interval,
			AbnormalCloses: c.sessions / 4, MessagesOut: 3 * c.sessions, MessagesIn: 2 * c.sessions, RepliesMissed: 1,
			RoundTrip: e.ToProto(rtt), Connect: e.ToProto(rtt)}},
	}
}

func spec(metric, agg string, pct float64, tags map[string]string) plan.ThresholdSpec {
	return plan.ThresholdSpec{Metric: metric, Agg: agg, Percentile: pct, Op: ">=", Value: 0, Key: metric, Expr: agg, Tags: tags}
}

// Connections, WebSocket stats and phases merge exactly per interval and
// region and over the run; gauges sum each agent's latest report; peaks are
// the highest interval sums; thresholds read them all.
func TestConnsWebSocketsAndPhases(t *testing.T) {
	start := time.Unix(1000, 0)
	r := New(Config{
		RunID: "run", Start: start, Interval: time.Second, MaxInterval: 20, Epoch: 1,
		Agents: map[string]string{"a": "us", "b": "us", "c": "eu"},
		Thresholds: []plan.ThresholdSpec{
			spec("http_req_waiting", "p", 99, nil),
			spec("http_req_connecting", "max", 0, map[string]string{"region": "eu"}),
			spec("http_req_tls_handshaking", "p", 95, nil),
			spec("http_req_retries", "count", 0, nil),
			spec("http_req_retries", "rate", 0, nil),
			spec("ws_msg_round_trip", "p", 50, nil),
			spec("ws_sessions", "count", 0, map[string]string{"request": "ws"}),
			spec("ws_abnormal_closes", "rate", 0, nil),
			spec("ws_msgs_sent", "count", 0, map[string]string{"region": "us"}),
			spec("ws_replies_missed", "count", 0, map[string]string{"status": "5xx"}),
			spec("ws_connecting", "max", 0, map[string]string{"scenario": "nope"}),
		},
	})
	rng := rand.New(rand.NewPCG(3, 4))
	ttfbAll, rttAll, connEU := hist.New(), hist.New(), hist.New()
	type want struct{ opened, closed, sessions, abnormal, msgsOut, msgsOutUS int64 }
	var w want
	seqs := map[string]uint64{}
	peak := map[string]int64{} // by region, and "" for all
	var snaps []*surgev1.Snapshot
	for i := range int64(3) {
		sums := map[string]int64{}
		for _, ag := range []string{"a", "b", "c"} {
			seqs[ag]++
			c := connSnap{agent: ag, seq: seqs[ag], interval: i, opened: 4 + rng.Int64N(10), sessions: 4 + rng.Int64N(8)}
			for range 50 {
				v := 1 + rng.Int64N(100_000)
				c.ttfb = append(c.ttfb, v)
				_ = ttfbAll.RecordValue(v)
				rv := 1 + rng.Int64N(5_000)
				c.rtts = append(c.rtts, rv)
				_ = rttAll.RecordValue(rv)
			}
			if ag == "c" {
				c.connects = []int64{100 + i, 9_000 + i}
				for _, v := range c.connects {
					_ = connEU.RecordValue(v)
				}
			}
			region := map[string]string{"a": "us", "b": "us", "c": "eu"}[ag]
			sums[region] += c.open()
			sums[""] += c.open()
			w.opened += c.opened
			w.closed += c.opened / 2
			w.sessions += c.sessions
			w.abnormal += c.sessions / 4
			w.msgsOut += 3 * c.sessions
			if region == "us" {
				w.msgsOutUS += 3 * c.sessions
			}
			s := c.wire()
			snaps = append(snaps, s)
			if out, err := r.Add(s); err != nil || out != Merged {
				t.Fatalf("Add %s/%d = %v, %v", ag, i, out, err)
			}
		}
		for k, v := range sums {
			peak[k] = max(peak[k], v)
		}
	}

	// Interval 1, region us: agents a and b merged.
	scen, ws, ok := r.IntervalStats(1)
	if !ok {
		t.Fatal("interval 1 unknown")
	}
	us := scen["us"]
	if len(us) != 1 || len(scen) != 2 {
		t.Fatalf("interval scenarios %v", scen)
	}
	var wantOpened, wantOpen int64
	for _, s := range snaps {
		if s.GetInterval() == 1 && s.GetAgentId() != "c" {
			wantOpened += s.GetScenarios()[0].GetConnsOpened()
			wantOpen += s.GetScenarios()[0].GetConnsOpen()
		}
	}
	if us[0].GetConnsOpened() != wantOpened || us[0].GetConnsOpen() != wantOpen || us[0].GetStarted() != 10 {
		t.Errorf("interval 1 us: %v, want opened %d open %d", us[0], wantOpened, wantOpen)
	}
	wsUS := ws["us"]
	if len(wsUS) != 1 || wsUS[0].GetStep() != "ws" || wsUS[0].GetFlow() != "chat" {
		t.Fatalf("interval ws %v", ws)
	}
	rt, err := hist.FromProto(wsUS[0].GetRoundTrip())
	if err != nil || rt.TotalCount() != 100 {
		t.Fatalf("interval round trips %v %v", rt.TotalCount(), err)
	}

	// Whole run, every level.
	all := r.Conns("", "")
	if all.Opened != w.opened || all.Closed != w.closed || all.PeakOpen != peak[""] || all.Open != snapsOpenAt(snaps, 2) {
		t.Errorf("conns all %+v, want opened %d closed %d peak %d", all, w.opened, w.closed, peak[""])
	}
	if eu := r.Conns("s", "eu"); eu.PeakOpen != peak["eu"] {
		t.Errorf("conns eu %+v, want peak %d", eu, peak["eu"])
	}
	if got := r.Conns("other", ""); got != (ConnStats{}) {
		t.Errorf("unknown scenario: %+v", got)
	}
	steps := r.WebSockets("")
	if len(steps) != 1 {
		t.Fatalf("steps %v", steps)
	}
	st := steps[0]
	if st.Opened != w.sessions || st.Abnormal != w.abnormal || st.MessagesOut != w.msgsOut || st.RepliesMissed != 9 ||
		!st.RoundTrip.Equals(rttAll) {
		t.Errorf("ws step %+v, want sessions %d abnormal %d msgs out %d", st.WSStats, w.sessions, w.abnormal, w.msgsOut)
	}
	var wantActive, wantPeakActive int64
	for _, s := range snaps {
		if s.GetInterval() == 2 {
			wantActive += s.GetWebsockets()[0].GetSessionsActive()
		}
	}
	wantPeakActive = wantActive // sessions active grows with the interval
	if st.Active != wantActive || st.PeakActive != wantPeakActive {
		t.Errorf("ws active %d peak %d, want %d and %d", st.Active, st.PeakActive, wantActive, wantPeakActive)
	}

	if tot, ok := r.WebSocketTotal(""); !ok || tot.Opened != st.Opened || tot.PeakActive != st.PeakActive || !tot.RoundTrip.Equals(rttAll) {
		t.Errorf("websocket total %+v (ok %v), want the one step's figures", tot, ok)
	}
	if _, ok := r.WebSocketTotal("nowhere"); ok {
		t.Error("websocket total for a region without websockets")
	}

	// Stored whole-run stats: counters and latest gauges.
	wscen, wws := r.WholeStats()
	if len(wscen) != 2 || len(wws) != 2 || wws["eu"][0].GetSessionsOpened() == 0 {
		t.Fatalf("whole stats %v %v", wscen, wws)
	}
	if got := wscen["us"][0].GetConnsOpened() + wscen["eu"][0].GetConnsOpened(); got != w.opened {
		t.Errorf("whole opened %d, want %d", got, w.opened)
	}

	// Phases reach the whole run exactly.
	set := hist.NewSet()
	for _, list := range r.WholeSeries() {
		if _, err := set.MergeProto(list); err != nil {
			t.Fatal(err)
		}
	}
	if got := set.Total(nil).Phases[hist.PhaseTTFB]; got == nil || !got.Equals(ttfbAll) {
		t.Error("whole-run ttfb is not the exact merge")
	}

	res := r.Evaluate(3 * time.Second)
	check := func(i int, want float64, hasData bool) {
		t.Helper()
		if res[i].HasData != hasData || (hasData && res[i].Value != want) {
			t.Errorf("threshold %s %v: value %v (data %v), want %v (data %v)", res[i].Spec.Metric, res[i].Spec.Tags,
				res[i].Value, res[i].HasData, want, hasData)
		}
	}
	ms := func(h *hdrhistogram.Histogram, q float64) float64 { return float64(h.ValueAtQuantile(q)) / 1000 }
	check(0, ms(ttfbAll, 99), true)
	check(1, float64(connEU.Max())/1000, true)
	check(2, 0, false) // no tls phase recorded
	check(3, 18, true) // 2 retries per snapshot
	check(4, 6, true)  // per second over 3 s
	check(5, ms(rttAll, 50), true)
	check(6, float64(w.sessions), true)
	check(7, float64(w.abnormal)/float64(w.sessions), true)
	check(8, float64(w.msgsOutUS), true)
	check(9, 0, true) // a status tag matches no WebSocket step
	check(10, 0, false)

	// Summary errors use the summary's names.
	if _, err := r.Add(connSnap{agent: "a", seq: 10, interval: 3, status: "5xx", ttfb: []int64{5, 6}}.wire()); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Add(connSnap{agent: "b", seq: 10, interval: 3, status: "timeout", ttfb: []int64{5}}.wire()); err != nil {
		t.Fatal(err)
	}
	sum := r.Summary(4 * time.Second)
	if e := sum.GetAll().GetErrors(); len(e) != 2 || e["http_5xx"] != 2 || e["timeout"] != 1 {
		t.Errorf("errors %v, want http_5xx=2 timeout=1", e)
	}
	t.Logf("measured: %d conns opened (peak open %d), %d ws sessions (peak active %d), ttfb p99 %d µs over %d values",
		all.Opened, all.PeakOpen, st.Opened, st.PeakActive, ttfbAll.ValueAtQuantile(99), ttfbAll.TotalCount())
}

func snapsOpenAt(snaps []*surgev1.Snapshot, interval int64) int64 {
	var n int64
	for _, s := range snaps {
		if s.GetInterval() == interval {
			n += s.GetScenarios()[0].GetConnsOpen()
		}
	}
	return n
}

// An agent's gauges are its latest report's: a snapshot with a higher seq
// for the same interval replaces the gauge, counters still add.
func TestGaugesLatestPerAgent(t *testing.T) {
	r := newRun(time.Unix(1000, 0))
	first := connSnap{agent: "a", seq: 1, interval: 0, opened: 10, sessions: 4}.wire()
	second := connSnap{agent: "a", seq: 2, interval: 0, opened: 2, sessions: 4}.wire()
	second.Scenarios[0].ConnsOpen = 3
	second.Websockets[0].SessionsActive = 1
	for _, s := range []*surgev1.Snapshot{second, first} { // out of order: seq 2 still wins
		if _, err := r.Add(s); err != nil {
			t.Fatal(err)
		}
	}
	scen, ws, _ := r.IntervalStats(0)
	if got := scen["us"][0]; got.GetConnsOpen() != 3 || got.GetConnsOpened() != 12 || got.GetConnsClosed() != 6 {
		t.Errorf("interval gauges %v, want open 3 opened 12 closed 6", got)
	}
	if got := ws["us"][0].GetSessionsActive(); got != 1 {
		t.Errorf("sessions active %d, want 1", got)
	}
	if c := r.Conns("", ""); c.Open != 3 || c.PeakOpen != 3 {
		t.Errorf("conns %+v: want open 3 and peak 3 (the earlier report came last and does not count)", c)
	}
	// The live progress shows the same gauges, in the agent's region and
	// in all.
	p := r.Emit(0)
	for _, rp := range append(p.GetRegions(), p.GetAll()) {
		want := int64(1)
		if rp.GetRegion() != "us" && rp.GetRegion() != RegionAll {
			want = 0
		}
		if rp.GetConnsOpen() != 3*want || rp.GetWsOpen() != want {
			t.Errorf("progress %s: conns %d ws %d, want %d and %d", rp.GetRegion(), rp.GetConnsOpen(), rp.GetWsOpen(), 3*want, want)
		}
	}
}

func TestRejectsStats(t *testing.T) {
	good := connSnap{agent: "a", seq: 1, interval: 0, opened: 4, sessions: 4, rtts: []int64{5}}.wire()
	cases := map[string]func(s *surgev1.Snapshot){
		"negative conns":     func(s *surgev1.Snapshot) { s.Scenarios[0].ConnsOpen = -1 },
		"negative opened":    func(s *surgev1.Snapshot) { s.Scenarios[0].ConnsOpened = -1 },
		"negative ws":        func(s *surgev1.Snapshot) { s.Websockets[0].MessagesIn = -3 },
		"abnormal > closed":  func(s *surgev1.Snapshot) { s.Websockets[0].AbnormalCloses = 99 },
		"bad round trip":     func(s *surgev1.Snapshot) { s.Websockets[0].RoundTrip.Total++ },
		"bad phase":          func(s *surgev1.Snapshot) { s.Series[0].Ttfb.Sparse = []byte{0xff} },
		"agent conns":        func(s *surgev1.Snapshot) { s.Agent = &surgev1.AgentStats{ConnsOpen: -1} },
		"too many websocket": func(s *surgev1.Snapshot) { s.Websockets = make([]*surgev1.WebSocketStats, 3) },
	}
	for name, breakIt := range cases {
		r := New(Config{RunID: "run", Start: time.Unix(1000, 0), MaxInterval: 5, Epoch: 1,
			Agents: map[string]string{"a": "us"}, MaxWebSockets: 2})
		s := proto.CloneOf(good)
		s.Series = connSnap{agent: "a", ttfb: []int64{7}}.wire().Series
		breakIt(s)
		if _, err := r.Add(s); !errors.Is(err, ErrRejected) {
			t.Errorf("%s: err %v", name, err)
			continue
		}
		if c := r.Conns("", ""); c != (ConnStats{}) || len(r.WebSockets("")) != 0 {
			t.Errorf("%s: rejected snapshot merged: %+v", name, c)
		}
	}
}

// The total of several WebSocket steps has its own peak of sessions
// active (at one interval's end, every step together), not the sum of the
// steps' peaks.
func TestWebSocketTotalPeak(t *testing.T) {
	r := newRun(time.Unix(1000, 0))
	for i, active := range [][2]int64{{3, 4}, {5, 1}} {
		s := connSnap{agent: "a", seq: uint64(i + 1), interval: int64(i), sessions: 2}.wire()
		x, y := proto.CloneOf(s.Websockets[0]), proto.CloneOf(s.Websockets[0])
		x.Step, x.SessionsActive = "x", active[0]
		y.Step, y.SessionsActive = "y", active[1]
		s.Websockets = []*surgev1.WebSocketStats{x, y}
		if _, err := r.Add(s); err != nil {
			t.Fatal(err)
		}
	}
	steps := r.WebSockets("")
	if len(steps) != 2 || steps[0].PeakActive != 5 || steps[1].PeakActive != 4 {
		t.Fatalf("steps %+v", steps)
	}
	tot, ok := r.WebSocketTotal("")
	if !ok || tot.PeakActive != 7 || tot.Active != 6 || tot.Opened != 8 {
		t.Errorf("total: peak %d active %d opened %d, want 7 (3+4), 6 (5+1), 8", tot.PeakActive, tot.Active, tot.Opened)
	}
}
