package report_test

import (
	"bytes"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/surgeload/surge/controller/report"
	surgev1 "github.com/surgeload/surge/gen/surge/v1"
	"github.com/surgeload/surge/hist"
)

// series builds one stored series with n latencies from..to µs (evenly).
func series(request, status string, n int, from, to int64, failures int64) (*surgev1.Series, *hdrhistogram.Histogram) {
	h := hist.New()
	for i := range n {
		_ = h.RecordValue(from + (to-from)*int64(i)/int64(max(n-1, 1)))
	}
	return &surgev1.Series{
		Key:      &surgev1.SeriesKey{Scenario: "s", Request: request, Status: status},
		Counters: &surgev1.Counters{Requests: int64(n), Failures: failures},
		Latency:  hist.ToProto(h),
	}, h
}

func run(id string, latScale int64, errFrac float64) (*report.RunData, *hdrhistogram.Histogram) {
	all := hist.New()
	ok1, h1 := series("home", "2xx", 8000, 1000*latScale, 5000*latScale, 0)
	all.Merge(h1)
	nErr := int(2000 * errFrac)
	ok2, h2 := series("api", "2xx", 2000-nErr, 2000, 9000, 0)
	all.Merge(h2)
	regions := map[string][]*surgev1.Series{"us-east": {ok1}, "eu-west": {ok2}}
	if nErr > 0 {
		e, h3 := series("api", "5xx", nErr, 100, 200, int64(nErr))
		all.Merge(h3)
		regions["eu-west"] = append(regions["eu-west"], e)
	}
	return &report.RunData{ID: id, Start: time.UnixMilli(1767225600000), Duration: 10 * time.Second, Whole: regions}, all
}

func find(c *surgev1.CompareResponse, group, metric string) *surgev1.MetricDiff {
	for _, m := range c.GetMetrics() {
		if !m.GetWindow() && m.GetGroup() == group && m.GetMetric() == metric {
			return m
		}
	}
	return nil
}

func TestCompareExactAndFlags(t *testing.T) {
	a, ha := run("A", 1, 0)
	b, _ := run("B", 1, 0)
	c, err := report.Compare(a, b, report.CompareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if c.GetDiverged() != 0 {
		t.Errorf("equal runs: %d diverged", c.GetDiverged())
	}
	if got := find(c, "all", "p99_ms").GetA(); got != float64(ha.ValueAtQuantile(99))/1000 {
		t.Errorf("p99 %v, merged histogram %d µs", got, ha.ValueAtQuantile(99))
	}
	if got := find(c, "all", "rps").GetA(); got != 1000 {
		t.Errorf("rps %v, want 1000", got)
	}

	slow, _ := run("S", 3, 0.1) // home ×3 slower; api: 10% 5xx
	c, err = report.Compare(a, slow, report.CompareOptions{Tolerance: 0.2})
	if err != nil {
		t.Fatal(err)
	}
	var diverged []string
	for _, m := range c.GetMetrics() {
		if m.GetDiverged() {
			diverged = append(diverged, m.GetGroup()+" "+m.GetMetric())
		}
	}
	// api's p50 moves (200 fast 5xx among 2,000) but by less than 20%.
	// home's p999 is thin: 8,000 values leave 8 beyond it.
	// Expected responses only (api's 5xx left out) are slower too.
	want := "all p50_ms,all p50_ms{expected_response:true},all p95_ms,all p95_ms{expected_response:true}," +
		"all p99_ms,all p99_ms{expected_response:true},all p999_ms,all error_rate,all error_rate.http_5xx," +
		"request=api error_rate,request=api error_rate.http_5xx," +
		"request=home p50_ms,request=home p95_ms,request=home p99_ms"
	if got := strings.Join(diverged, ","); got != want {
		t.Errorf("diverged\n got %s\nwant %s", got, want)
	}
	if m := find(c, "request=home", "p999_ms"); !m.GetThin() || m.GetRelDiff() < 1 {
		t.Errorf("home p999: thin %v rel %v, want thin and +200%%", m.GetThin(), m.GetRelDiff())
	}
	var text bytes.Buffer
	if err := report.CompareText(&text, c); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), "DIVERGED: 14 metrics") {
		t.Errorf("text:\n%s", text.String())
	}
	if _, err := report.CompareJSON(c); err != nil {
		t.Fatal(err)
	}
}

