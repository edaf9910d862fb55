//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/surgeload/surge/controller/report"
	"github.com/surgeload/surge/internal/ciskip"
	"github.com/surgeload/surge/internal/freeport"
	"github.com/surgeload/surge/internal/poll"
)

// promEnv is the Prometheus that scripts/prometheus.sh started (make e2e).
type promEnv struct{ url, writeURL string }

func needProm(t *testing.T) promEnv {
	t.Helper()
	e := promEnv{url: os.Getenv("SURGE_PROM_URL"), writeURL: os.Getenv("SURGE_PROM_WRITE_URL")}
	if e.url == "" || e.writeURL == "" {
		ciskip.Skipf(t, "Prometheus: SURGE_PROM_URL is unset: run with `make e2e`, which starts a real Prometheus with scripts/prometheus.sh")
	}
	return e
}

// query runs an instant PromQL query now and returns its values by region
// (or by http_route).
func (e promEnv) query(q string) (map[string]float64, error) { return e.queryAt(q, time.Now()) }

// queryAt runs an instant PromQL query at at.
func (e promEnv) queryAt(q string, at time.Time) (map[string]float64, error) {
	resp, err := http.Get(e.url + "/api/v1/query?" + url.Values{"query": {q}, "time": {strconv.FormatInt(at.Unix(), 10)}}.Encode())
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("query %s: %w", q, err)
	}
	if out.Status != "success" {
		return nil, fmt.Errorf("query %s: %s", q, out.Error)
	}
	res := map[string]float64{}
	for _, r := range out.Data.Result {
		s, _ := r.Value[1].(string)
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("query %s: value %v", q, r.Value)
		}
		res[r.Metric["region"]+r.Metric["http_route"]] = v
	}
	return res, nil
}

// A three-region run written by remote write to a real Prometheus: PromQL
// over it gives exactly the summary's requests and failures, overall and
// per region, with the run's id and tags as labels, and the native
// histogram's p99 lies within its bucket error of surge's exact p99.
func TestPrometheusRemoteWrite(t *testing.T) {
	e := needProm(t)
	c := startCluster(t, [][2]string{{"a1", "us-east"}, {"a2", "eu-west"}, {"a3", "ap-south"}},
		"--prometheus-remote-write", e.writeURL)
	plan := writePlan(t, "prom.yaml", fmt.Sprintf(`name: prom
base_url: http://%s
regions: {us-east: {weight: 2}, eu-west: {weight: 1}, ap-south: {weight: 1}}
scenarios:
  api:
    executor: constant-arrival-rate
    rate: 100
    duration: 4s
    requests:
      - {name: items, url: "/api/items?fail_rate=0.1&delay=uniform(1ms,20ms)"}
`, c.target))
	out := filepath.Join(t.TempDir(), "prom.json")
	if text, code := surge(t, "run", plan, "--controller", c.ctrl, "-q", "--json", out, "--tag", "environment=staging"); code != 0 {
		t.Fatalf("surge run exited %d:\n%s", code, text)
	}
	s := readSummary(t, out)
	sel := fmt.Sprintf(`{run_id=%q, environment="staging"}`, s.RunID)
	var byRegion map[string]float64
	poll.EventuallyErr(t, 30*time.Second, "Prometheus holds the run's requests", func() error {
		all, err := e.query(`sum(max_over_time(surge_http_requests_total` + sel + `[1h]))`)
		if err != nil {
			return err
		}
		if all[""] != float64(s.Requests) {
			return fmt.Errorf("PromQL says %v requests, the summary %d", all, s.Requests)
		}
		byRegion, err = e.query(`sum by (region) (max_over_time(surge_http_requests_total` + sel + `[1h]))`)
		return err
	})
	failures, err := e.query(`sum by (region) (max_over_time(surge_http_request_failures_total` + sel + `[1h]))`)
	if err != nil {
		t.Fatal(err)
	}
	for region, st := range s.Regions {
		if byRegion[region] != float64(st.Requests) || failures[region] != float64(st.Failures) {
			t.Errorf("region %s: PromQL %v requests, %v failures; summary %d, %d", region, byRegion[region], failures[region], st.Requests, st.Failures)
		}
	}
	if s.Failures == 0 || len(s.Regions) != 3 {
		t.Fatalf("run %s: %d failures in %d regions; the plan fails 10%% in three", s.RunID, s.Failures, len(s.Regions))
	}
	q, err := e.query(`histogram_quantile(0.99, sum(last_over_time(surge_http_request_duration_seconds` + sel + `[1h])))`)
	if err != nil {
		t.Fatal(err)
	}
	exact := float64(s.LatencyUS.P99) / 1e6
	ratio := q[""] / exact
	// Schema 5: a bucket spans 2^(1/32) (2.2%); a quantile's rank at a
	// bucket's edge may land in the next one.
	if bound := math.Exp2(2.0 / 32); !(ratio >= 1/bound && ratio <= bound) {
		t.Errorf("histogram_quantile(0.99) = %.6fs, surge's p99 %.6fs: ratio %.4f beyond the native buckets' error", q[""], exact, ratio)
	}
	t.Logf("measured: run %s: %d requests, %d failures; PromQL p99 %.3f ms vs surge's %.3f ms (ratio %.4f)",
		s.RunID, s.Requests, s.Failures, q[""]*1e3, exact*1e3, ratio)
	ended, _ := time.Parse(time.RFC3339Nano, s.EndedAt)
	checkPromDashboard(t, e, s.RunID, ended)
}

