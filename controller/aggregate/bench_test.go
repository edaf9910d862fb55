package aggregate

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
	"github.com/surgeload/surge/hist"
	"github.com/surgeload/surge/internal/cputime"
	"github.com/surgeload/surge/plan"
)

// cpuPerOp reports the process CPU time (user + system, GC included) per
// iteration as cpu-ns/op when stop is called: on a shared machine wall
// time per op also counts the time other processes held the core.
func cpuPerOp(b *testing.B) (stop func()) {
	b.Helper()
	start := cputime.Process()
	return func() {
		if d := cputime.Process() - start; d > 0 && b.N > 0 {
			b.ReportMetric(float64(d.Nanoseconds())/float64(b.N), "cpu-ns/op")
		}
	}
}

// wireSnapshots is n encoded snapshots, each of series series of values
// latencies (and as many service times) spread over 0.5-50 ms. A fleet's
// (steady false) are one per agent, agent-000, agent-001, ...; a steady
// run's are one agent's consecutive intervals, which also carry ttfb times
// and the open-model scenario's send lateness.
func wireSnapshots(b *testing.B, n, series, values int, steady bool) [][]byte {
	b.Helper()
	r := rand.New(rand.NewPCG(5, 5))
	wires := make([][]byte, n)
	for i := range wires {
		s := hist.NewSet()
		for k := range series {
			sr := s.Get(hist.Key{Scenario: "s", Request: fmt.Sprintf("GET /%d", k), Status: "2xx"})
			for range values {
				sr.Counters.Requests++
				_ = sr.Latency.RecordValue(500 + r.Int64N(50_000))
				_ = sr.Service.RecordValue(400 + r.Int64N(40_000))
				if steady {
					sr.RecordPhase(hist.PhaseTTFB, 300+r.Int64N(30_000))
				}
			}
		}
		total := int64(series * values)
		sc := &surgev1.ScenarioStats{Scenario: "s", TargetRate: float64(total), Scheduled: total, Started: total, Completed: total}
		agent := fmt.Sprintf("agent-%03d", i)
		if steady {
			agent = "agent-000"
			late := hist.New()
			for range total {
				_ = late.RecordValue(1 + r.Int64N(200))
			}
			sc.Lateness = hist.ToProto(late)
		}
		w, err := proto.Marshal(&surgev1.Snapshot{
			RunId: "run", AgentId: agent, Epoch: 1, Series: s.ToProto(), Scenarios: []*surgev1.ScenarioStats{sc},
			Agent: &surgev1.AgentStats{CpuPercent: 20, RssBytes: 50 << 20, Goroutines: 100},
		})
		if err != nil {
			b.Fatal(err)
		}
		wires[i] = w
	}
	return wires
}

// BenchmarkFleetInterval is a controller's aggregation work for one
// 1-second interval of a fleet in one region: every agent's snapshot
// decoded and added (interval and whole-run merge), then the interval
// emitted, its thresholds evaluated and its series encoded for the sinks,
// as controller/run.go does. One op is one interval.
func BenchmarkFleetInterval(b *testing.B) {
	for _, c := range []struct{ agents, series, values int }{{500, 20, 100}, {500, 20, 1000}} {
		b.Run(fmt.Sprintf("agents=%d/series=%d/values=%d", c.agents, c.series, c.values), func(b *testing.B) {
			wires := wireSnapshots(b, c.agents, c.series, c.values, false)
			agents := map[string]string{}
			for a := range c.agents {
				agents[fmt.Sprintf("agent-%03d", a)] = "us-east"
			}
			const intervals = 1 << 20
			r := New(Config{RunID: "run", Start: time.Unix(0, 0), Interval: time.Second, MaxInterval: intervals, Epoch: 1, Agents: agents,
				Thresholds: []plan.ThresholdSpec{{Metric: "http_req_duration", Agg: "p", Percentile: 99, Op: "<", Value: 500,
					Key: "http_req_duration", Expr: "p(99)<500"}}})
			var addNs, emitNs time.Duration
			b.ReportAllocs()
			stop := cpuPerOp(b)
			i := int64(0)
			for b.Loop() {
				t0 := time.Now()
				for _, w := range wires {
					var s surgev1.Snapshot
					if err := hist.UnmarshalSnapshot(w, &s); err != nil {
						b.Fatal(err)
					}
					s.Seq, s.Interval = uint64(i+1), i
					if _, err := r.Add(&s); err != nil {
						b.Fatal(err)
					}
				}
				t1 := time.Now()
				for _, j := range r.Ready(time.Unix(0, 0), time.Hour) {
					r.Emit(j)
					r.Evaluate(time.Duration(j+1) * time.Second)
					if _, ok := r.IntervalSeries(j); !ok {
						b.Fatal("interval released")
					}
				}
				emitNs += time.Since(t1)
				addNs += t1.Sub(t0)
				i++
			}
			stop()
			b.ReportMetric(float64(addNs.Nanoseconds())/float64(b.N)/float64(c.agents), "add-ns/snapshot")
			b.ReportMetric(float64(emitNs.Nanoseconds())/float64(b.N), "emit-ns/interval")
		})
	}
}

// BenchmarkSteadyInterval is the controller's aggregation work per interval
// of a long constant-rate run with one agent (goal 7's soak): its snapshot
// added, the interval emitted, thresholds evaluated and the interval's
// series and stats encoded for the sinks, as controller/run.go does, with
// older intervals released as the run goes. One op is one interval; B/op
// is what the controller allocates per interval in steady state.
func BenchmarkSteadyInterval(b *testing.B) {
	const series, values = 4, 1000
	wires := wireSnapshots(b, 16, series, values, true)
	r := New(Config{RunID: "run", Start: time.Unix(0, 0), Interval: time.Second, MaxInterval: 1 << 30, Epoch: 1,
		Agents: map[string]string{"agent-000": "local"},
		Thresholds: []plan.ThresholdSpec{{Metric: "http_req_duration", Agg: "p", Percentile: 99, Op: "<", Value: 500,
			Key: "http_req_duration", Expr: "p(99)<500"}}})
	i := int64(0)
	step := func() {
		var s surgev1.Snapshot
		if err := hist.UnmarshalSnapshot(wires[i%int64(len(wires))], &s); err != nil {
			b.Fatal(err)
		}
		s.Seq, s.Interval = uint64(i+1), i
		if _, err := r.Add(&s); err != nil {
			b.Fatal(err)
		}
		for _, j := range r.Ready(time.Unix(0, 0), time.Hour) {
			r.Emit(j)
			r.Evaluate(time.Duration(j+1) * time.Second)
			if _, ok := r.IntervalSeries(j); !ok {
				b.Fatal("interval released")
			}
			r.IntervalStats(j)
		}
		i++
	}
	for range 2 * DefaultRetain { // past the first releases
		step()
	}
	b.ReportAllocs()
	stop := cpuPerOp(b)
	for b.Loop() {
		step()
	}
	stop()
}
