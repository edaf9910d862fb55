package target

import (
	"bufio"
	"cmp"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/surgeload/surge/internal/cputime"
)

// MetricsPath serves the target's own metrics in Prometheus's text format
// when Config.Metrics is set, as a production service would: so that a
// test can play "production" with a real Prometheus scraping it. Requests
// to it are not counted.
const MetricsPath = "/metrics"

// MetricRequestDuration is OpenTelemetry's HTTP server duration as
// exported to Prometheus: labels http_request_method, http_route and
// http_response_status_code, seconds.
const MetricRequestDuration = "http_server_request_duration_seconds"

// durationBounds are the histogram's upper bounds, seconds: finer than
// OpenTelemetry's defaults below 100 ms, where a staging target answers.
var durationBounds = []float64{0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075,
	0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1, 2.5, 5, 10}

// maxRoutes bounds the routes the histogram keeps; later ones are counted
// under OtherPath.
const maxRoutes = 1000

// routeKey is one series of the duration histogram.
type routeKey struct {
	method, route string
	code          int
}

type routeHist struct {
	counts []uint64 // per bound, not cumulative; the last is +Inf
	sum    float64
}

// durations is the request-duration histogram by route and status.
type durations struct {
	mu     sync.Mutex
	m      map[routeKey]*routeHist
	routes map[string]bool
}

func newDurations() *durations {
	return &durations{m: map[routeKey]*routeHist{}, routes: map[string]bool{}}
}

func (d *durations) observe(method, route string, code int, took time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.routes[route] {
		if len(d.routes) >= maxRoutes {
			route = OtherPath
		}
		d.routes[route] = true
	}
	k := routeKey{method, route, code}
	h := d.m[k]
	if h == nil {
		h = &routeHist{counts: make([]uint64, len(durationBounds)+1)}
		d.m[k] = h
	}
	v := took.Seconds()
	i, _ := slices.BinarySearch(durationBounds, v)
	h.counts[i]++
	h.sum += v
}

// measured wraps a handler of route ("" for the request's path) to record
// its duration and status; a hijacked request (reset) is not recorded.
func (s *Server) measured(route string, h http.HandlerFunc) http.HandlerFunc {
	if s.durations == nil {
		return h
	}
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		h(sw, r)
		if sw.code == 0 {
			return
		}
		rt := route
		if rt == "" {
			rt = r.URL.Path
		}
		s.durations.observe(r.Method, rt, sw.code, time.Since(start))
	}
}

// statusWriter remembers the status written; Unwrap lets
// http.ResponseController flush and hijack through it.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// serveMetrics writes the duration histogram and the process's CPU and
// memory in the text exposition format.
func (s *Server) serveMetrics(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	bw := bufio.NewWriter(w)
	s.durations.write(bw)
	writeProcess(bw)
	if err := bw.Flush(); err != nil {
		s.log.Debug("write metrics", "err", err)
	}
}

func (d *durations) write(w *bufio.Writer) {
	d.mu.Lock()
	keys := make([]routeKey, 0, len(d.m))
	for k := range d.m {
		keys = append(keys, k)
	}
	hists := make(map[routeKey]routeHist, len(keys))
	for _, k := range keys {
		h := d.m[k]
		hists[k] = routeHist{counts: slices.Clone(h.counts), sum: h.sum}
	}
	d.mu.Unlock()
	slices.SortFunc(keys, func(a, b routeKey) int {
		return cmp.Or(strings.Compare(a.route, b.route), strings.Compare(a.method, b.method), a.code-b.code)
	})
	fmt.Fprintf(w, "# HELP %s Duration of HTTP server requests.\n# TYPE %s histogram\n", MetricRequestDuration, MetricRequestDuration)
	for _, k := range keys {
		h := hists[k]
		labels := fmt.Sprintf(`http_request_method=%q,http_response_status_code="%d",http_route=%q`, k.method, k.code, k.route)
		var cum uint64
		for i, b := range durationBounds {
			cum += h.counts[i]
			fmt.Fprintf(w, "%s_bucket{%s,le=\"%s\"} %d\n", MetricRequestDuration, labels, strconv.FormatFloat(b, 'g', -1, 64), cum)
		}
		cum += h.counts[len(durationBounds)]
		fmt.Fprintf(w, "%s_bucket{%s,le=\"+Inf\"} %d\n", MetricRequestDuration, labels, cum)
		fmt.Fprintf(w, "%s_sum{%s} %s\n", MetricRequestDuration, labels, strconv.FormatFloat(h.sum, 'g', -1, 64))
		fmt.Fprintf(w, "%s_count{%s} %d\n", MetricRequestDuration, labels, cum)
	}
}

// writeProcess writes process_cpu_seconds_total and
// process_resident_memory_bytes, as Prometheus's client libraries name them.
func writeProcess(w *bufio.Writer) {
	fmt.Fprintf(w, "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total %g\n",
		cputime.Process().Seconds())
	if b, err := os.ReadFile("/proc/self/statm"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 1 {
			if pages, err := strconv.ParseInt(f[1], 10, 64); err == nil {
				fmt.Fprintf(w, "# HELP process_resident_memory_bytes Resident memory size in bytes.\n# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes %d\n", pages*int64(os.Getpagesize()))
			}
		}
	}
}
