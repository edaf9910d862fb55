package report

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
	"github.com/surgeload/surge/hist"
)

// Comparison defaults and noise floors. A metric diverges when its relative
// difference exceeds the tolerance AND its absolute difference exceeds the
// metric's floor, so that 0.1% vs 0.2% errors or 300 µs vs 400 µs do not
// fail a comparison on their own.
const (
	DefaultTolerance = 0.2
	DefaultWindow    = 10 * time.Second
	// LatencyFloorMs: latency differences at or under 1 ms never diverge.
	LatencyFloorMs = 1.0
	// ErrorRateFloor: error-rate differences at or under half a percentage
	// point never diverge.
	ErrorRateFloor = 0.005
	// WindowMinRequests: a window with fewer requests on either side is
	// listed but never diverges (its percentiles are noise).
	WindowMinRequests = 50
	// TailMinValues: a percentile diverges only when both sides have at
	// least this many latency values beyond it, so that p99 needs 1,000
	// values and p99.9 10,000; below that a percentile is the few slowest
	// requests, which differ between equal runs.
	TailMinValues = 10
	// NoiseZ is the normal quantile of the percentiles' confidence
	// intervals (95%): a percentile diverges only when the two runs'
	// intervals do not overlap.
	NoiseZ = 1.96
	// ConnFloor: differences of at most five connections open, or five
	// connections opened per second, never diverge (a pool's size at an
	// interval's end moves by a few with latency jitter alone).
	ConnFloor = 5.0
)

// Breakdowns for Compare.
const (
	ByRequest  = "request"
	ByRegion   = "region"
	ByScenario = "scenario"
)

// RunData is what the store holds about one run, as Compare and the HDR
// log need it.
type RunData struct {
	ID    string
	Start time.Time
	// Duration is the run's measured duration (the summary's), for rates.
	Duration time.Duration
	// Interval is the snapshot interval of Intervals.
	Interval time.Duration
	// Whole is the whole-run merged series per region.
	Whole map[string][]*surgev1.Series
	// Scenarios are the whole-run scenario stats per region (connections);
	// nil for runs stored without them.
	Scenarios map[string][]*surgev1.ScenarioStats
	// Intervals are the per-interval merged series per region, by index;
	// nil when the store has none for the run.
	Intervals []Interval
	// Monitors are the run's monitors (its summary's).
	Monitors []*surgev1.MonitorSummary
}

// Interval is one emitted interval's merged series per region.
type Interval struct {
	Index int64
	// Start is the interval's start; zero: the run's start + Index intervals.
	Start   time.Time
	Regions map[string][]*surgev1.Series
	// Scenarios are the interval's merged scenario stats per region; nil
	// for intervals stored without them.
	Scenarios map[string][]*surgev1.ScenarioStats
}

// CompareOptions shape a comparison.
type CompareOptions struct {
	Tolerance float64
	By        string
	// Window is the aligned window width; < 0 turns windows off, 0 means
	// DefaultWindow.
	Window time.Duration
}

// groupStats accumulate one group (all, a request, a region...) exactly.
type groupStats struct {
	latency *hdrhistogram.Histogram
	// expected: the latency of expected responses (not failures).
	expected *hdrhistogram.Histogram
	requests int64
	failures int64
	// byStatus counts requests per error name (hist.ErrorName).
	byStatus map[string]int64
	// Connections: hasConns when scenario stats were seen; peakOpen is
	// the highest sum of conns_open at one interval's end, hasPeak when
	// intervals gave it.
	hasConns, hasPeak     bool
	connsOpened, peakOpen int64
}

func newGroupStats() *groupStats {
	return &groupStats{latency: hist.New(), expected: hist.New(), byStatus: map[string]int64{}}
}

func (g *groupStats) add(s *surgev1.Series) error {
	if _, err := hist.MergeProto(g.latency, s.GetLatency()); err != nil {
		return err
	}
	c := s.GetCounters()
	g.requests += c.GetRequests()
	g.failures += c.GetFailures()
	if name := hist.ErrorName(s.GetKey().GetStatus()); name != "" {
		g.byStatus[name] += c.GetRequests()
	} else if _, err := hist.MergeProto(g.expected, s.GetLatency()); err != nil {
		return err
	}
	return nil
}

// addConns adds scenario stats' connections opened.
func (g *groupStats) addConns(sc *surgev1.ScenarioStats) {
	g.hasConns = true
	g.connsOpened += sc.GetConnsOpened()
}

// connGroup names the group a scenario's connections count in under a
// breakdown besides "all"; "" when they count in no other group
// (connections belong to scenarios, not requests).
func connGroup(by, region, scenario string) string {
	switch by {
	case ByRegion:
		return "region=" + region
	case ByScenario:
		return "scenario=" + scenario
	}
	return ""
}

