package sink

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klauspost/compress/snappy"
	"google.golang.org/protobuf/encoding/protowire"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
	"github.com/surgeload/surge/hist"
	"github.com/surgeload/surge/internal/poll"
)

// rwPoint is one decoded TimeSeries of a remote write: its labels and its
// one sample or native histogram.
type rwPoint struct {
	labels map[string]string
	value  float64
	ts     int64
	hist   *rwHist
}

type rwHist struct {
	count, zero uint64
	sum         float64
	schema      int32
	buckets     map[int32]uint64
}

// fakeRW is a remote-write receiver on loopback recording every point;
// status, when set, is its answer instead of 204.
type fakeRW struct {
	srv    *httptest.Server
	mu     sync.Mutex
	points []rwPoint
	status atomic.Int32
}

func newFakeRW(t *testing.T) *fakeRW {
	f := &fakeRW{}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if code := f.status.Load(); code != 0 {
			http.Error(w, "no", int(code))
			return
		}
		if r.Header.Get("Content-Encoding") != "snappy" || r.Header.Get("X-Prometheus-Remote-Write-Version") != "0.1.0" {
			http.Error(w, "headers", http.StatusBadRequest)
			return
		}
		body, _ := io.ReadAll(r.Body)
		raw, err := snappy.Decode(nil, body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		pts := decodeWrite(t, raw)
		f.mu.Lock()
		f.points = append(f.points, pts...)
		f.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeRW) all() []rwPoint {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]rwPoint(nil), f.points...)
}

// fields calls fn with each field of a message.
func fields(t *testing.T, b []byte, fn func(num protowire.Number, typ protowire.Type, v uint64, bs []byte)) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			t.Errorf("bad tag")
			return
		}
		b = b[n:]
		var v uint64
		var bs []byte
		switch typ {
		case protowire.VarintType:
			v, n = protowire.ConsumeVarint(b)
		case protowire.Fixed64Type:
			v, n = protowire.ConsumeFixed64(b)
		case protowire.BytesType:
			bs, n = protowire.ConsumeBytes(b)
		default:
			t.Errorf("unexpected wire type %d", typ)
			return
		}
		if n < 0 {
			t.Errorf("bad field %d", num)
			return
		}
		b = b[n:]
		fn(num, typ, v, bs)
	}
}

func decodeWrite(t *testing.T, b []byte) []rwPoint {
	var out []rwPoint
	fields(t, b, func(num protowire.Number, _ protowire.Type, _ uint64, ts []byte) {
		if num != 1 {
			return
		}
		p := rwPoint{labels: map[string]string{}}
		fields(t, ts, func(num protowire.Number, _ protowire.Type, _ uint64, bs []byte) {
			switch num {
			case 1:
				var name, value string
				fields(t, bs, func(num protowire.Number, _ protowire.Type, _ uint64, s []byte) {
					if num == 1 {
						name = string(s)
					} else {
						value = string(s)
					}
				})
				p.labels[name] = value
			case 2:
				fields(t, bs, func(num protowire.Number, _ protowire.Type, v uint64, _ []byte) {
					if num == 1 {
						p.value = math.Float64frombits(v)
					} else {
						p.ts = int64(v)
					}
				})
			case 4:
				p.hist, p.ts = decodeNative(t, bs)
			}
		})
		out = append(out, p)
	})
	return out
}

func decodeNative(t *testing.T, b []byte) (*rwHist, int64) {
	h := &rwHist{buckets: map[int32]uint64{}}
	var ts int64
	var spans [][2]int64
	var deltas []int64
	fields(t, b, func(num protowire.Number, _ protowire.Type, v uint64, bs []byte) {
		switch num {
		case 1:
			h.count = v
		case 3:
			h.sum = math.Float64frombits(v)
		case 4:
			h.schema = int32(protowire.DecodeZigZag(v))
		case 6:
			h.zero = v
		case 11:
			var sp [2]int64
			fields(t, bs, func(num protowire.Number, _ protowire.Type, v uint64, _ []byte) {
				if num == 1 {
					sp[0] = protowire.DecodeZigZag(v)
				} else {
					sp[1] = int64(v)
				}
			})
			spans = append(spans, sp)
		case 12:
			for len(bs) > 0 {
				v, n := protowire.ConsumeVarint(bs)
				deltas = append(deltas, protowire.DecodeZigZag(v))
				bs = bs[n:]
			}
		case 15:
			ts = int64(v)
		}
	})
	idx, count, k := int64(0), int64(0), 0
	for i, sp := range spans {
		if i == 0 {
			idx = sp[0]
		} else {
			idx += sp[0]
		}
		for range sp[1] {
			count += deltas[k]
			h.buckets[int32(idx)] = uint64(count)
			idx++
			k++
		}
	}
	return h, ts
}

