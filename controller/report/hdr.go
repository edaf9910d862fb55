package report

import (
	"encoding/csv"
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
	"github.com/surgeload/surge/hist"
)

// Histogram metrics for Frames; an HTTP phase's name ("dns", "connect",
// "tls", "ttfb", "attempt") picks that phase's histograms.
const (
	MetricLatency = "latency"
	MetricService = "service"
)

// Frames are a run's histograms for an HdrHistogram interval log: one per
// stored interval (every region merged, or one per region tagged with it),
// or, when the run has no intervals stored, one for the whole run.
func Frames(r *RunData, byRegion bool, metric string) ([]*surgev1.HistogramFrame, error) {
	pick := (*surgev1.Series).GetLatency
	switch metric {
	case "", MetricLatency:
	case MetricService:
		pick = (*surgev1.Series).GetService
	default:
		ph, ok := phaseNamed(metric)
		if !ok {
			return nil, fmt.Errorf("metric %q: want latency, service, dns, connect, tls, ttfb or attempt", metric)
		}
		pick = func(s *surgev1.Series) *surgev1.Histogram { return hist.PhaseProto(s, ph) }
	}
	frame := func(idx int64, start, end time.Time, tag string, regions map[string][]*surgev1.Series) (*surgev1.HistogramFrame, error) {
		h := hist.New()
		for _, region := range sortedKeys(regions) {
			if byRegion && region != tag {
				continue
			}
			for _, s := range regions[region] {
				if _, err := hist.MergeProto(h, pick(s)); err != nil {
					return nil, fmt.Errorf("merge %s series: %w", region, err)
				}
			}
		}
		enc, err := hist.EncodeV2(h)
		if err != nil {
			return nil, err
		}
		return &surgev1.HistogramFrame{Interval: idx, StartUnixMs: start.UnixMilli(), EndUnixMs: end.UnixMilli(),
			Tag: tag, HdrBase64: string(enc), Count: h.TotalCount()}, nil
	}
	emit := func(out []*surgev1.HistogramFrame, idx int64, start, end time.Time, regions map[string][]*surgev1.Series) ([]*surgev1.HistogramFrame, error) {
		tags := []string{""}
		if byRegion {
			tags = sortedKeys(regions)
		}
		for _, tag := range tags {
			f, err := frame(idx, start, end, tag, regions)
			if err != nil {
				return nil, fmt.Errorf("interval %d: %w", idx, err)
			}
			out = append(out, f)
		}
		return out, nil
	}
	var out []*surgev1.HistogramFrame
	if len(r.Intervals) == 0 {
		return emit(out, -1, r.Start, r.Start.Add(r.Duration), r.Whole)
	}
	iv := r.Interval
	if iv <= 0 {
		iv = time.Second
	}
	ivs := slices.Clone(r.Intervals)
	slices.SortFunc(ivs, func(a, b Interval) int { return int(a.Index - b.Index) })
	for _, in := range ivs {
		start := in.Start
		if start.IsZero() {
			start = r.Start.Add(time.Duration(in.Index) * iv)
		}
		var err error
		if out, err = emit(out, in.Index, start, start.Add(iv), in.Regions); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// WriteHdrLog writes frames as an HdrHistogram interval log (format 1.3, as
// HdrHistogram's HistogramLogWriter writes it and HistogramLogReader and
// HistogramLogAnalyzer read it): timestamps relative to the run's start
// (the StartTime and BaseTime headers), values in microseconds, and the
// interval max column in milliseconds. Region frames carry Tag=REGION.
func WriteHdrLog(w io.Writer, runID string, start time.Time, frames []*surgev1.HistogramFrame) error {
	lw := hdrhistogram.NewHistogramLogWriter(w)
	startMs := start.UnixMilli()
	steps := []func() error{
		func() error { return lw.OutputComment("[surge run " + runID + "; latency values in microseconds]") },
		lw.OutputLogFormatVersion,
		func() error { return lw.OutputStartTime(startMs) },
		func() error { return lw.OutputBaseTime(startMs) },
		lw.OutputLegend,
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return fmt.Errorf("write hdr log: %w", err)
		}
	}
	for _, f := range frames {
		h, err := hist.DecodeV2([]byte(f.GetHdrBase64()))
		if err != nil {
			return fmt.Errorf("write hdr log: interval %d: %w", f.GetInterval(), err)
		}
		tag := ""
		if f.GetTag() != "" {
			tag = "Tag=" + f.GetTag() + ","
		}
		begin := float64(f.GetStartUnixMs()-startMs) / 1000
		length := float64(f.GetEndUnixMs()-f.GetStartUnixMs()) / 1000
		if _, err := fmt.Fprintf(w, "%s%.3f,%.3f,%.3f,%s\n", tag, begin, length, float64(h.Max())/1000, f.GetHdrBase64()); err != nil {
			return fmt.Errorf("write hdr log: %w", err)
		}
	}
	return nil
}

// phaseNamed is the HTTP phase called name.
func phaseNamed(name string) (hist.Phase, bool) {
	for p := range hist.NumPhases {
		if p.String() == name {
			return p, true
		}
	}
	return 0, false
}

// CSV writes a run summary as CSV: one row for the whole run, one per
// region, one per scenario and one per request, latencies in microseconds
// (a phase's p95 is empty when it had no values). A request row's name is
// the request's, as thresholds and compare name it; its scenario and flow
// are the last columns.
func CSV(w io.Writer, s *surgev1.RunSummary) error {
	sum := FromProto(s)
	cw := csv.NewWriter(w)
	phases := []string{"dns", "connect", "tls", "ttfb", "attempt"}
	header := []string{"run_id", "group", "name", "requests", "failures", "rps",
		"p50_us", "p90_us", "p95_us", "p99_us", "p999_us", "max_us", "min_us", "mean_us", "dropped_iterations", "deficit",
		"retries", "conns_opened", "conns_closed", "conns_open", "conns_peak_open"}
	for _, ph := range phases {
		header = append(header, ph+"_p95_us")
	}
	header = append(header, "scenario", "flow")
	rows := [][]string{header}
	row := func(group, name string, st Stats) []string {
		l := st.LatencyUS
		i := func(v int64) string { return strconv.FormatInt(v, 10) }
		f := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
		c := st.Connections
		r := []string{sum.RunID, group, name, i(st.Requests), i(st.Failures), f(st.RPS),
			i(l.P50), i(l.P90), i(l.P95), i(l.P99), i(l.P999), i(l.Max), i(l.Min), f(l.Mean), i(st.DroppedIterations), i(st.Deficit),
			i(st.Retries), i(c.Opened), i(c.Closed), i(c.Open), i(c.PeakOpen)}
		for _, ph := range phases {
			v := "" // no values for the phase
			if pl, ok := st.PhasesUS[ph]; ok {
				v = i(pl.P95)
			}
			r = append(r, v)
		}
		return append(r, "", "")
	}
	rows = append(rows, row("all", "", sum.Stats))
	for _, name := range sortedKeys(sum.Regions) {
		rows = append(rows, row("region", name, sum.Regions[name].Stats))
	}
	for _, name := range sortedKeys(sum.Scenarios) {
		sr := row("scenario", name, sum.Scenarios[name])
		sr[len(sr)-2] = name
		rows = append(rows, sr)
	}
	for _, r := range sum.ByRequest {
		rr := row("request", r.Request, Stats{
			Requests: r.Requests, Failures: r.Failures, RPS: r.RPS, LatencyUS: r.LatencyUS, Retries: r.Retries, PhasesUS: r.PhasesUS,
		})
		rr[len(rr)-2], rr[len(rr)-1] = r.Scenario, r.Flow
		rows = append(rows, rr)
	}
	if err := cw.WriteAll(rows); err != nil {
		return fmt.Errorf("write csv: %w", err)
	}
	return nil
}
