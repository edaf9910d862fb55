package aggregate

import (
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
	"github.com/surgeload/surge/hist"
	"github.com/surgeload/surge/plan"
)

func snap(agent string, seq uint64, interval int64, final bool, vals []int64) *surgev1.Snapshot {
	set := hist.NewSet()
	sr := set.Get(hist.Key{Scenario: "s", Request: "r", Status: "2xx"})
	for _, v := range vals {
		_ = sr.Latency.RecordValue(v)
		sr.Counters.Requests++
	}
	return &surgev1.Snapshot{RunId: "run", AgentId: agent, Seq: seq, Epoch: 1, Interval: interval, Final: final,
		Series: set.ToProto(), Scenarios: []*surgev1.ScenarioStats{{Scenario: "s", TargetRate: 10, Started: 10, Completed: int64(len(vals))}}}
}

func newRun(start time.Time) *Run {
	return New(Config{
		RunID: "run", Start: start, Interval: time.Second, MaxInterval: 20, Epoch: 1,
		Agents: map[string]string{"a": "us", "b": "eu"},
		Thresholds: []plan.ThresholdSpec{
			{Metric: "http_req_duration", Agg: "p", Percentile: 99, Op: "<", Value: 1, Key: "http_req_duration", Expr: "p(99)<1"},
			{Metric: "http_reqs", Tags: map[string]string{"region": "eu"}, Agg: "count", Op: ">=", Value: 1, Key: "http_reqs{region:eu}", Expr: "count>=1"},
		},
	})
}

func TestExactMergeAndIdempotence(t *testing.T) {
	start := time.Unix(1000, 0)
	r := newRun(start)
	rng := rand.New(rand.NewPCG(1, 2))
	all := hist.New()
	seqs := map[string]uint64{}
	for i := range int64(5) {
		for _, ag := range []string{"a", "b"} {
			vals := make([]int64, 200)
			for k := range vals {
				vals[k] = 1 + rng.Int64N(2_000_000)
				_ = all.RecordValue(vals[k])
			}
			seqs[ag]++
			s := snap(ag, seqs[ag], i, i == 4, vals)
			if out, err := r.Add(s); err != nil || out != Merged {
				t.Fatalf("Add = %v, %v", out, err)
			}
			if out, err := r.Add(s); err != nil || out != Duplicate {
				t.Fatalf("re-Add = %v, %v", out, err)
			}
		}
		// Both reported: ready without waiting for the grace.
		if got := r.Ready(start, time.Hour); len(got) != 1 || got[0] != i {
			t.Fatalf("Ready after interval %d = %v", i, got)
		}
		p := r.Emit(i)
		if p.GetAll().GetAchievedRps() != 400 || p.GetAll().GetArrivalRps() != 20 || p.GetAll().GetTargetRps() != 20 || len(p.GetRegions()) != 2 {
			t.Fatalf("progress %v", p)
		}
	}
	if !r.AllDone() {
		t.Fatal("not done after finals")
	}
	sum := r.Summary(r.MeasuredDuration())
	if sum.GetAll().GetRequests() != 2000 || sum.GetAll().GetLatencyUs().GetP99() != all.ValueAtQuantile(99) ||
		sum.GetAll().GetLatencyUs().GetP999() != all.ValueAtQuantile(99.9) || sum.GetAll().GetRps() != 400 {
		t.Fatalf("summary all %v, want p99 %d", sum.GetAll(), all.ValueAtQuantile(99))
	}
	res := r.Evaluate(5 * time.Second)
	if res[0].OK || res[0].Value != float64(all.ValueAtQuantile(99))/1000 || res[0].AbortReason(time.Second) != "" {
		t.Fatalf("threshold 0 %+v", res[0])
	}
	if !res[1].OK || res[1].Value != 1000 {
		t.Fatalf("threshold 1 %+v", res[1])
	}
}

func TestRejects(t *testing.T) {
	r := newRun(time.Unix(1000, 0))
	bad := snap("a", 1, 0, false, []int64{5})
	bad.Series[0].Latency.Sparse = []byte{0xff}
	cases := map[string]*surgev1.Snapshot{
		"unknown agent": snap("zz", 1, 0, false, nil),
		"bad epoch":     func() *surgev1.Snapshot { s := snap("a", 1, 0, false, nil); s.Epoch = 2; return s }(),
		"interval":      snap("a", 1, 21, false, nil),
		"negative":      snap("a", 1, -1, false, nil),
		"seq 0":         snap("a", 0, 0, false, nil),
		"histogram":     bad,
		"target rate": func() *surgev1.Snapshot {
			s := snap("a", 1, 0, false, nil)
			s.Scenarios[0].TargetRate = -1
			return s
		}(),
	}
	for name, s := range cases {
		if _, err := r.Add(s); !errors.Is(err, ErrRejected) {
			t.Errorf("%s: err %v", name, err)
		}
	}
	if _, rejected, _ := r.Counters(); rejected != int64(len(cases)) {
		t.Errorf("rejected %d", rejected)
	}
	// A rejected seq can be sent again validly.
	if out, err := r.Add(snap("a", 1, 0, false, []int64{5})); err != nil || out != Merged {
		t.Fatalf("Add = %v, %v", out, err)
	}
}