func newTestPromRW(t *testing.T, f *fakeRW, mod func(*PromConfig)) *PromRW {
	t.Helper()
	cfg := PromConfig{URL: f.srv.URL + "/api/v1/write", RetryMin: 20 * time.Millisecond, RetryMax: 100 * time.Millisecond, Timeout: time.Second}
	if mod != nil {
		mod(&cfg)
	}
	s, err := NewPromRW(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = s.Close(ctx)
	})
	return s
}

// Intervals are held back until no late snapshot can change them: a
// rewrite within the hold replaces its interval, every timestamp is
// written once, and the counters at the end are the exact sums.
func TestPromRWHoldsAndCounts(t *testing.T) {
	f := newFakeRW(t)
	s := newTestPromRW(t, f, func(c *PromConfig) { c.Hold = 2; c.ClassicBuckets = []float64{0.001, 0.1} })
	run := testRun
	run.Tags = map[string]string{"environment": "staging"}
	s.RunStarted(run)
	want := map[string]float64{}
	for i := range int64(6) {
		d := intervalData(i)
		d.Run = run
		s.Interval(d)
		if i == 4 { // a late snapshot doubles interval 3's us series
			re := intervalData(3)
			re.Run, re.Rewrite = run, true
			re.Regions["us"] = testSeries(1003, "2xx", "2xx")
			re.Regions["us"][0].Counters.Requests = 100
			s.Interval(re)
		}
	}
	for i := range int64(6) {
		want["eu"] += 100 // 2xx and 5xx, 50 each
		want["us"] += 50
		if i == 3 {
			want["us"] += 50
		}
	}
	s.RunEnded(run, &surgev1.RunSummary{})
	poll.Eventually(t, 5*time.Second, "every interval written", func() bool { return s.Stats().Written > 0 && s.Stats().Queued == 0 && len(f.all()) > 0 })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	last := map[string]float64{}
	lastTS := map[string]int64{}
	for _, p := range f.all() {
		key := ""
		for _, k := range []string{"__name__", "region", "status", "le", "run_id", "environment", "request"} {
			key += k + "=" + p.labels[k] + ","
		}
		id := key + time.UnixMilli(p.ts).String()
		if seen[id] {
			t.Errorf("point %s written twice", id)
		}
		seen[id] = true
		if p.ts < lastTS[key] {
			t.Errorf("%s went back in time", key)
		}
		lastTS[key] = p.ts
		if p.labels["__name__"] == PromRequests {
			last[p.labels["region"]+"/"+p.labels["status"]] = p.value
		}
		if p.labels["run_id"] != "r1" || p.labels["environment"] != "staging" || p.labels["plan"] != "p" {
			t.Errorf("point without the run's labels: %v", p.labels)
		}
	}
	got := map[string]float64{"eu": last["eu/2xx"] + last["eu/5xx"], "us": last["us/2xx"]}
	if got["eu"] != want["eu"] || got["us"] != want["us"] {
		t.Errorf("final counters %v, want %v", got, want)
	}
	for key, ts := range lastTS {
		if ts != testRun.Start.Add(6*time.Second).UnixMilli() {
			t.Errorf("%s: last point at %d, want the end of the last interval", key, ts)
		}
	}
}