// checkPromDashboard runs every query of the Prometheus dashboard
// (deploy/grafana/dashboards/prometheus-overview.json) for run at its end,
// the dashboard's variables set to the run and all regions: each returns
// data.
func checkPromDashboard(t *testing.T, e promEnv, run string, end time.Time) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "deploy", "grafana", "dashboards", "prometheus-overview.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Name  string `json:"name"`
				Query string `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	vars := strings.NewReplacer("$run_id", run, "$region", ".*", "$__rate_interval", "15s")
	var queries []string
	for _, v := range d.Templating.List { // label_values(SELECTOR, LABEL)
		sel, label, ok := strings.Cut(strings.TrimSuffix(strings.TrimPrefix(v.Query, "label_values("), ")"), ", ")
		if !ok {
			t.Errorf("variable %s: query %q is not label_values(SELECTOR, LABEL)", v.Name, v.Query)
			continue
		}
		queries = append(queries, "count by ("+label+") (last_over_time("+vars.Replace(sel)+"[1h]))")
	}
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			queries = append(queries, vars.Replace(tg.Expr))
		}
	}
	if len(queries) < 8 {
		t.Fatalf("the dashboard has %d queries", len(queries))
	}
	for _, q := range queries {
		res, err := e.queryAt(q, end)
		if err != nil || len(res) == 0 {
			t.Errorf("dashboard query returns no data (%v): %s", err, q)
		}
	}
}

// TestPrometheusOutage: Prometheus is killed for 30 s in the middle of a
// run and started again. The controller queued and spilled what it could
// not write and backfilled it, in order, into Prometheus's out-of-order
// window: every interval is there once (each series has one point per
// stored interval), the counters sum exactly to the summary's requests,
// and the summary says the writes failed and came late.
func TestPrometheusOutage(t *testing.T) {
	e := needProm(t)
	script := os.Getenv("SURGE_PROM_SCRIPT")
	if script == "" {
		ciskip.Skipf(t, "Prometheus: SURGE_PROM_SCRIPT is unset: run with `make e2e`")
	}
	c := startCluster(t, [][2]string{{"a1", "us-east"}, {"a2", "eu-west"}}, "--prometheus-remote-write", e.writeURL)
	plan := writePlan(t, "outage.yaml", ratePlan(c.target, 30, "45s"))
	jsonPath := filepath.Join(t.TempDir(), "summary.json")
	done := make(chan struct{})
	var out string
	var code int
	go func() {
		defer close(done)
		out, code = surge(t, "run", plan, "--controller", c.ctrl, "--json", jsonPath)
	}()
	run := func(arg string) {
		if b, err := exec.Command(script, arg).CombinedOutput(); err != nil {
			t.Fatalf("prometheus.sh %s: %v\n%s", arg, err, b)
		}
	}
	poll.EventuallyErr(t, 30*time.Second, "first points", func() error {
		v, err := e.query(`sum(surge_http_requests_total{plan="e2e-influx"})`)
		if err != nil || len(v) == 0 {
			return fmt.Errorf("none yet (%v)", err)
		}
		return nil
	})
	run("kill")
	killed := time.Now()
	t.Cleanup(func() { _ = exec.Command(script, "restart").Run() }) // if the test fails while down
	outage := time.NewTimer(30 * time.Second)
	select {
	case <-outage.C:
	case <-done:
		t.Fatalf("run ended during the outage: exit %d\n%s", code, out)
	}
	run("restart")
	t.Logf("measured: Prometheus down for %v", time.Since(killed).Round(time.Millisecond))
	<-done
	if code != 0 {
		t.Fatalf("surge run exited %d:\n%s", code, out)
	}
	s := readSummary(t, jsonPath)
	sel := fmt.Sprintf(`{run_id=%q}`, s.RunID)
	poll.EventuallyErr(t, 60*time.Second, "backlog written", func() error {
		v, err := e.query(`sum(max_over_time(surge_http_requests_total` + sel + `[1h]))`)
		if err != nil {
			return err
		}
		if v[""] != float64(s.Requests) {
			return fmt.Errorf("PromQL says %v requests, the summary %d", v, s.Requests)
		}
		return nil
	})
	points, err := e.query(`max(count_over_time(surge_http_requests_total` + sel + `[1h]))`)
	if err != nil {
		t.Fatal(err)
	}
	recs := storedIntervals(t, c, s.RunID)
	if points[""] != float64(len(recs)) {
		t.Errorf("a series has %v points, the run %d intervals: want one point per interval", points[""], len(recs))
	}
	if notes := strings.Join(s.Notes, "\n"); !strings.Contains(notes, "writes to Prometheus failed during this run") {
		t.Errorf("the summary does not say the writes failed:\n%s", notes)
	}
	t.Logf("measured: %d requests, %d intervals, notes: %q", s.Requests, len(recs), s.Notes)
}

// Production as the baseline: "production" is `surge target --metrics`
// under a run's load (a known latency, uniform 21–29 ms), scraped by the
// real Prometheus. A staging run against an equal target is within
// tolerance of the figures compare reads from Prometheus over the
// production run's range; one against a target twice as slow diverges on
// exactly the latencies; and the baseline's p99 is what PromQL returns for
// the same range.
func TestPrometheusBaseline(t *testing.T) {
	e := needProm(t)
	script := os.Getenv("SURGE_PROM_SCRIPT")
	if script == "" {
		ciskip.Skipf(t, "Prometheus: SURGE_PROM_SCRIPT is unset: run with `make e2e`")
	}
	prod, equal, slow := freeport.Addr(t), freeport.Addr(t), freeport.Addr(t)
	start(t, "production", "target", "--listen", prod, "--metrics", "--latency", "uniform(21ms,29ms)")
	start(t, "equal", "target", "--listen", equal, "--latency", "uniform(21ms,29ms)")
	start(t, "slow", "target", "--listen", slow, "--latency", "uniform(42ms,58ms)")
	if b, err := exec.Command(script, "scrape", prod).CombinedOutput(); err != nil {
		t.Fatalf("prometheus.sh scrape: %v\n%s", err, b)
	}
	c := startCluster(t, [][2]string{{"a1", "us-east"}})
	runOn := func(addr string) *report.Summary {
		plan := writePlan(t, "api.yaml", `name: api