// A rejection keeps its cause: an invalid histogram is both ErrRejected
// and hist.ErrInvalid, new or a duplicate's.
func TestRejectKeepsCause(t *testing.T) {
	r := newRun(time.Unix(1000, 0))
	bad := snap("a", 1, 0, false, []int64{5})
	bad.Series[0].Latency.Sparse = []byte{0xff}
	if _, err := r.Add(bad); !errors.Is(err, ErrRejected) || !errors.Is(err, hist.ErrInvalid) {
		t.Errorf("invalid histogram: err %v, want ErrRejected and hist.ErrInvalid", err)
	}
	if _, err := r.Add(snap("a", 2, 0, false, []int64{5})); err != nil {
		t.Fatal(err)
	}
	dup := snap("a", 2, 0, false, []int64{5})
	dup.Series[0].Latency.Sparse = []byte{0xff}
	if _, err := r.Add(dup); !errors.Is(err, ErrRejected) || !errors.Is(err, hist.ErrInvalid) {
		t.Errorf("invalid duplicate: err %v, want ErrRejected and hist.ErrInvalid", err)
	}
}

func TestGraceAndLate(t *testing.T) {
	start := time.Unix(1000, 0)
	r := newRun(start)
	if _, err := r.Add(snap("a", 1, 0, false, []int64{10})); err != nil {
		t.Fatal(err)
	}
	if got := r.Ready(start.Add(1500*time.Millisecond), time.Second); len(got) != 0 {
		t.Fatalf("ready before grace: %v", got)
	}
	got := r.Ready(start.Add(2*time.Second), time.Second)
	if len(got) != 1 {
		t.Fatalf("ready after grace: %v", got)
	}
	r.Emit(0)
	if out, err := r.Add(snap("b", 1, 0, false, []int64{10})); err != nil || out != MergedLate {
		t.Fatalf("late Add = %v, %v", out, err)
	}
	if late, _, _ := r.Counters(); late != 1 {
		t.Fatalf("late %d", late)
	}
	r.MarkGone("a")
	r.MarkGone("b")
	if !r.AllDone() || len(r.Remaining()) != 0 {
		t.Fatalf("done %v remaining %v", r.AllDone(), r.Remaining())
	}
}

// A snapshot whose second series is bad merges nothing of its first one
// either, into its interval or the whole run, and creates no interval.
func TestRejectedSnapshotChangesNothing(t *testing.T) {
	r := newRun(time.Unix(1000, 0))
	half := snap("a", 1, 0, false, []int64{5, 7})
	second := proto.CloneOf(half.Series[0])
	second.Key.Status = "5xx"
	second.Latency.Total++
	half.Series = append(half.Series, second)
	if _, err := r.Add(half); !errors.Is(err, ErrRejected) {
		t.Fatalf("err %v", err)
	}
	if _, ok := r.IntervalSeries(0); ok {
		t.Fatal("a rejected snapshot created its interval")
	}
	if w := r.WholeSeries(); len(w) != 0 {
		t.Fatalf("a rejected snapshot reached the whole run: %v", w)
	}
	// The same seq, valid, merges; a duplicate of it that is invalid is
	// still refused.
	if out, err := r.Add(snap("a", 1, 0, false, []int64{5, 7})); err != nil || out != Merged {
		t.Fatalf("Add = %v, %v", out, err)
	}
	dup := snap("a", 1, 0, false, []int64{5, 7})
	dup.Series[0].Latency.Total++
	if _, err := r.Add(dup); !errors.Is(err, ErrRejected) {
		t.Fatalf("invalid duplicate: %v", err)
	}
	w := r.WholeSeries()
	if len(w["us"]) != 1 || w["us"][0].GetLatency().GetTotal() != 2 {
		t.Fatalf("whole run %v", w)
	}
}

