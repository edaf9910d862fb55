package sink

import (
	"context"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/surgeload/surge/controller/store"
	surgev1 "github.com/surgeload/surge/gen/surge/v1"
	"github.com/surgeload/surge/hist"
	"github.com/surgeload/surge/internal/poll"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeInflux is an /api/v2/write endpoint on loopback that records every
// line it accepts; while down it answers 503 (or hangs, with hang set).
type fakeInflux struct {
	srv   *httptest.Server
	mu    sync.Mutex
	lines []string
	auth  []string
	down  atomic.Bool
	hang  atomic.Bool
	calls atomic.Int64
	stop  chan struct{}
}

func newFakeInflux(t *testing.T) *fakeInflux {
	t.Helper()
	f := &fakeInflux{stop: make(chan struct{})}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.calls.Add(1)
		if r.URL.Path != "/api/v2/write" {
			http.NotFound(w, r)
			return
		}
		if f.down.Load() {
			if f.hang.Load() {
				select {
				case <-r.Context().Done():
				case <-f.stop:
				}
				return
			}
			http.Error(w, `{"code":"unavailable","message":"down"}`, http.StatusServiceUnavailable)
			return
		}
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.auth = append(f.auth, r.Header.Get("Authorization")+" "+r.URL.Query().Get("bucket"))
		for l := range strings.SplitSeq(strings.TrimSpace(string(body)), "\n") {
			if l != "" {
				f.lines = append(f.lines, l)
			}
		}
		f.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.srv.Listener = l
	f.srv.Start()
	t.Cleanup(func() {
		close(f.stop)
		f.srv.Close()
	})
	return f
}

func (f *fakeInflux) snapshot() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.lines)
}

// line is a parsed line protocol line (enough of it for these tests).
type line struct {
	measurement string
	tags        map[string]string
	fields      map[string]string
	ts          int64
}

func parseLine(t *testing.T, s string) line {
	t.Helper()
	// No spaces or commas occur in our test tag values; string fields
	// (hdr, text) hold no spaces except "text", which the tests skip.
	head, rest, _ := strings.Cut(s, " ")
	lastSp := strings.LastIndexByte(rest, ' ')
	fieldsPart, tsPart := rest[:lastSp], rest[lastSp+1:]
	parts := strings.Split(head, ",")
	l := line{measurement: parts[0], tags: map[string]string{}, fields: map[string]string{}}
	for _, p := range parts[1:] {
		k, v, _ := strings.Cut(p, "=")
		l.tags[k] = v
	}
	for _, p := range splitFields(fieldsPart) {
		k, v, _ := strings.Cut(p, "=")
		l.fields[k] = v
	}
	ts, err := strconv.ParseInt(tsPart, 10, 64)
	if err != nil {
		t.Fatalf("timestamp of %q: %v", s, err)
	}
	l.ts = ts
	return l
}