// addScenarios adds regions' scenario stats to "all" and their breakdown
// group, creating groups as needed.
func addScenarios(out map[string]*groupStats, regions map[string][]*surgev1.ScenarioStats, by string) {
	for region, list := range regions {
		for _, sc := range list {
			out["all"].addConns(sc)
			if k := connGroup(by, region, sc.GetScenario()); k != "" {
				g, ok := out[k]
				if !ok {
					g = newGroupStats()
					out[k] = g
				}
				g.addConns(sc)
			}
		}
	}
}

// intervalPeaks raises each group's peakOpen to one interval's sum of
// conns_open over the group (the all group and the breakdown's groups).
func intervalPeaks(out map[string]*groupStats, regions map[string][]*surgev1.ScenarioStats, by string) {
	sums := map[string]int64{}
	for region, list := range regions {
		for _, sc := range list {
			sums["all"] += sc.GetConnsOpen()
			if k := connGroup(by, region, sc.GetScenario()); k != "" {
				sums[k] += sc.GetConnsOpen()
			}
		}
	}
	for k, v := range sums {
		if g := out[k]; g != nil {
			g.hasPeak = true
			g.peakOpen = max(g.peakOpen, v)
		}
	}
}

// groupKey names the group of a series under a breakdown.
func groupKey(by, region string, s *surgev1.Series) string {
	switch by {
	case ByRegion:
		return "region=" + region
	case ByScenario:
		return "scenario=" + s.GetKey().GetScenario()
	default:
		return "request=" + s.GetKey().GetRequest()
	}
}

// runGroups merges a run's whole-run series and connections into "all" and
// one group per breakdown key; peaks of connections open come from its
// intervals.
func runGroups(r *RunData, by string) (map[string]*groupStats, error) {
	out, err := groups(r.Whole, by)
	if err != nil {
		return nil, err
	}
	addScenarios(out, r.Scenarios, by)
	for _, in := range r.Intervals {
		intervalPeaks(out, in.Scenarios, by)
	}
	return out, nil
}

// groups merges regions' series into "all" and one group per breakdown key.
func groups(regions map[string][]*surgev1.Series, by string) (map[string]*groupStats, error) {
	out := map[string]*groupStats{"all": newGroupStats()}
	for region, list := range regions {
		for _, s := range list {
			if err := out["all"].add(s); err != nil {
				return nil, fmt.Errorf("merge %s series: %w", region, err)
			}
			k := groupKey(by, region, s)
			g, ok := out[k]
			if !ok {
				g = newGroupStats()
				out[k] = g
			}
			if err := g.add(s); err != nil {
				return nil, fmt.Errorf("merge %s series: %w", region, err)
			}
		}
	}
	return out, nil
}

// metricValues are one group's comparable figures.
type metricValues struct {
	present  bool
	requests int64
	failures int64
	samples  int64 // latency values
	// expSamples are the expected responses' latency values.
	expSamples int64
	values     map[string]float64
	// ranges are the percentiles' 95% confidence intervals.
	ranges map[string][2]float64
	// counts are the rates' numerators (failures of every kind, or of one
	// error name), over requests.
	counts map[string]int64
	// exact: figures without a sample count (a baseline), taken as exact;
	// only the other side's sampling noise counts.
	exact bool
}

func valuesOf(g *groupStats, secs float64) metricValues {
	if g == nil || g.requests == 0 && g.latency.TotalCount() == 0 && !g.hasConns {
		return metricValues{values: map[string]float64{}}
	}
	v := map[string]float64{}
	ranges := map[string][2]float64{}
	counts := map[string]int64{}
	for _, h := range []struct {
		suffix string
		h      *hdrhistogram.Histogram
	}{{"", g.latency}, {ExpectedSuffix, g.expected}} {
		if h.h.TotalCount() == 0 {
			continue
		}
		for _, m := range [...]string{"p50_ms", "p95_ms", "p99_ms", "p999_ms"} {
			b, _ := beyond(m)
			q := 1 - float64(b)/1000
			v[m+h.suffix] = float64(h.h.ValueAtQuantile(100*q)) / 1000
			ranges[m+h.suffix] = quantileRange(h.h, q)
		}
	}
	if secs > 0 {
		v["rps"] = float64(g.requests) / secs
	}
	if g.requests > 0 {
		v["error_rate"] = float64(g.failures) / float64(g.requests)
		counts["error_rate"] = g.failures
		for name, n := range g.byStatus {
			v["error_rate."+name] = float64(n) / float64(g.requests)
			counts["error_rate."+name] = n
		}
	}
	if g.hasConns && secs > 0 {
		v["conns_opened_per_s"] = float64(g.connsOpened) / secs
	}
	if g.hasPeak {
		v["conns_peak_open"] = float64(g.peakOpen)
	}
	return metricValues{present: true, requests: g.requests, failures: g.failures, samples: g.latency.TotalCount(),
		expSamples: g.expected.TotalCount(), values: v, ranges: ranges, counts: counts}
}

