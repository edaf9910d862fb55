//go:build e2e

package e2e

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/surgeload/surge/controller/store"
	"github.com/surgeload/surge/hist"
	"github.com/surgeload/surge/internal/ciskip"
	"github.com/surgeload/surge/internal/freeport"
	"github.com/surgeload/surge/internal/poll"
)

// influxEnv is the InfluxDB that scripts/influxdb.sh started (make e2e).
type influxEnv struct {
	url, bucket, db, script string
}

func needInflux(t *testing.T) influxEnv {
	t.Helper()
	e := influxEnv{url: os.Getenv("SURGE_INFLUX_URL"), bucket: os.Getenv("SURGE_INFLUX_BUCKET"),
		db: os.Getenv("SURGE_INFLUX_DB"), script: os.Getenv("SURGE_INFLUX_SCRIPT")}
	if e.url == "" {
		ciskip.Skipf(t, "InfluxDB: SURGE_INFLUX_URL is unset: run with `make e2e`, which starts a real InfluxDB with scripts/influxdb.sh")
	}
	return e
}

type influxSeries struct {
	Name    string            `json:"name"`
	Tags    map[string]string `json:"tags"`
	Columns []string          `json:"columns"`
	Values  [][]any           `json:"values"`
}

// query runs InfluxQL against the 1.8 /query endpoint (timestamps in ns).
func (e influxEnv) query(t *testing.T, q string) ([]influxSeries, error) {
	t.Helper()
	v := url.Values{"db": {e.db}, "q": {q}, "epoch": {"ns"}}
	resp, err := http.Get(e.url + "/query?" + v.Encode())
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out struct {
		Results []struct {
			Series []influxSeries `json:"series"`
			Error  string         `json:"error"`
		} `json:"results"`
		Error string `json:"error"`
	}
	dec := json.NewDecoder(resp.Body)
	dec.UseNumber()
	if err := dec.Decode(&out); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	if out.Error != "" {
		return nil, fmt.Errorf("%s", out.Error)
	}
	var series []influxSeries
	for _, r := range out.Results {
		if r.Error != "" {
			return nil, fmt.Errorf("%s", r.Error)
		}
		series = append(series, r.Series...)
	}
	return series, nil
}

// httpPoint is one surge_http point.
type httpPoint struct {
	ts    int64
	tags  map[string]string
	count int64
	hdr   string
}

func (e influxEnv) httpPoints(t *testing.T, run string) []httpPoint {
	t.Helper()
	series, err := e.query(t, fmt.Sprintf(`SELECT "count", "hdr" FROM "surge_http" WHERE "run" = '%s' GROUP BY *`, run))
	if err != nil {
		t.Fatalf("query surge_http: %v", err)
	}
	var out []httpPoint
	for _, s := range series {
		for _, v := range s.Values {
			ts, _ := v[0].(json.Number).Int64()
			c, _ := v[1].(json.Number).Int64()
			h, _ := v[2].(string)
			out = append(out, httpPoint{ts: ts, tags: s.Tags, count: c, hdr: h})
		}
	}
	return out
}

// startInfluxCluster is startCluster with the controller writing to e.
func startInfluxCluster(t *testing.T, e influxEnv, extra []string, targetArgs ...string) *cluster {
	c := &cluster{ctrl: freeport.Addr(t), gossip: freeport.Addr(t), target: freeport.Addr(t), dataDir: t.TempDir()}
	start(t, "target", append([]string{"target", "--listen", c.target}, targetArgs...)...)
	args := append([]string{"controller", "--listen", c.ctrl, "--gossip", c.gossip, "--data-dir", c.dataDir,
		"--influx-url", e.url, "--influx-bucket", e.bucket}, extra...)
	c.controller = start(t, "controller", args...)
	poll.EventuallyErr(t, 30*time.Second, "controller answers", func() error {
		if out, code := surge(t, "runs", "--controller", c.ctrl); code != 0 {
			return fmt.Errorf("exit %d: %s", code, out)
		}
		return nil
	})
	agents := [][2]string{{"a1", "us-east"}, {"a2", "us-east"}, {"a3", "eu-west"}}
	for _, a := range agents {
		start(t, "agent "+a[0], "agent", "--id", a[0], "--region", a[1], "--join", c.gossip,
			"--gossip", "127.0.0.1:0", "--allow", "127.0.0.1")
	}
	waitConnected(t, c.ctrl, len(agents))
	return c
}