// The native histogram holds every value, and its quantile lies in the
// bucket of surge's exact one: within 2^(1/32) at schema 5.
func TestPromRWNativeHistogram(t *testing.T) {
	f := newFakeRW(t)
	s := newTestPromRW(t, f, func(c *PromConfig) { c.Hold = -1 })
	set := hist.NewSet()
	sr := set.Get(hist.Key{Scenario: "s", Request: "get", Status: "2xx"})
	for v := int64(1); v <= 10000; v++ {
		_ = sr.Latency.RecordValue(v * 7) // 7 µs to 70 ms
	}
	sr.Counters.Requests = 10000
	d := IntervalData{Run: testRun, Start: testRun.Start, Regions: map[string][]*surgev1.Series{"eu": set.ToProto()}}
	s.Interval(d)
	s.RunEnded(testRun, &surgev1.RunSummary{})
	var h *rwHist
	poll.Eventually(t, 5*time.Second, "the histogram written", func() bool {
		for _, p := range f.all() {
			if p.labels["__name__"] == PromLatency && p.hist != nil {
				h = p.hist
				return true
			}
		}
		return false
	})
	var total uint64
	for _, c := range h.buckets {
		total += c
	}
	if h.count != 10000 || total+h.zero != 10000 || h.schema != DefaultNativeSchema {
		t.Fatalf("histogram count %d, buckets hold %d, schema %d; want 10000, 10000, 5", h.count, total, h.schema)
	}
	exact := float64(sr.Latency.ValueAtQuantile(99)) / 1e6
	// the bucket holding rank 9900
	var rank uint64
	var idx int32
	for i := int32(-1000); i < 1000; i++ {
		rank += h.buckets[i]
		if rank >= 9900 {
			idx = i
			break
		}
	}
	lo, hi := math.Exp2(float64(idx-1)/32), math.Exp2(float64(idx)/32)
	if !(exact > lo && exact <= hi) || hi/lo > 1.022 {
		t.Errorf("p99 %.6fs is not in its native bucket (%.6f, %.6f]", exact, lo, hi)
	}
}

// A receiver that fails is retried; one that refuses the data (400) has it
// dropped, counted and noted.
func TestPromRWRetriesAndDrops(t *testing.T) {
	f := newFakeRW(t)
	f.status.Store(http.StatusServiceUnavailable)
	s := newTestPromRW(t, f, func(c *PromConfig) { c.Hold = -1 })
	s.RunStarted(testRun)
	s.Interval(intervalData(0))
	poll.Eventually(t, 5*time.Second, "failed writes", func() bool { return s.Stats().Failures >= 2 })
	f.status.Store(0)
	poll.Eventually(t, 5*time.Second, "written after the outage", func() bool { return s.Stats().Written > 0 && s.Stats().Queued == 0 })
	if st := s.Stats(); st.Dropped != 0 {
		t.Errorf("dropped %d while the receiver was down", st.Dropped)
	}
	f.status.Store(http.StatusBadRequest)
	s.Interval(intervalData(1))
	poll.Eventually(t, 5*time.Second, "a refused batch dropped", func() bool { return s.Stats().Dropped > 0 })
	notes := strings.Join(s.Notes(testRun.ID), "\n")
	if !strings.Contains(notes, "of this run were dropped") ||
		!strings.Contains(notes, "writes to Prometheus failed during this run") {
		t.Errorf("notes do not say what was dropped and what was late:\n%s", notes)
	}
}

// The run's monitors go with its end: surge_monitor{monitor} one sample
// per interval, at the interval's end, with the run's labels.
func TestPromRWMonitors(t *testing.T) {
	f := newFakeRW(t)
	s := newTestPromRW(t, f, nil)
	s.RunStarted(testRun)
	s.Interval(intervalData(0))
	s.RunEnded(testRun, &surgev1.RunSummary{Monitors: []*surgev1.MonitorSummary{{Name: "cpu",
		Values: []*surgev1.MonitorSample{{Interval: 0, Value: 0.25}, {Interval: 2, Value: 0.5}}}}})
	poll.Eventually(t, 5*time.Second, "the monitor written", func() bool {
		for _, p := range f.all() {
			if p.labels["__name__"] == PromMonitor && p.value == 0.5 {
				return true
			}
		}
		return false
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range f.all() {
		if p.labels["__name__"] == PromMonitor {
			got = append(got, fmt.Sprintf("%s %s %g %d", p.labels["monitor"], p.labels["run_id"], p.value, p.ts-testRun.Start.UnixMilli()))
		}
	}
	if want := "cpu r1 0.25 1000\ncpu r1 0.5 3000"; strings.Join(got, "\n") != want {
		t.Errorf("monitor samples\n%s\nwant\n%s", strings.Join(got, "\n"), want)
	}
}