// metricOrder sorts metrics for display: each percentile of every
// response before the same of expected responses.
func metricOrder(m string) int {
	if base, ok := strings.CutSuffix(m, ExpectedSuffix); ok {
		return 2*metricRank(base) + 1
	}
	return 2 * metricRank(m)
}

func metricRank(m string) int {
	switch m {
	case "p50_ms":
		return 0
	case "p95_ms":
		return 1
	case "p99_ms":
		return 2
	case "p999_ms":
		return 3
	case "rps":
		return 4
	case "error_rate":
		return 5
	case "conns_opened_per_s":
		return 6
	case "conns_peak_open":
		return 7
	}
	return 8
}

// RelDiff is (b - a) / |a|: 0 when both are 0, ±Inf when only a is.
func RelDiff(a, b float64) float64 {
	if a == b {
		return 0
	}
	if a == 0 {
		return math.Inf(int(math.Copysign(1, b)))
	}
	return (b - a) / math.Abs(a)
}

// floor is the absolute difference a metric must exceed to diverge.
func floor(metric string) float64 {
	metric = strings.TrimSuffix(metric, ExpectedSuffix)
	switch {
	case strings.HasSuffix(metric, "_ms"):
		return LatencyFloorMs
	case strings.HasPrefix(metric, "error_rate"):
		return ErrorRateFloor
	case strings.HasPrefix(metric, "conns_"):
		return ConnFloor
	}
	return 0
}

// diffGroup compares two groups' values, metric by metric, appending to out.
func diffGroup(out []*surgev1.MetricDiff, tmpl *surgev1.MetricDiff, a, b metricValues, tol float64, canDiverge bool) []*surgev1.MetricDiff {
	names := map[string]bool{}
	for m := range a.values {
		names[m] = true
	}
	for m := range b.values {
		names[m] = true
	}
	if a.failures == 0 && b.failures == 0 {
		// Every response was expected: the same figures as the plain ones.
		for m := range names {
			if strings.HasSuffix(m, ExpectedSuffix) {
				delete(names, m)
			}
		}
	}
	sorted := make([]string, 0, len(names))
	for m := range names {
		sorted = append(sorted, m)
	}
	slices.SortFunc(sorted, func(x, y string) int {
		return cmp.Or(cmp.Compare(metricOrder(x), metricOrder(y)), cmp.Compare(x, y))
	})
	for _, m := range sorted {
		av, aok := a.values[m]
		bv, bok := b.values[m]
		if !a.present || !b.present {
			aok, bok = a.present && aok, b.present && bok
		}
		d := &surgev1.MetricDiff{
			Window: tmpl.Window, WindowStartMs: tmpl.WindowStartMs, WindowEndMs: tmpl.WindowEndMs,
			Group: tmpl.Group, Metric: m, A: av, B: bv,
			APresent: a.present, BPresent: b.present, ARequests: a.requests, BRequests: b.requests,
		}
		switch {
		case aok && bok, isRate(m) && a.present && b.present:
			// A status seen on one side only has a rate of 0 on the other.
			d.RelDiff = RelDiff(av, bv)
			d.Thin = !a.exact && thin(m, a.sampleCount(m)) || !b.exact && thin(m, b.sampleCount(m))
			setNoise(d, a, b)
			d.Diverged = canDiverge && !d.Thin && !d.Noise && math.Abs(d.RelDiff) > tol && math.Abs(bv-av) > floor(m)
		default:
			// The group is missing on one side: that is a divergence.
			d.RelDiff = math.NaN()
			d.Diverged = canDiverge && a.present != b.present
		}
		out = append(out, d)
	}
	return out
}