func ratePlan(target string, rate int, dur string) string {
	return fmt.Sprintf(`name: e2e-influx
regions:
  us-east: {weight: 0.6}
  eu-west: {weight: 0.4}
scenarios:
  steady:
    executor: constant-arrival-rate
    rate: %d
    duration: %s
    pre_allocated_vus: 50
    max_vus: 100
    requests:
      - name: hello
        url: http://%s/hello
thresholds:
  http_req_duration: ["p(95)<5000"]
`, rate, dur, target)
}

// storedIntervals stops the controller (its sinks drain) and reads the run
// store's interval records.
func storedIntervals(t *testing.T, c *cluster, run string) []store.IntervalRecord {
	t.Helper()
	c.controller.stop(t)
	st, err := store.Open(filepath.Join(c.dataDir, "runs.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	recs, err := st.Intervals(run)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) == 0 {
		t.Fatalf("no interval records stored for %s", run)
	}
	return recs
}

// expectedPoints is every (timestamp, region, series key) the run store
// says was emitted, regions and "all".
func expectedPoints(recs []store.IntervalRecord) map[string]bool {
	want := map[string]bool{}
	for _, r := range recs {
		for region, list := range r.Regions {
			for _, s := range list {
				k := s.GetKey()
				for _, reg := range []string{region, "all"} {
					want[fmt.Sprintf("%d|%s|%s|%s|%s|%s", r.Start.UnixNano(), reg, k.GetScenario(), k.GetFlow(), k.GetRequest(), k.GetStatus())] = true
				}
			}
		}
	}
	return want
}

func pointKey(p httpPoint) string {
	return fmt.Sprintf("%d|%s|%s|%s|%s|%s", p.ts, p.tags["region"], p.tags["scenario"], p.tags["flow"], p.tags["request"], p.tags["status"])
}

// checkPoints: exactly the expected points, one each.
func checkPoints(t *testing.T, pts []httpPoint, want map[string]bool) {
	t.Helper()
	seen := map[string]int{}
	for _, p := range pts {
		seen[pointKey(p)]++
	}
	for k := range want {
		if seen[k] != 1 {
			t.Errorf("point %s: %d in InfluxDB, want 1", k, seen[k])
		}
	}
	for k := range seen {
		if !want[k] {
			t.Errorf("point %s in InfluxDB was never emitted", k)
		}
	}
}

// checkHelloPoints holds the steady scenario's points to sources other
// than the controller: ratePlan's arithmetic (rate/s for secs seconds, 60%
// in us-east and 40% in eu-west by weight, each 1s interval with requests)
// and the target's own count of /hello.
func checkHelloPoints(t *testing.T, pts []httpPoint, target int64, rate, secs int64) {
	t.Helper()
	byRegion := map[string]int64{}
	stamps := map[int64]bool{}
	for _, p := range pts {
		if p.tags["scenario"] != "steady" || p.tags["request"] != "hello" {
			continue
		}
		byRegion[p.tags["region"]] += p.count
		if p.tags["region"] == "all" {
			stamps[p.ts] = true
		}
	}
	t.Logf("measured: /hello points count %v, target %d, %d intervals", byRegion, target, len(stamps))
	n, us := rate*secs, rate*secs*6/10
	if byRegion["all"] != n || target != n || byRegion["us-east"] != us || byRegion["eu-west"] != n-us {
		t.Errorf("/hello in InfluxDB: all %d, us-east %d, eu-west %d; target %d; plan %d = %d + %d",
			byRegion["all"], byRegion["us-east"], byRegion["eu-west"], target, n, us, n-us)
	}
	// One point per 1s interval, on the interval grid, none missing.
	var first, last int64
	for ts := range stamps {
		if first == 0 || ts < first {
			first = ts
		}
		last = max(last, ts)
	}
	for ts := range stamps {
		if (ts-first)%int64(time.Second) != 0 {
			t.Errorf("point at %d off the 1s grid from the first, %d", ts, first)
		}
	}
	if n := (last-first)/int64(time.Second) + 1; int64(len(stamps)) < secs || int64(len(stamps)) != n {
		t.Errorf("/hello points in %d intervals over %d grid steps; the plan runs %d", len(stamps), n, secs)
	}
}

// TestInfluxRunPointsAndDashboards: a 3-agent, 2-region run writes exactly one
// surge_http point per interval, series and region (+all); the counts add up
// to the run's requests; merging every hdr field gives the summary's
// percentiles exactly; every query of every generated dashboard returns data.
func TestInfluxRunPointsAndDashboards(t *testing.T) {
	e := needInflux(t)
	c := startInfluxCluster(t, e, nil, "--latency", "uniform(1ms,5ms)", "--error-rate", "0.05")
	// A websocket scenario beside the HTTP one, so the WebSocket panels
	// have data too.
	ws := fmt.Sprintf(`  chat:
    executor: constant-vus
    vus: 10
    duration: 6s
    flows:
      chat:
        steps:
          - websocket:
              name: chat
              url: ws://%s/ws
              hold: 2s
              send: {message: "hi {{seq}}", rate: 5}
              expect: {timeout: 1s}
`, c.target)
	plan := writePlan(t, "influx.yaml", strings.Replace(ratePlan(c.target, 100, "6s"), "thresholds:", ws+"thresholds:", 1))
	jsonPath := filepath.Join(t.TempDir(), "summary.json")
	out, code := surge(t, "run", plan, "--controller", c.ctrl, "--json", jsonPath)
	if code != 0 {
		t.Fatalf("surge run exited %d:\n%s", code, out)
	}
	s := readSummary(t, jsonPath)
	ts := readTargetStats(t, c.target)
	recs := storedIntervals(t, c, s.RunID)
	want := expectedPoints(recs)
	pts := e.httpPoints(t, s.RunID)
	checkPoints(t, pts, want)
	checkHelloPoints(t, pts, ts.ByPath["/hello"], 100, 6)

	var all, regions int64
	merged := hist.New()
	for _, p := range pts {
		if p.tags["region"] != "all" {
			regions += p.count
			continue
		}
		all += p.count
		raw, err := base64.StdEncoding.DecodeString(p.hdr)
		if err != nil {
			t.Fatalf("hdr of %s: %v", pointKey(p), err)
		}
		h, err := hist.DecodeV2(raw)
		if err != nil {
			t.Fatalf("hdr of %s: %v", pointKey(p), err)
		}
		merged.Merge(h)
	}
	got := hist.Summarize(merged)
	t.Logf("measured: %d intervals, %d surge_http points, count(all) %d, count(regions) %d, summary requests %d; merged hdr p50 %d p99 %d max %d, summary p50 %d p99 %d max %d",
		len(recs), len(pts), all, regions, s.Requests, got.GetP50(), got.GetP99(), got.GetMax(), s.LatencyUS.P50, s.LatencyUS.P99, s.LatencyUS.Max)
	if all != s.Requests || regions != s.Requests {
		t.Errorf("sum of count: all %d, regions %d; run requests %d", all, regions, s.Requests)
	}
	l := s.LatencyUS
	if got.GetP50() != l.P50 || got.GetP90() != l.P90 || got.GetP95() != l.P95 || got.GetP99() != l.P99 ||
		got.GetP999() != l.P999 || got.GetMax() != l.Max || got.GetMin() != l.Min {
		t.Errorf("merged hdr %+v, summary %+v", got, l)
	}

	// Every dashboard query, variables filled from this run.
	region := "us-east"
	vars := map[string]string{
		"$run": s.RunID, "$run2": s.RunID, "$region": region, "$scenario": "steady", "$request": "hello",
		"$__interval": "1s",
	}
	start := recs[0].Start
	realTime := fmt.Sprintf("time >= %dms AND time <= %dms", start.Add(-time.Minute).UnixMilli(), time.Now().UnixMilli())
	boards, _ := filepath.Glob(filepath.Join("..", "..", "..", "deploy", "grafana", "dashboards", "*.json"))
	// The prometheus-* dashboards are PromQL: TestPrometheusRemoteWrite runs them.
	files := slices.DeleteFunc(boards, func(f string) bool { return strings.HasPrefix(filepath.Base(f), "prometheus-") })
	if len(files) != 3 {
		t.Fatalf("InfluxDB dashboards: %v", files)
	}
	queries := 0
	for _, f := range files {
		tf := realTime
		if strings.HasSuffix(f, "compare.json") {
			tf = "time >= 0 AND time <= 900s"
		}
		for _, q := range dashboardQueries(t, f) {
			full := strings.ReplaceAll(q, "$timeFilter", tf)
			for k, v := range vars {
				full = strings.ReplaceAll(full, k, regexp.QuoteMeta(v))
			}
			series, err := e.query(t, full)
			queries++
			if err != nil {
				t.Errorf("%s: %s: %v", filepath.Base(f), full, err)
				continue
			}
			if len(series) == 0 || len(series[0].Values) == 0 {
				t.Errorf("%s: no data: %s", filepath.Base(f), full)
			}
		}
	}
	t.Logf("measured: %d dashboard queries ran, each with data", queries)
}

// dashboardQueries lists a dashboard's panel, variable and annotation queries.
func dashboardQueries(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Targets []struct {
				Query string `json:"query"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Query any `json:"query"`
			} `json:"list"`
		} `json:"templating"`
		Annotations struct {
			List []struct {
				Target struct {
					Query string `json:"query"`
				} `json:"target"`
			} `json:"list"`
		} `json:"annotations"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var out []string
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			out = append(out, tg.Query)
		}
	}
	for _, v := range d.Templating.List {
		if s, ok := v.Query.(string); ok {
			out = append(out, s)
		}
	}
	for _, a := range d.Annotations.List {
		if a.Target.Query != "" {
			out = append(out, a.Target.Query)
		}
	}
	return out
}

