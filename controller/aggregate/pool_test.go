package aggregate

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
	"github.com/surgeload/surge/hist"
	"github.com/surgeload/surge/plan"
)

// reuseSnap is agent ag's random snapshot for interval iv: series with
// latency, service and ttfb times, an open-model scenario with send
// lateness, and a WebSocket step.
func reuseSnap(rng *rand.Rand, ag string, seq uint64, iv int64) *surgev1.Snapshot {
	set := hist.NewSet()
	for k := range 1 + rng.IntN(3) {
		sr := set.Get(hist.Key{Scenario: "s", Request: fmt.Sprintf("r%d", k), Status: []string{"2xx", "5xx"}[rng.IntN(2)]})
		for range 1 + rng.IntN(400) {
			sr.Counters.Requests++
			_ = sr.Latency.RecordValue(1 + rng.Int64N(3_000_000))
			_ = sr.Service.RecordValue(1 + rng.Int64N(30_000))
			sr.RecordPhase(hist.PhaseTTFB, 1+rng.Int64N(20_000))
		}
	}
	late, rtt := hist.New(), hist.New()
	for range 50 {
		_ = late.RecordValue(1 + rng.Int64N(900))
		_ = rtt.RecordValue(1 + rng.Int64N(90_000))
	}
	return &surgev1.Snapshot{RunId: "run", AgentId: ag, Seq: seq, Epoch: 1, Interval: iv, Series: set.ToProto(),
		Scenarios: []*surgev1.ScenarioStats{{Scenario: "s", TargetRate: 10, Scheduled: 10, Started: 10, Completed: 10,
			Lateness: hist.ToProto(late)}},
		Websockets: []*surgev1.WebSocketStats{{Scenario: "s", Flow: "chat", Step: "ws", SessionsOpened: 2, SessionsActive: 3,
			RoundTrip: hist.ToProto(rtt), Connect: hist.ToProto(rtt)}}}
}

// TestReleasedHistogramsReusedExactly feeds one run that reuses released
// intervals' histograms (Retain 1: every emit releases one) and one that
// allocates every histogram anew the same snapshots, late and invalid
// ones included: every progress, interval's series and stats, threshold
// result, and the summary and whole-run series must be identical.
func TestReleasedHistogramsReusedExactly(t *testing.T) {
	newRetain1 := func() *Run {
		return New(Config{RunID: "run", Start: time.Unix(0, 0), Interval: time.Second, MaxInterval: 100, Epoch: 1, Retain: 1,
			Agents: map[string]string{"a": "us", "b": "eu", "c": "eu"},
			Thresholds: []plan.ThresholdSpec{
				{Metric: "http_req_duration", Agg: "p", Percentile: 99, Op: "<", Value: 1, Key: "d", Expr: "p(99)<1"},
				{Metric: "http_req_waiting", Tags: map[string]string{"region": "eu"}, Agg: "max", Op: "<", Value: 1, Key: "w", Expr: "max<1"},
				{Metric: "ws_msg_round_trip", Agg: "p", Percentile: 90, Op: "<", Value: 1, Key: "rt", Expr: "p(90)<1"},
			}})
	}
	reuse, fresh := newRetain1(), newRetain1()
	fresh.pool = nil // every histogram allocated, none reused
	rng := rand.New(rand.NewPCG(21, 22))
	seq := map[string]uint64{}
	var lateSnap *surgev1.Snapshot
	for iv := range int64(30) {
		for _, ag := range []string{"a", "b", "c"} {
			seq[ag]++
			s := reuseSnap(rng, ag, seq[ag], iv)
			if ag == "c" && iv%4 == 1 { // c sends it after the interval was emitted
				lateSnap = s
				continue
			}
			if rng.IntN(6) == 0 { // an invalid one: rolled back, nothing merged
				bad := proto.Clone(s).(*surgev1.Snapshot)
				bad.Series = append(bad.Series, proto.Clone(bad.Series[0]).(*surgev1.Series))
				bad.Series[len(bad.Series)-1].Key.Request = "bad"
				bad.Series[len(bad.Series)-1].Latency.Total++
				for _, r := range []*Run{reuse, fresh} {
					if _, err := r.Add(bad); err == nil {
						t.Fatal("invalid snapshot merged")
					}
				}
			}
			for _, r := range []*Run{reuse, fresh} {
				if _, err := r.Add(s); err != nil {
					t.Fatal(err)
				}
			}
		}
		// Due by time: emitted without c's snapshot when it is late.
		for _, i := range reuse.Ready(time.Unix(iv+1, 0), 0) {
			pr, pf := reuse.Emit(i), fresh.Emit(i)
			if !proto.Equal(pr, pf) {
				t.Fatalf("interval %d progress differs with reuse:\n%v\n%v", i, pr, pf)
			}
			er, ef := reuse.Evaluate(time.Duration(i+1)*time.Second), fresh.Evaluate(time.Duration(i+1)*time.Second)
			for k := range er {
				if er[k].Value != ef[k].Value || er[k].HasData != ef[k].HasData || !er[k].HasData {
					t.Fatalf("interval %d threshold %d: %+v with reuse, %+v without", i, k, er[k], ef[k])
				}
			}
			sr, okr := reuse.IntervalSeries(i)
			sf, okf := fresh.IntervalSeries(i)
			if !okr || !okf || len(sr) != len(sf) {
				t.Fatalf("interval %d series: %v %v", i, okr, okf)
			}
			for region := range sf {
				if len(sr[region]) != len(sf[region]) {
					t.Fatalf("interval %d region %s: %d series, want %d", i, region, len(sr[region]), len(sf[region]))
				}
				for k := range sf[region] {
					if !proto.Equal(sr[region][k], sf[region][k]) {
						t.Fatalf("interval %d region %s series %d differs with reuse", i, region, k)
					}
				}
			}
			_, wr, _ := reuse.IntervalStats(i)
			_, wf, _ := fresh.IntervalStats(i)
			for region := range wf {
				for k := range wf[region] {
					if !proto.Equal(wr[region][k], wf[region][k]) {
						t.Fatalf("interval %d region %s ws stats differ with reuse", i, region)
					}
				}
			}
		}
		if lateSnap != nil && lateSnap.GetInterval() == iv {
			continue
		}
		if lateSnap != nil { // one interval late: merged into a retained interval or the whole run
			for _, r := range []*Run{reuse, fresh} {
				if out, err := r.Add(lateSnap); err != nil || out != MergedLate {
					t.Fatalf("late snapshot: %v, %v", out, err)
				}
			}
			lateSnap = nil
		}
	}
	if st := reuse.pool.Stats(); st.Reused == 0 || st.Kept == 0 {
		t.Fatalf("nothing reused: %+v", st)
	}
	sr, sf := reuse.Summary(reuse.MeasuredDuration()), fresh.Summary(fresh.MeasuredDuration())
	if !proto.Equal(sr, sf) {
		t.Fatal("summary differs with reuse")
	}
	wr, wf := reuse.WholeSeries(), fresh.WholeSeries()
	for region := range wf {
		for k := range wf[region] {
			if !proto.Equal(wr[region][k], wf[region][k]) {
				t.Fatalf("whole-run region %s series %d differs with reuse", region, k)
			}
		}
	}
	if sr.GetAll().GetRequests() == 0 || sr.GetAll().GetLatencyUs().GetP99() == 0 {
		t.Fatalf("empty summary %v", sr.GetAll())
	}
}