func splitFields(s string) []string {
	var out []string
	inStr, start := false, 0
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\\':
			i++
		case s[i] == '"':
			inStr = !inStr
		case s[i] == ',' && !inStr:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

func testSeries(scale int64, statuses ...string) []*surgev1.Series {
	set := hist.NewSet()
	for i, st := range statuses {
		sr := set.Get(hist.Key{Scenario: "s", Request: "get", Status: st})
		for v := int64(1); v <= 50; v++ {
			_ = sr.Latency.RecordValue(v * scale * int64(i+1))
		}
		sr.Counters.Requests = 50
		if st == "5xx" {
			sr.Counters.Failures = 50
		}
	}
	return set.ToProto()
}

var testRun = RunInfo{ID: "r1", PlanName: "p", Start: time.Unix(1_700_000_000, 0), Interval: time.Second}

func intervalData(i int64) IntervalData {
	return IntervalData{
		Run: testRun, Index: i, Start: testRun.Start.Add(time.Duration(i) * time.Second), EmittedAt: time.Now(),
		Regions: map[string][]*surgev1.Series{"eu": testSeries(100, "2xx", "5xx"), "us": testSeries(1000+i, "2xx")},
	}
}

func newTestInflux(t *testing.T, f *fakeInflux, mod func(*InfluxConfig)) *Influx {
	t.Helper()
	cfg := InfluxConfig{URL: f.srv.URL, Bucket: "surge/autogen", Token: "u:secret", RetryMin: 20 * time.Millisecond, RetryMax: 100 * time.Millisecond, Timeout: time.Second}
	if mod != nil {
		mod(&cfg)
	}
	s, err := NewInflux(cfg)
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

func httpLines(t *testing.T, raw []string) []line {
	var out []line
	for _, s := range raw {
		if strings.HasPrefix(s, MeasurementHTTP+",") {
			out = append(out, parseLine(t, s))
		}
	}
	return out
}

func TestInfluxPointsTagsAndRewrite(t *testing.T) {
	f := newFakeInflux(t)
	s := newTestInflux(t, f, nil)
	d := intervalData(3)
	d.Progress = &surgev1.Progress{All: &surgev1.RegionProgress{Region: "all", TargetRps: 100, AchievedRps: 99},
		Thresholds: []*surgev1.ThresholdResult{{Metric: "http_req_duration", Expr: "p(95)<500", Ok: true, Value: 12}}}
	s.Interval(d)
	poll.Eventually(t, 5*time.Second, "first write", func() bool { return len(f.snapshot()) > 0 })

	got := httpLines(t, f.snapshot())
	// eu: 2 series, us: 1 series, all: 2 series (2xx merged across regions).
	if len(got) != 5 {
		t.Fatalf("%d surge_http lines, want 5:\n%s", len(got), strings.Join(f.snapshot(), "\n"))
	}
	byKey := map[string]line{}
	for _, l := range got {
		if l.ts != d.Start.UnixNano() {
			t.Errorf("timestamp %d, want interval start %d", l.ts, d.Start.UnixNano())
		}
		for _, k := range []string{"run", "plan", "scenario", "request", "region", "status"} {
			if l.tags[k] == "" {
				t.Errorf("line without tag %s: %v", k, l.tags)
			}
		}
		if _, ok := l.tags["flow"]; ok {
			t.Errorf("empty flow written as a tag: %v", l.tags)
		}
		byKey[l.tags["region"]+"/"+l.tags["status"]] = l
	}
	all2xx := byKey["all/2xx"]
	if all2xx.fields["count"] != "100i" {
		t.Errorf("all/2xx count %s, want 100i", all2xx.fields["count"])
	}
	if byKey["eu/5xx"].fields["errors"] != "50i" {
		t.Errorf("eu/5xx errors %s", byKey["eu/5xx"].fields["errors"])
	}
	// hdr decodes to the exact merge of the regions' histograms.
	raw, err := base64.StdEncoding.DecodeString(strings.Trim(all2xx.fields["hdr"], `"`))
	if err != nil {
		t.Fatal(err)
	}
	h, err := hist.DecodeV2(raw)
	if err != nil {
		t.Fatal(err)
	}
	want := hist.New()
	for _, region := range []string{"eu", "us"} {
		if _, err := hist.MergeProto(want, d.Regions[region][0].GetLatency()); err != nil {
			t.Fatal(err)
		}
	}
	if h.TotalCount() != want.TotalCount() || h.ValueAtQuantile(99) != want.ValueAtQuantile(99) || h.Max() != want.Max() {
		t.Errorf("decoded hdr: count %d p99 %d max %d; want %d %d %d", h.TotalCount(), h.ValueAtQuantile(99), h.Max(), want.TotalCount(), want.ValueAtQuantile(99), want.Max())
	}
	if p := all2xx.fields["p99"]; p != strconv.FormatInt(want.ValueAtQuantile(99), 10)+"i" {
		t.Errorf("p99 field %s, want %d", p, want.ValueAtQuantile(99))
	}
	joined := strings.Join(f.snapshot(), "\n")
	for _, m := range []string{MeasurementInterval + ",", MeasurementThreshold + ",", MeasurementElapsed + ","} {
		if !strings.Contains(joined, m) {
			t.Errorf("no %s point", m)
		}
	}
	f.mu.Lock()
	if a := f.auth[0]; a != "Token u:secret surge/autogen" {
		t.Errorf("auth/bucket %q", a)
	}
	f.mu.Unlock()

	// A rewrite (late snapshot) writes the same series at the same timestamp.
	before := len(f.snapshot())
	re := d
	re.Progress, re.Rewrite = nil, true
	re.Regions = map[string][]*surgev1.Series{"eu": testSeries(100, "2xx", "5xx"), "us": testSeries(7, "2xx")}
	s.Interval(re)
	poll.Eventually(t, 5*time.Second, "rewrite", func() bool { return len(f.snapshot()) > before })
	again := httpLines(t, f.snapshot()[before:])
	if len(again) != 5 {
		t.Fatalf("rewrite: %d lines", len(again))
	}
	for _, l := range again {
		old, ok := byKey[l.tags["region"]+"/"+l.tags["status"]]
		if !ok || !maps2Equal(old.tags, l.tags) || old.ts != l.ts {
			t.Errorf("rewrite point %v@%d does not match an original series+timestamp", l.tags, l.ts)
		}
	}
}

func maps2Equal(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestInfluxOutageSpillsAndBackfillsInOrder(t *testing.T) {
	f := newFakeInflux(t)
	st, err := store.Open(filepath.Join(t.TempDir(), "runs.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	f.down.Store(true)
	f.hang.Store(true) // writes hang until their timeout: worst case for the caller
	s := newTestInflux(t, f, func(c *InfluxConfig) {
		c.Queue, c.Spill, c.Timeout, c.BatchLines = 3, st, 3*time.Second, 20
	})
	const n = 40
	var worst time.Duration
	for i := range int64(n) {
		t0 := time.Now()
		s.Interval(intervalData(i))
		worst = max(worst, time.Since(t0))
	}
	// The caller (the merge loop) never waits for InfluxDB: a blocked call
	// would take the write timeout (3s); -race on a busy machine is slow.
	if worst > time.Second {
		t.Errorf("Interval blocked for %v while InfluxDB hung", worst)
	}
	poll.Eventually(t, 5*time.Second, "spill", func() bool { return s.Stats().SpillPending > 0 })
	if n, _ := st.SpillLen(DefaultInfluxSpillName); n == 0 {
		t.Fatal("nothing spilled to the store")
	}
	f.hang.Store(false)
	f.down.Store(false)
	poll.Eventually(t, 20*time.Second, "backfill", func() bool {
		st := s.Stats()
		return st.SpillPending == 0 && st.Queued == 0 && len(httpLines(t, f.snapshot())) == n*5
	})
	got := httpLines(t, f.snapshot())
	var last int64
	seen := map[int64]int{}
	for _, l := range got {
		if l.ts < last {
			t.Fatalf("points out of order: %d after %d", l.ts, last)
		}
		last = l.ts
		seen[l.ts]++
	}
	for i := range int64(n) {
		if c := seen[testRun.Start.Add(time.Duration(i)*time.Second).UnixNano()]; c != 5 {
			t.Errorf("interval %d: %d points, want 5", i, c)
		}
	}
	stats := s.Stats()
	if stats.Dropped != 0 || stats.Spilled == 0 || stats.Failures == 0 {
		t.Errorf("stats %+v: want no drops, some spills and failures", stats)
	}
	if n, _ := st.SpillLen(DefaultInfluxSpillName); n != 0 {
		t.Errorf("spill queue holds %d after backfill", n)
	}
}

func TestInfluxWithoutSpillCountsDrops(t *testing.T) {
	f := newFakeInflux(t)
	f.down.Store(true)
	s := newTestInflux(t, f, func(c *InfluxConfig) { c.Queue = 2 })
	for i := range int64(6) {
		s.Interval(intervalData(i))
	}
	poll.Eventually(t, 5*time.Second, "drops counted", func() bool { return s.Stats().Dropped > 0 })
	if notes := s.Notes(testRun.ID); len(notes) == 0 || !strings.Contains(notes[0], "dropped") {
		t.Errorf("notes %q", notes)
	}
}

func TestInfluxCloseSpillsWhatIsLeft(t *testing.T) {
	f := newFakeInflux(t)
	st, err := store.Open(filepath.Join(t.TempDir(), "runs.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	f.down.Store(true)
	cfg := InfluxConfig{URL: f.srv.URL, Bucket: "b", Spill: st, RetryMin: 10 * time.Millisecond, RetryMax: 20 * time.Millisecond}
	s, err := NewInflux(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := range int64(3) {
		s.Interval(intervalData(i))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_ = s.Close(ctx)
	if n, _ := st.SpillLen(DefaultInfluxSpillName); n != 3 {
		t.Fatalf("spilled %d at close, want 3", n)
	}
	// The next sink backfills it.
	f.down.Store(false)
	s2, err := NewInflux(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close(context.Background())
	poll.Eventually(t, 5*time.Second, "backfill", func() bool { return len(httpLines(t, f.snapshot())) == 15 })
}

func TestRunStoreSink(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "runs.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s := NewRunStore(st, 0, nil)
	for i := range int64(3) {
		s.Interval(intervalData(i))
	}
	re := intervalData(1)
	re.Rewrite = true
	re.Regions = map[string][]*surgev1.Series{"eu": testSeries(9, "2xx")}
	s.Interval(re)
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	recs, err := st.Intervals(testRun.ID)
	if err != nil || len(recs) != 3 {
		t.Fatalf("records %d %v", len(recs), err)
	}
	if len(recs[1].Regions) != 1 || recs[1].Regions["eu"][0].GetCounters().GetRequests() != 50 {
		t.Errorf("rewrite not stored: %v", recs[1].Regions)
	}
}

func TestInfluxConfigValidate(t *testing.T) {
	for _, c := range []InfluxConfig{{URL: "", Bucket: "b"}, {URL: "ftp://x", Bucket: "b"}, {URL: "http://u:p@h:1", Bucket: "b"}, {URL: "http://h:1"}} {
		if c.Validate() == nil {
			t.Errorf("%+v: no error", c)
		}
	}
	var sb strings.Builder
	_ = (InfluxConfig{URL: "http://h:1", Token: "secret"}).LogValue().String()
	sb.WriteString((InfluxConfig{Token: "secret"}).LogValue().String())
	if strings.Contains(sb.String(), "secret") {
		t.Errorf("token in log value: %s", sb.String())
	}
}