func TestCompareBaseline(t *testing.T) {
	b, h := run("B", 1, 0)
	rows := []*surgev1.BaselineRow{
		{Endpoint: "all", P50Ms: float64(h.ValueAtQuantile(50)) / 1000, P95Ms: float64(h.ValueAtQuantile(95)) / 1000,
			P99Ms: float64(h.ValueAtQuantile(99)) / 1000, Rpm: 60000},
		{Endpoint: "missing", P50Ms: 1, P95Ms: 2, P99Ms: 3, Rpm: 60},
	}
	c, err := report.CompareBaseline(rows, b, report.CompareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range c.GetMetrics() {
		if m.GetGroup() == "all" && m.GetDiverged() {
			t.Errorf("all %s diverged: %v vs %v", m.GetMetric(), m.GetA(), m.GetB())
		}
		if m.GetGroup() == "request=missing" && !m.GetDiverged() {
			t.Errorf("missing endpoint %s not flagged", m.GetMetric())
		}
	}
}

func TestFramesAndHdrLog(t *testing.T) {
	a, h := run("A", 1, 0.1)
	frames, err := report.Frames(a, false, "")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := report.WriteHdrLog(&buf, "A", a.Start, frames); err != nil {
		t.Fatal(err)
	}
	rd := hdrhistogram.NewHistogramLogReader(&buf)
	got, err := rd.NextIntervalHistogram()
	if err != nil || got == nil {
		t.Fatalf("read back: %v", err)
	}
	if got.TotalCount() != h.TotalCount() || got.ValueAtQuantile(99.9) != h.ValueAtQuantile(99.9) {
		t.Errorf("read back count %d p999 %d; want %d %d", got.TotalCount(), got.ValueAtQuantile(99.9), h.TotalCount(), h.ValueAtQuantile(99.9))
	}
	if math.Abs(float64(got.EndTimeMs()-got.StartTimeMs())-10000) > 1 {
		t.Errorf("interval %d..%d ms", got.StartTimeMs(), got.EndTimeMs())
	}
}

// A tail percentile diverges only when each side has at least ten values
// beyond it: equal runs whose few slowest requests differ do not diverge,
// while the same shift in a run with enough values does.
func TestCompareThinPercentiles(t *testing.T) {
	mk := func(id string, n int, tail int64) *report.RunData {
		return valuesRun(id, n, func(i int) int64 {
			if i%1000 >= 998 {
				return tail // two values in a thousand
			}
			return int64(1000 + i%1000)
		})
	}
	for _, tc := range []struct {
		n        int
		thin     bool
		diverged int64
	}{
		{n: 2000, thin: true, diverged: 0},    // 2 values beyond p99.9, 4 slow
		{n: 100000, thin: false, diverged: 2}, // 100 beyond: "all" and request=r
	} {
		c, err := report.Compare(mk("A", tc.n, 30000), mk("B", tc.n, 90000), report.CompareOptions{})
		if err != nil {
			t.Fatal(err)
		}
		m := find(c, "all", "p999_ms")
		if m.GetThin() != tc.thin || c.GetDiverged() != tc.diverged {
			t.Errorf("n=%d: p999 %v vs %v thin %v, %d diverged; want thin %v, %d diverged",
				tc.n, m.GetA(), m.GetB(), m.GetThin(), c.GetDiverged(), tc.thin, tc.diverged)
		}
		if p99 := find(c, "all", "p99_ms"); p99.GetThin() || p99.GetDiverged() {
			t.Errorf("n=%d: p99 thin %v diverged %v", tc.n, p99.GetThin(), p99.GetDiverged())
		}
	}
}

// valuesRun is a run of one series of n requests whose latencies (µs) are
// value(0) ... value(n-1).
func valuesRun(id string, n int, value func(i int) int64) *report.RunData {
	h := hist.New()
	for i := range n {
		_ = h.RecordValue(value(i))
	}
	s := &surgev1.Series{Key: &surgev1.SeriesKey{Scenario: "s", Request: "r", Status: "2xx"},
		Counters: &surgev1.Counters{Requests: int64(n)}, Latency: hist.ToProto(h)}
	return &report.RunData{ID: id, Duration: 10 * time.Second, Whole: map[string][]*surgev1.Series{"r": {s}}}
}

// A percentile diverges only when the runs' confidence intervals for it do
// not overlap: B's 6% of slow requests (a stall) move p95 past the
// tolerance in both sizes, but 200 values cannot tell that from noise
// while 20,000 can.
func TestCompareNoise(t *testing.T) {
	mk := func(id string, n int, slow bool) *report.RunData {
		return valuesRun(id, n, func(i int) int64 {
			if slow && i%50 >= 47 {
				return 100000 + int64(i%50-47)*10000 // 3 in 50: 100-120 ms
			}
			return int64(20000 + i%50*100) // 20-25 ms
		})
	}
	for _, tc := range []struct {
		n     int
		noise bool
	}{{n: 200, noise: true}, {n: 20000, noise: false}} {
		c, err := report.Compare(mk("A", tc.n, false), mk("B", tc.n, true), report.CompareOptions{Tolerance: 0.5})
		if err != nil {
			t.Fatal(err)
		}
		m := find(c, "all", "p95_ms")
		if m.GetRelDiff() < 1 || m.GetThin() {
			t.Fatalf("n=%d: p95 %v vs %v (thin %v), want B past the tolerance", tc.n, m.GetA(), m.GetB(), m.GetThin())
		}
		if m.GetNoise() != tc.noise || m.GetDiverged() == tc.noise {
			t.Errorf("n=%d: p95 A [%v, %v] B [%v, %v]: noise %v diverged %v, want noise %v",
				tc.n, m.GetALow(), m.GetAHigh(), m.GetBLow(), m.GetBHigh(), m.GetNoise(), m.GetDiverged(), tc.noise)
		}
		if !(m.GetALow() <= m.GetA() && m.GetA() <= m.GetAHigh() && m.GetBLow() <= m.GetB() && m.GetB() <= m.GetBHigh()) {
			t.Errorf("n=%d: p95 A %v not in [%v, %v] or B %v not in [%v, %v]", tc.n,
				m.GetA(), m.GetALow(), m.GetAHigh(), m.GetB(), m.GetBLow(), m.GetBHigh())
		}
		p50 := find(c, "all", "p50_ms")
		if p50.GetDiverged() || !p50.GetNoise() {
			t.Errorf("n=%d: p50 %v vs %v: diverged %v noise %v", tc.n, p50.GetA(), p50.GetB(), p50.GetDiverged(), p50.GetNoise())
		}
		var text strings.Builder
		if err := report.CompareText(&text, c); err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(text.String(), "(within noise)"); got != tc.noise {
			t.Errorf("n=%d: text says within noise: %v\n%s", tc.n, got, text.String())
		}
	}
}

// Aligned windows: B is slower only in its second window (intervals 2-3 of
// 1 s, window 2 s), so only that window's latency diverges.
func TestCompareAlignedWindows(t *testing.T) {
	mk := func(id string, slowWindow int) *report.RunData {
		d := &report.RunData{ID: id, Duration: 6 * time.Second, Interval: time.Second, Whole: map[string][]*surgev1.Series{}}
		for i := range int64(6) {
			scale := int64(1)
			if int(i/2) == slowWindow {
				scale = 4
			}
			s, _ := series("home", "2xx", 100, 1000*scale, 3000*scale, 0)
			d.Intervals = append(d.Intervals, report.Interval{Index: i, Regions: map[string][]*surgev1.Series{"us-east": {s}}})
			d.Whole["us-east"] = append(d.Whole["us-east"], s)
		}
		return d
	}
	c, err := report.Compare(mk("A", -1), mk("B", 1), report.CompareOptions{Window: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if !c.GetAligned() {
		t.Fatal("not aligned")
	}
	for _, m := range c.GetMetrics() {
		if !m.GetWindow() {
			continue
		}
		// 200 values a window: p99 and p99.9 are thin there.
		thin := m.GetMetric() == "p99_ms" || m.GetMetric() == "p999_ms"
		if m.GetThin() != thin {
			t.Errorf("window %d-%d %s: thin %v", m.GetWindowStartMs(), m.GetWindowEndMs(), m.GetMetric(), m.GetThin())
		}
		slow := m.GetWindowStartMs() == 2000 && strings.HasSuffix(m.GetMetric(), "_ms") && !thin
		if m.GetDiverged() != slow {
			t.Errorf("window %d-%d %s: diverged %v (%v vs %v)", m.GetWindowStartMs(), m.GetWindowEndMs(), m.GetMetric(), m.GetDiverged(), m.GetA(), m.GetB())
		}
		if m.GetMetric() == "rps" && m.GetA() != 100 {
			t.Errorf("window rps %v, want 100", m.GetA())
		}
	}
}