func sortedGroups(a, b map[string]*groupStats) []string {
	set := map[string]bool{}
	for k := range a {
		set[k] = true
	}
	for k := range b {
		set[k] = true
	}
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	slices.SortFunc(out, func(x, y string) int {
		if x == "all" || y == "all" {
			return cmp.Compare(boolInt(y == "all"), boolInt(x == "all"))
		}
		return cmp.Compare(x, y)
	})
	return out
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (o CompareOptions) normalized() (CompareOptions, error) {
	if o.Tolerance == 0 {
		o.Tolerance = DefaultTolerance
	}
	if o.Tolerance < 0 || math.IsNaN(o.Tolerance) || math.IsInf(o.Tolerance, 0) {
		return o, fmt.Errorf("tolerance %v: must be a positive number", o.Tolerance)
	}
	switch o.By {
	case "":
		o.By = ByRequest
	case ByRequest, ByRegion, ByScenario:
	default:
		return o, fmt.Errorf("by %q: want request, region or scenario", o.By)
	}
	if o.Window == 0 {
		o.Window = DefaultWindow
	}
	return o, nil
}

// Compare compares run b with run a: the whole run, "all" and one group per
// breakdown key, then (when both runs have intervals) aligned windows of
// elapsed time. Every percentile is read from histograms merged exactly
// from the stored series.
func Compare(a, b *RunData, opts CompareOptions) (*surgev1.CompareResponse, error) {
	opts, err := opts.normalized()
	if err != nil {
		return nil, err
	}
	resp := &surgev1.CompareResponse{RunA: a.ID, RunB: b.ID, Tolerance: opts.Tolerance, By: opts.By}
	ga, err := runGroups(a, opts.By)
	if err != nil {
		return nil, fmt.Errorf("run %s: %w", a.ID, err)
	}
	gb, err := runGroups(b, opts.By)
	if err != nil {
		return nil, fmt.Errorf("run %s: %w", b.ID, err)
	}
	for _, name := range sortedGroups(ga, gb) {
		resp.Metrics = diffGroup(resp.Metrics, &surgev1.MetricDiff{Group: name},
			valuesOf(ga[name], a.Duration.Seconds()), valuesOf(gb[name], b.Duration.Seconds()), opts.Tolerance, true)
	}

	switch {
	case opts.Window < 0:
	case len(a.Intervals) == 0 || len(b.Intervals) == 0:
		resp.Notes = append(resp.Notes, "aligned windows skipped: the store has no per-interval data for "+
			strings.Join(missingIntervals(a, b), " and "))
	default:
		resp.Aligned = true
		resp.WindowMs = opts.Window.Milliseconds()
		wa, err := windows(a, opts.Window)
		if err != nil {
			return nil, fmt.Errorf("run %s: %w", a.ID, err)
		}
		wb, err := windows(b, opts.Window)
		if err != nil {
			return nil, fmt.Errorf("run %s: %w", b.ID, err)
		}
		for i := range max(len(wa), len(wb)) {
			var xa, xb *groupStats
			var secsA, secsB float64
			if i < len(wa) {
				xa, secsA = wa[i].g, wa[i].secs
			}
			if i < len(wb) {
				xb, secsB = wb[i].g, wb[i].secs
			}
			va, vb := valuesOf(xa, secsA), valuesOf(xb, secsB)
			enough := va.requests >= WindowMinRequests && vb.requests >= WindowMinRequests
			tmpl := &surgev1.MetricDiff{Window: true, Group: "all",
				WindowStartMs: int64(i) * opts.Window.Milliseconds(), WindowEndMs: int64(i+1) * opts.Window.Milliseconds()}
			resp.Metrics = diffGroup(resp.Metrics, tmpl, va, vb, opts.Tolerance, enough)
		}
	}
	for _, m := range resp.Metrics {
		if m.Diverged {
			resp.Diverged++
		}
	}
	return resp, nil
}

func missingIntervals(a, b *RunData) []string {
	var out []string
	for _, r := range []*RunData{a, b} {
		if len(r.Intervals) == 0 {
			out = append(out, r.ID)
		}
	}
	return out
}

type window struct {
	g    *groupStats
	secs float64
}

// windows merges a run's intervals into windows of width w of elapsed time
// (all regions): interval i lands in window floor(i*interval / w).
func windows(r *RunData, w time.Duration) ([]window, error) {
	iv := r.Interval
	if iv <= 0 {
		iv = time.Second
	}
	var out []window
	for _, in := range r.Intervals {
		k := int(time.Duration(in.Index) * iv / w)
		if k < 0 {
			continue
		}
		for len(out) <= k {
			out = append(out, window{g: newGroupStats(), secs: w.Seconds()})
		}
		for region, list := range in.Regions {
			for _, s := range list {
				if err := out[k].g.add(s); err != nil {
					return nil, fmt.Errorf("interval %d: merge %s series: %w", in.Index, region, err)
				}
			}
		}
		one := map[string]*groupStats{"all": out[k].g}
		addScenarios(one, in.Scenarios, "")
		intervalPeaks(one, in.Scenarios, "")
	}
	// The last window may be cut short by the run's end.
	if n := len(out); n > 0 && r.Duration > 0 {
		if rest := r.Duration - time.Duration(n-1)*w; rest > 0 && rest < w {
			out[n-1].secs = rest.Seconds()
		}
	}
	return out, nil
}