// TestInfluxOutage: InfluxDB is killed for 30 s in the middle of a run and
// started again; every interval's points arrive in the end (the controller
// spilled to its store and backfilled): the plan's 1350 arrivals, split by
// region weight and as the target counted them, one point per interval;
// and the controller emitted every interval on time throughout.
func TestInfluxOutage(t *testing.T) {
	e := needInflux(t)
	if e.script == "" {
		ciskip.Skipf(t, "InfluxDB: SURGE_INFLUX_SCRIPT is unset: run with `make e2e`")
	}
	c := startInfluxCluster(t, e, []string{"--influx-queue", "4"}, "--latency", "uniform(1ms,3ms)")
	plan := writePlan(t, "outage.yaml", ratePlan(c.target, 30, "45s"))
	jsonPath := filepath.Join(t.TempDir(), "summary.json")
	done := make(chan struct{})
	var out string
	var code int
	go func() {
		defer close(done)
		out, code = surge(t, "run", plan, "--controller", c.ctrl, "--json", jsonPath)
	}()
	script := func(arg string) {
		if b, err := exec.Command(e.script, arg).CombinedOutput(); err != nil {
			t.Fatalf("influxdb.sh %s: %v\n%s", arg, err, b)
		}
	}
	// Kill InfluxDB once the run is writing, keep it down for 30 s.
	poll.EventuallyErr(t, 30*time.Second, "first points", func() error {
		s, err := e.query(t, `SELECT count("count") FROM "surge_http" WHERE time > now() - 1m`)
		if err != nil || len(s) == 0 {
			return fmt.Errorf("none yet (%v)", err)
		}
		return nil
	})
	script("kill")
	killed := time.Now()
	t.Cleanup(func() { _ = exec.Command(e.script, "restart").Run() }) // if the test fails while down
	outage := time.NewTimer(30 * time.Second)
	select {
	case <-outage.C:
	case <-done:
		t.Fatalf("run ended during the outage: exit %d\n%s", code, out)
	}
	script("restart")
	t.Logf("measured: InfluxDB down for %v", time.Since(killed).Round(time.Millisecond))
	<-done
	if code != 0 {
		t.Fatalf("surge run exited %d:\n%s", code, out)
	}
	s := readSummary(t, jsonPath)
	// The backlog drains: wait until the count of points stops short no more.
	var pts []httpPoint
	poll.EventuallyErr(t, 60*time.Second, "backlog written", func() error {
		pts = e.httpPoints(t, s.RunID)
		var all int64
		for _, p := range pts {
			if p.tags["region"] == "all" {
				all += p.count
			}
		}
		if all != s.Requests {
			return fmt.Errorf("count(all) %d of %d requests", all, s.Requests)
		}
		return nil
	})
	pts = e.httpPoints(t, s.RunID)
	checkHelloPoints(t, pts, readTargetStats(t, c.target).ByPath["/hello"], 30, 45)
	recs := storedIntervals(t, c, s.RunID)
	checkPoints(t, pts, expectedPoints(recs))
	var worst time.Duration
	for _, r := range recs {
		lag := r.EmittedAt.Sub(r.Start.Add(time.Second))
		worst = max(worst, lag)
	}
	log := c.controller.output()
	t.Logf("measured: %d intervals, %d points; worst emit lag %v (interval end → emitted); spilled: %v, backlog written: %v",
		len(recs), len(pts), worst, strings.Contains(log, "spilling to the run store"), strings.Contains(log, "backlog written"))
	if int64(len(recs)) < 45 {
		t.Errorf("%d intervals stored, want ≥ 45", len(recs))
	}
	// Emission waits for every agent or the 2 s grace; an InfluxDB stall
	// would show as lag far beyond it.
	if worst > 3*time.Second {
		t.Errorf("worst emit lag %v: emission stalled", worst)
	}
	if !strings.Contains(log, "spilling to the run store") || !strings.Contains(log, "backlog written") {
		t.Errorf("controller did not spill and backfill:\n%s", log)
	}
}