scenarios:
  api:
    executor: constant-arrival-rate
    rate: 100
    duration: 12s
    requests: [{name: /api/items, url: /api/items}]
`)
		out := filepath.Join(t.TempDir(), "s.json")
		if text, code := surge(t, "run", plan, "--controller", c.ctrl, "--base-url", "http://"+addr, "-q", "--json", out); code != 0 {
			t.Fatalf("surge run against %s exited %d:\n%s", addr, code, text)
		}
		return readSummary(t, out)
	}
	p := runOn(prod)
	from, _ := time.Parse(time.RFC3339Nano, p.StartedAt)
	to, _ := time.Parse(time.RFC3339Nano, p.EndedAt)
	from, to = from.Truncate(time.Second), to.Truncate(time.Second).Add(time.Second)
	poll.EventuallyErr(t, 30*time.Second, "Prometheus scraped past the run", func() error {
		v, err := e.query(`max(timestamp(http_server_request_duration_seconds_count{http_route="/api/items"}))`)
		if err != nil || v[""] < float64(to.Unix()+1) {
			return fmt.Errorf("last scrape %v (%v)", v, err)
		}
		return nil
	})
	eq, sl := runOn(equal), runOn(slow)
	compare := func(run string) (map[string]report.MetricJSON, int) {
		out, code := surge(t, "compare", "--controller", c.ctrl, "--json", "--window", "0", "--baseline-prometheus", e.url,
			"--from", from.Format(time.RFC3339), "--to", to.Format(time.RFC3339), run)
		var cj report.ComparisonJSON
		if err := json.Unmarshal([]byte(out), &cj); err != nil {
			t.Fatalf("compare %s (exit %d): %v\n%s", run, code, err, out)
		}
		m := map[string]report.MetricJSON{}
		for _, x := range cj.Metrics {
			if x.Group == "request=/api/items" {
				m[x.Metric] = x
			}
		}
		return m, code
	}
	got, code := compare(eq.RunID)
	for name, m := range got {
		if m.Diverged {
			t.Errorf("equal target: %s diverged: baseline %v, run %v", name, *m.A, *m.B)
		}
	}
	if code != 0 || len(got) < 5 {
		t.Errorf("equal target: compare exited %d with %d metrics, want 0 and p50, p95, p99, error rate and rps", code, len(got))
	}
	sq := fmt.Sprintf(`histogram_quantile(0.99, sum by (http_route, le) (rate(http_server_request_duration_seconds_bucket[%ds])))`, int(to.Sub(from).Seconds()))
	direct, err := e.queryAt(sq, to)
	if err != nil {
		t.Fatal(err)
	}
	if a := got["p99_ms"].A; a == nil || math.Abs(*a-direct["/api/items"]*1000) > 1e-9 {
		t.Errorf("baseline p99 %v ms, PromQL says %v s for the same range", a, direct)
	}
	got, code = compare(sl.RunID)
	for _, name := range []string{"p50_ms", "p95_ms", "p99_ms", "error_rate", "rps"} {
		want := strings.HasPrefix(name, "p")
		if m, ok := got[name]; !ok || m.Diverged != want {
			t.Errorf("slow target: %s diverged %v, want %v (%+v)", name, m.Diverged, want, m)
		}
	}
	if code != 1 {
		t.Errorf("slow target: compare exited %d, want 1", code)
	}
	t.Logf("measured: baseline p50 %.2f p99 %.2f ms over %s–%s; slow run p50 %.2f ms", *got["p50_ms"].A, *got["p99_ms"].A,
		from.Format(time.TimeOnly), to.Format(time.TimeOnly), *got["p50_ms"].B)
}

// The shipped recording and alert rules (deploy/prometheus) load, and
// their unit tests pass in promtool: staging's error rate and p95 against
// production's.
func TestPrometheusRules(t *testing.T) {
	promtool := os.Getenv("SURGE_PROMTOOL")
	if promtool == "" {
		ciskip.Skipf(t, "promtool: SURGE_PROMTOOL is unset: run with `make e2e`, which builds it with scripts/prometheus.sh")
	}
	dir := filepath.Join("..", "..", "..", "deploy", "prometheus")
	for _, args := range [][]string{{"check", "rules", "rules.yml"}, {"test", "rules", "rules_test.yml"}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "SUCCESS") {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// Monitors: the test Prometheus scrapes `surge target --metrics`, and a
// plan watches the target's CPU. The run stores one value per interval,
// each what PromQL gives for the query at that interval's end; a threshold
// below the measured CPU fails the run (exit 99); compare shows both runs'
// CPU side by side; and a monitor that cannot work (Prometheus
// unreachable, a syntax error, no series) is refused before the run
// starts, naming its key. The remote write carries the values as
// surge_monitor.
func TestPrometheusMonitors(t *testing.T) {
	e := needProm(t)
	script := os.Getenv("SURGE_PROM_SCRIPT")
	if script == "" {
		ciskip.Skipf(t, "Prometheus: SURGE_PROM_SCRIPT is unset: run with `make e2e`")
	}
	target := freeport.Addr(t)
	start(t, "watched target", "target", "--listen", target, "--metrics", "--latency", "uniform(1ms,2ms)")
	if b, err := exec.Command(script, "scrape", target).CombinedOutput(); err != nil {
		t.Fatalf("prometheus.sh scrape: %v\n%s", err, b)
	}
	cpu := fmt.Sprintf(`sum(rate(process_cpu_seconds_total{instance=%q}[5s]))`, target)
	poll.EventuallyErr(t, 30*time.Second, "Prometheus has the target's CPU rate", func() error {
		if v, err := e.query(cpu); err != nil || len(v) != 1 {
			return fmt.Errorf("%v (%v)", v, err)
		}
		return nil
	})
	c := startCluster(t, [][2]string{{"m1", "us-east"}}, "--prometheus-remote-write", e.writeURL)
	planWith := func(prom, query, bound string) string {
		return writePlan(t, "watched.yaml", fmt.Sprintf(`name: watched