// The agents' send lateness histograms merge exactly into the summary, per
// scenario, per region and for the run.
func TestSendLatenessSummary(t *testing.T) {
	r := newRun(time.Unix(1000, 0))
	all, us := hist.New(), hist.New()
	seqs := map[string]uint64{}
	for i := range int64(3) {
		for _, ag := range []string{"a", "b"} {
			l := hist.New()
			for k := range int64(50) {
				v := 10 + k*int64(i+1)*7
				if ag == "b" {
					v *= 3
				}
				_ = l.RecordValue(v)
			}
			all.Merge(l)
			if ag == "a" {
				us.Merge(l)
			}
			seqs[ag]++
			s := snap(ag, seqs[ag], i, i == 2, []int64{1000})
			s.Scenarios[0].Lateness = hist.ToProto(l)
			if _, err := r.Add(s); err != nil {
				t.Fatal(err)
			}
		}
	}
	sum := r.Summary(3 * time.Second)
	want, wantUS := hist.Summarize(all), hist.Summarize(us)
	got := sum.GetAll().GetSendLatenessUs()
	t.Logf("measured: send lateness p50 %d p99 %d max %d µs over %d arrivals", got.GetP50(), got.GetP99(), got.GetMax(), got.GetCount())
	if !proto.Equal(got, want) || !proto.Equal(sum.GetScenarios()["s"].GetSendLatenessUs(), want) {
		t.Errorf("send lateness all %v, scenario %v; want %v", got, sum.GetScenarios()["s"].GetSendLatenessUs(), want)
	}
	if !proto.Equal(sum.GetRegions()["us"].GetSendLatenessUs(), wantUS) {
		t.Errorf("send lateness us %v, want %v", sum.GetRegions()["us"].GetSendLatenessUs(), wantUS)
	}
	// The live progress carries the p99 so far, per region and in all.
	var p *surgev1.Progress
	for _, i := range r.Remaining() {
		p = r.Emit(i)
	}
	if got := p.GetAll().GetSendLatenessP99Us(); got != want.GetP99() {
		t.Errorf("progress send lateness p99 %d, want %d", got, want.GetP99())
	}
	for _, rp := range p.GetRegions() {
		if rp.GetRegion() == "us" && rp.GetSendLatenessP99Us() != wantUS.GetP99() {
			t.Errorf("progress us send lateness p99 %d, want %d", rp.GetSendLatenessP99Us(), wantUS.GetP99())
		}
	}
}

// latencyTotals is each region's latency count in interval i's series.
func latencyTotals(t *testing.T, r *Run, i int64) map[string]int64 {
	t.Helper()
	regions, ok := r.IntervalSeries(i)
	if !ok {
		t.Fatalf("interval %d: no series", i)
	}
	out := map[string]int64{}
	for region, ss := range regions {
		for _, s := range ss {
			out[region] += s.GetLatency().GetTotal()
		}
	}
	return out
}

// An emitted interval keeps its series encoded, not in histograms; late
// snapshots still merge into it exactly, a rejected one changes nothing,
// and the whole run has every value once.
func TestEmittedIntervalIsPacked(t *testing.T) {
	start := time.Unix(1000, 0)
	r := newRun(start)
	for _, s := range []*surgev1.Snapshot{snap("a", 1, 0, false, []int64{10, 20}), snap("b", 1, 0, false, []int64{30})} {
		if _, err := r.Add(s); err != nil {
			t.Fatal(err)
		}
	}
	r.Emit(0)
	if got := latencyTotals(t, r, 0); got["us"] != 2 || got["eu"] != 1 {
		t.Fatalf("interval 0 %v", got)
	}
	iv := r.intervals[0]
	if len(iv.sets) != 0 || len(iv.packed) != 2 {
		t.Fatalf("emitted interval holds %d sets, %d packed regions; want 0 and 2", len(iv.sets), len(iv.packed))
	}

	if out, err := r.Add(snap("a", 2, 0, false, []int64{40})); err != nil || out != MergedLate {
		t.Fatalf("late Add = %v, %v", out, err)
	}
	bad := snap("b", 2, 0, false, []int64{50})
	bad.Series[0].Latency.Total++
	if _, err := r.Add(bad); !errors.Is(err, ErrRejected) {
		t.Fatalf("bad late snapshot: %v", err)
	}
	if got := latencyTotals(t, r, 0); got["us"] != 3 || got["eu"] != 1 {
		t.Fatalf("interval 0 after late snapshots %v, want us 3, eu 1", got)
	}
	if len(iv.sets) != 0 || len(iv.packed) != 2 {
		t.Fatalf("re-sent interval holds %d sets, %d packed regions; want 0 and 2", len(iv.sets), len(iv.packed))
	}

	// An interval emitted before any snapshot reached it is not in the
	// whole run yet: its first late snapshot joins the whole run at the
	// next read, packed or not.
	r.Emit(1)
	if out, err := r.Add(snap("b", 3, 1, false, []int64{60, 70})); err != nil || out != MergedLate {
		t.Fatalf("late Add into an empty interval = %v, %v", out, err)
	}
	if got := latencyTotals(t, r, 1); got["eu"] != 2 {
		t.Fatalf("interval 1 %v", got)
	}
	whole := map[string]int64{}
	for region, ss := range r.WholeSeries() {
		for _, s := range ss {
			whole[region] += s.GetLatency().GetTotal()
		}
	}
	if whole["us"] != 3 || whole["eu"] != 3 {
		t.Fatalf("whole run %v, want us 3, eu 3", whole)
	}
}