scenarios:
  api:
    executor: constant-arrival-rate
    rate: 150
    duration: 6s
    requests: [{url: http://%s/api/items}]
monitors:
  prometheus: %s
  queries:
    cpu: '%s'
thresholds:
  monitor:cpu: ["%s"]
`, target, prom, query, bound))
	}
	run := func(plan string) (*report.Summary, int) {
		out := filepath.Join(t.TempDir(), "s.json")
		text, code := surge(t, "run", plan, "--controller", c.ctrl, "-q", "--json", out)
		if code != 0 && code != 99 {
			t.Fatalf("surge run exited %d:\n%s", code, text)
		}
		return readSummary(t, out), code
	}
	low, code := run(planWith(e.url, cpu, "max<0.000001"))
	if code != 99 || low.Verdict != "fail" {
		t.Errorf("threshold below the CPU: exit %d verdict %s, want 99 fail", code, low.Verdict)
	}
	if len(low.Monitors) != 1 {
		t.Fatalf("monitors %+v, want cpu", low.Monitors)
	}
	m := low.Monitors[0]
	started, _ := time.Parse(time.RFC3339Nano, low.StartedAt)
	intervals := int64(math.Ceil(low.DurationS)) // 1s intervals
	if m.Samples != intervals || m.Missing != 0 || int64(len(m.Values)) != intervals {
		t.Errorf("cpu: %d samples, %d missing, %d values; want one per interval of %d", m.Samples, m.Missing, len(m.Values), intervals)
	}
	for i, v := range m.Values {
		at := started.Add(time.Duration(v.Interval+1) * time.Second)
		direct, err := e.queryAt(cpu, at)
		if v.Interval != int64(i) || err != nil || direct[""] != v.Value {
			t.Errorf("interval %d (#%d): stored %v, PromQL at its end %v (%v)", v.Interval, i, v.Value, direct, err)
		}
	}
	// The remote write carries them too: surge_monitor at each interval's end.
	series := fmt.Sprintf(`surge_monitor{run_id=%q,monitor="cpu"}`, low.RunID)
	lastAt := started.Add(time.Duration(intervals) * time.Second)
	poll.EventuallyErr(t, 30*time.Second, "surge_monitor written", func() error {
		if v, err := e.queryAt(series, lastAt); err != nil || len(v) != 1 {
			return fmt.Errorf("%v (%v)", v, err)
		}
		return nil
	})
	for _, v := range m.Values {
		got, err := e.queryAt(series, started.Add(time.Duration(v.Interval+1)*time.Second))
		if err != nil || got[""] != v.Value {
			t.Errorf("remote write: interval %d %v (%v), summary %v", v.Interval, got, err, v.Value)
		}
	}
	if th := low.Thresholds; len(th) != 1 || th[0].OK || th[0].Value == nil || *th[0].Value != m.Max || m.Max <= 0 {
		t.Errorf("threshold %+v, want failed at the max %v > 0", th, m.Max)
	}
	high, code := run(planWith(e.url, cpu, "max<1000"))
	if code != 0 || len(high.Monitors) != 1 || high.Monitors[0].Samples == 0 {
		t.Errorf("threshold above the CPU: exit %d, monitors %+v", code, high.Monitors)
	}

	out, code := surge(t, "compare", "--controller", c.ctrl, "--json", "--window", "0", low.RunID, high.RunID)
	var cj report.ComparisonJSON
	if err := json.Unmarshal([]byte(out), &cj); err != nil {
		t.Fatalf("compare (exit %d): %v\n%s", code, err, out)
	}
	sides := map[string][2]float64{}
	for _, x := range cj.Metrics {
		if x.Group == report.MonitorGroup+"cpu" {
			if x.A == nil || x.B == nil || x.Diverged {
				t.Errorf("compare %s: a %v b %v diverged %v", x.Metric, x.A, x.B, x.Diverged)
				continue
			}
			sides[x.Metric] = [2]float64{*x.A, *x.B}
		}
	}
	if sides["monitor_mean"] != [2]float64{m.Mean, high.Monitors[0].Mean} || sides["monitor_max"] != [2]float64{m.Max, high.Monitors[0].Max} {
		t.Errorf("compare monitor rows %v, want the summaries' mean %v/%v and max %v/%v", sides, m.Mean, high.Monitors[0].Mean, m.Max, high.Monitors[0].Max)
	}
	text, _ := surge(t, "compare", "--controller", c.ctrl, "--window", "0", low.RunID, high.RunID)
	if !strings.Contains(text, "monitor=cpu") {
		t.Errorf("compare text lacks the monitor rows:\n%s", text)
	}

	// Against production's range: the same query over the first run's
	// range in Prometheus, beside the second run's values.
	ended, _ := time.Parse(time.RFC3339Nano, low.EndedAt)
	from, to := started.Truncate(time.Second), ended.Truncate(time.Second).Add(time.Second)
	out, code = surge(t, "compare", "--controller", c.ctrl, "--json", "--window", "0", "--baseline-prometheus", e.url,
		"--from", from.Format(time.RFC3339), "--to", to.Format(time.RFC3339), high.RunID)
	cj = report.ComparisonJSON{}
	if err := json.Unmarshal([]byte(out), &cj); err != nil || (code != 0 && code != 1) {
		t.Fatalf("compare with the baseline (exit %d): %v\n%s", code, err, out)
	}
	rng := int(to.Sub(from).Seconds())
	direct, err := e.queryAt(fmt.Sprintf("avg_over_time((%s)[%ds:1s])", cpu, rng), to)
	if err != nil {
		t.Fatal(err)
	}
	prodMean := new(float64)
	*prodMean = math.NaN()
	for _, x := range cj.Metrics {
		if x.Group == report.MonitorGroup+"cpu" && x.Metric == "monitor_mean" && x.A != nil {
			prodMean = x.A
			if x.B == nil || *x.B != high.Monitors[0].Mean {
				t.Errorf("baseline compare: the run's mean %v, want %v", x.B, high.Monitors[0].Mean)
			}
		}
	}
	if *prodMean != direct[""] {
		t.Errorf("baseline compare: production's cpu mean %v, PromQL over %s–%s says %v", prodMean, from, to, direct)
	}

	before := readTargetStats(t, target).Requests
	for _, bad := range []struct{ name, prom, query, want string }{
		{"unreachable", "http://" + freeport.Addr(t), cpu, "monitors.prometheus"},
		{"syntax", e.url, "sum(rate(process_cpu_seconds_total[5s]", "monitors.queries.cpu"},
		{"no series", e.url, `process_cpu_seconds_total{job="nope"}`, "no series"},
	} {
		out, code := surge(t, "run", planWith(bad.prom, bad.query, "max<1"), "--controller", c.ctrl, "-q")
		t.Logf("measured: %s monitor: exit %d: %s", bad.name, code, strings.TrimSpace(out))
		if code == 0 || code == 99 || !strings.Contains(out, bad.want) {
			t.Errorf("%s monitor: exit %d, want an error naming %q:\n%s", bad.name, code, bad.want, out)
		}
	}
	if after := readTargetStats(t, target).Requests; after != before {
		t.Errorf("refused runs sent %d requests", after-before)
	}
	t.Logf("measured: cpu per interval %v (min %.4f mean %.4f max %.4f); second run mean %.4f; the first run's range in Prometheus: mean %v",
		m.Values, m.Min, m.Mean, m.Max, high.Monitors[0].Mean, *prodMean)
}
