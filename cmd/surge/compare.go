package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/surgeload/surge/controller/baseline"
	"github.com/surgeload/surge/controller/report"
	surgev1 "github.com/surgeload/surge/gen/surge/v1"
)

// Report formats.
const (
	formatText = "text"
	formatJSON = "json"
	formatCSV  = "csv"
	formatHDR  = "hdr"
)

// hdrTimeout bounds streaming a run's histograms for the HDR log.
const hdrTimeout = time.Minute

type reportOptions struct {
	controller string
	auth       *clientAuth
	runID      string
	format     string
	json       bool
	byRegion   bool
	metric     string
	output     string
}

func newReportCmd(e env) *cobra.Command {
	var o reportOptions
	cmd := &cobra.Command{
		Use:   "report RUN_ID",
		Short: "Print a run's summary (text, json, csv) or its HdrHistogram interval log (hdr)",
		Long: `Report prints a run's summary. --format hdr writes the run's latency as an
HdrHistogram interval log (values in microseconds), one histogram per stored
interval with every region merged (--by-region: one per region, tagged), or one
for the whole run when the store has no intervals. HdrHistogram's own tools read
it (HistogramLogAnalyzer, HistogramLogProcessor, hdr-histogram-js).

A run is its id, or latest (the newest run), or latest:KEY=VALUE[,KEY=VALUE]
(the newest run with those tags, e.g. latest:environment=staging).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.runID = args[0]
			if o.json {
				if cmd.Flags().Changed("format") && o.format != formatJSON {
					return usageErrorf("--json and --format %s disagree", o.format)
				}
				o.format = formatJSON
			}
			return runReport(cmd.Context(), o, e.stdout)
		},
	}
	o.auth = controllerFlag(cmd, e, &o.controller)
	cmd.Flags().StringVar(&o.format, "format", formatText, "output format: text, json, csv or hdr")
	cmd.Flags().BoolVar(&o.json, "json", false, "print JSON (same as --format json)")
	cmd.Flags().BoolVar(&o.byRegion, "by-region", false, "hdr: one histogram per region and interval, tagged with the region")
	cmd.Flags().StringVar(&o.metric, "metric", report.MetricLatency, "hdr: latency (from the intended send), service (from the actual send), or an HTTP phase: dns, connect, tls, ttfb, attempt")
	cmd.Flags().StringVarP(&o.output, "output", "o", "", "write to `FILE` instead of stdout")
	return cmd
}

// runReport is `surge report`.
func runReport(ctx context.Context, o reportOptions, stdout io.Writer) (err error) {
	switch o.format {
	case formatText, formatJSON, formatCSV, formatHDR:
	default:
		return usageErrorf("--format %q: want text, json, csv or hdr", o.format)
	}
	out := stdout
	if o.output != "" {
		f, err := os.Create(o.output)
		if err != nil {
			return fmt.Errorf("report: %w", err)
		}
		defer func() {
			if cerr := f.Close(); cerr != nil && err == nil {
				err = fmt.Errorf("report: %w", cerr)
			}
		}()
		out = f
	}
	return withController(o.controller, o.auth, func(c *grpcClients) error {
		if err := resolveRuns(ctx, c.runs, &o.runID); err != nil {
			return err
		}
		if o.format == formatHDR {
			return writeHdrReport(ctx, c.runs, o, out)
		}
		ctx, cancel := context.WithTimeout(ctx, rpcTimeout)
		defer cancel()
		sum, err := c.runs.Report(ctx, &surgev1.ReportRequest{RunId: o.runID})
		if err != nil {
			return rpcErr("report "+o.runID, o.controller, err)
		}
		switch o.format {
		case formatJSON:
			b, err := report.JSON(sum)
			if err != nil {
				return err
			}
			_, err = out.Write(b)
			return err
		case formatCSV:
			return report.CSV(out, sum)
		}
		return report.Text(out, sum)
	})
}

// writeHdrReport streams the run's histograms and writes the interval log.
func writeHdrReport(ctx context.Context, c runsClient, o reportOptions, out io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, hdrTimeout)
	defer cancel()
	sum, err := c.Report(ctx, &surgev1.ReportRequest{RunId: o.runID})
	if err != nil {
		return rpcErr("report "+o.runID, o.controller, err)
	}
	stream, err := c.Histograms(ctx, &surgev1.HistogramsRequest{RunId: o.runID, ByRegion: o.byRegion, Metric: o.metric})
	if err != nil {
		return rpcErr("histograms "+o.runID, o.controller, err)
	}
	var frames []*surgev1.HistogramFrame
	for {
		f, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return rpcErr("histograms "+o.runID, o.controller, err)
		}
		frames = append(frames, f)
	}
	return report.WriteHdrLog(out, o.runID, time.UnixMilli(sum.GetStartedAtUnixMs()), frames)
}

// --- compare ---

type compareOptions struct {
	controller string
	auth       *clientAuth
	runA, runB string
	baseline   string
	prom       promBaseline
	tolerance  float64
	by         string
	window     time.Duration
	json       bool
	junit      string
	judge      judgeFlags
}

func newCompareCmd(e env) *cobra.Command {
	var o compareOptions
	cmd := &cobra.Command{
		Use:   "compare RUN_A RUN_B | compare --baseline PROD.csv RUN",
		Short: "Compare two runs (or a run with production figures) percentile by percentile",
		Long: `Compare puts two stored runs side by side: p50/p95/p99/p99.9 latency, rate,
error rate (all failures, and by class: http_4xx, http_5xx, timeout, refused,
reset, tls, dns, protocol, ...) and connections (opened per second, peak open;
for the whole run and per region or scenario, not per request), for the whole
run and per request, region or scenario (--by), and aligned by elapsed time
(window i of A against window i of B) when the store has the runs' intervals.
Every latency is read from histograms merged exactly from the stored ones.

A metric diverges when |B-A|/|A| exceeds --tolerance and the difference is
above the metric's noise floor (1 ms for latency, 0.5 percentage points for
error rates, five connections for connections). Exit status: 0 within
tolerance, 1 when any metric diverged.

--baseline PROD.csv compares one run with production figures instead: a CSV
with the header endpoint,p50,p95,p99,error_rate,rpm (latencies in ms,
error_rate in [0,1], rpm requests per minute); endpoints match request names,
"all" the whole run.

--baseline-prometheus URL reads the same figures from production's own
Prometheus over --last 1h (or --from T --to T, RFC 3339) with a query set:
otel (OpenTelemetry's http_server_request_duration_seconds by http_route,
the default), classic (http_request_duration_seconds by handler) or a YAML
file of PromQL templates (--baseline-queries); see docs/prometheus.md.

--judge judges B against A as canary analysis does: a Mann–Whitney U test
of each group's exact latency distribution, the Hodges–Lehmann shift with
its interval, a 0-100 score; exit 0 pass, 1 fail, 3 marginal (see
docs/compare.md).

A run is its id, or latest (the newest run), or latest:KEY=VALUE[,KEY=VALUE]
(the newest run with those tags, e.g. latest:environment=staging).`,
		Args: func(cmd *cobra.Command, args []string) error {
			if o.baseline != "" || o.prom.url != "" {
				return cobra.ExactArgs(1)(cmd, args)
			}
			return cobra.ExactArgs(2)(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.baseline != "" || o.prom.url != "" {
				o.runB = args[0]
			} else {
				o.runA, o.runB = args[0], args[1]
			}
			return runCompare(cmd.Context(), o, e.stdout)
		},
	}
	o.auth = controllerFlag(cmd, e, &o.controller)
	cmd.Flags().Float64Var(&o.tolerance, "tolerance", report.DefaultTolerance, "relative difference above which a metric diverges")
	cmd.Flags().StringVar(&o.by, "by", report.ByRequest, "breakdown: request, region or scenario")
	cmd.Flags().DurationVar(&o.window, "window", report.DefaultWindow, "width of the aligned elapsed-time windows (0: off)")
	cmd.Flags().StringVar(&o.baseline, "baseline", "", "production figures `CSV` (endpoint,p50,p95,p99,error_rate,rpm) instead of RUN_A")
	promBaselineFlags(cmd, &o.prom)
	addJudgeFlags(cmd, &o.judge)
	cmd.Flags().BoolVar(&o.json, "json", false, "print JSON")
	cmd.Flags().StringVar(&o.junit, "junit", "", "also write a JUnit XML report to `FILE` (each judged metric, or without --judge each whole-run metric, a test case)")
	return cmd
}

// runCompare is `surge compare`.
func runCompare(ctx context.Context, o compareOptions, stdout io.Writer) error {
	req, err := o.request()
	if err != nil {
		return err
	}
	prom, err := o.readBaseline(ctx, req)
	if err != nil {
		return err
	}
	return withController(o.controller, o.auth, func(c *grpcClients) error {
		if err := resolveRuns(ctx, c.runs, &req.RunA, &req.RunB); err != nil {
			return err
		}
		if req.RunA != "" && req.RunA == req.RunB {
			return usageErrorf("compare: %s and %s are the same run, %s: nothing to compare", o.runA, o.runB, req.RunA)
		}
		ctx, cancel := context.WithTimeout(ctx, rpcTimeout)
		defer cancel()
		var notes []string
		if prom != nil {
			var err error
			if req.BaselineMonitors, notes, err = baselineMonitors(ctx, c, o.controller, prom, req.RunB); err != nil {
				return err
			}
		}
		resp, err := c.runs.Compare(ctx, req)
		if err != nil {
			return rpcErr("compare", o.controller, err)
		}
		resp.Notes = append(resp.Notes, notes...)
		return o.output(resp, stdout)
	})
}

// request checks the flags into the Compare request (without baseline
// rows).
func (o compareOptions) request() (*surgev1.CompareRequest, error) {
	if !(o.tolerance > 0) {
		return nil, usageErrorf("--tolerance %v: must be > 0", o.tolerance)
	}
	switch o.by {
	case report.ByRequest, report.ByRegion, report.ByScenario:
	default:
		return nil, usageErrorf("--by %q: want request, region or scenario", o.by)
	}
	if o.baseline != "" && o.prom.url != "" {
		return nil, usageErrorf("give --baseline or --baseline-prometheus, not both")
	}
	jo, err := o.judge.options()
	if err != nil {
		return nil, err
	}
	if jo != nil && o.runA == "" {
		return nil, usageErrorf("--judge needs two runs: a baseline has figures, not distributions")
	}
	req := &surgev1.CompareRequest{RunA: o.runA, RunB: o.runB, Tolerance: o.tolerance, By: o.by, WindowMs: o.window.Milliseconds(), Judge: jo}
	if o.window <= 0 {
		req.WindowMs = -1
	}
	return req, nil
}

// readBaseline reads --baseline or --baseline-prometheus into req's rows;
// the Prometheus reader is returned for the monitors (nil otherwise).
func (o compareOptions) readBaseline(ctx context.Context, req *surgev1.CompareRequest) (*baseline.Prometheus, error) {
	var src baseline.Reader
	var prom *baseline.Prometheus
	switch {
	case o.baseline != "":
		src = baseline.CSVFile(o.baseline)
	case o.prom.url != "":
		p, err := o.prom.reader()
		if err != nil {
			return nil, err
		}
		src, prom = p, p
	default:
		return nil, nil
	}
	rctx, cancel := context.WithTimeout(ctx, rpcTimeout)
	defer cancel()
	rows, err := src.Rows(rctx)
	if err != nil {
		return nil, fmt.Errorf("compare: %w", err)
	}
	req.Baseline = rows
	return prom, nil
}

// output prints the comparison (text or JSON), writes --junit, and maps
// the verdict to the exit status: the judge's when it ran, else 1 when a
// metric diverged.
func (o compareOptions) output(resp *surgev1.CompareResponse, stdout io.Writer) error {
	if o.json {
		b, err := report.CompareJSON(resp)
		if err != nil {
			return err
		}
		if _, err := stdout.Write(b); err != nil {
			return err
		}
	} else if err := report.CompareText(stdout, resp); err != nil {
		return fmt.Errorf("print comparison: %w", err)
	}
	if err := writeReport(o.junit, "junit report", func() ([]byte, error) { return report.CompareJUnit(resp) }); err != nil {
		return err
	}
	if j := resp.GetJudgement(); j != nil {
		return judgeExit(j)
	}
	if resp.GetDiverged() > 0 {
		return &exitError{code: exitFailure, reported: true,
			err: fmt.Errorf("%d metrics diverged beyond %.0f%%", resp.GetDiverged(), resp.GetTolerance()*100)}
	}
	return nil
}

// baselineMonitors evaluates run's monitor queries over production's range
// in its Prometheus, for compare to put beside the run's own values.
func baselineMonitors(ctx context.Context, c *grpcClients, controller string, p *baseline.Prometheus, run string) ([]*surgev1.MonitorSummary, []string, error) {
	sum, err := c.runs.Get(ctx, &surgev1.GetRunRequest{RunId: run})
	if err != nil {
		return nil, nil, rpcErr("compare", controller, err)
	}
	queries := map[string]string{}
	for _, m := range sum.GetMonitors() {
		queries[m.GetName()] = m.GetQuery()
	}
	if len(queries) == 0 {
		return nil, nil, nil
	}
	ms, notes, err := p.Monitors(ctx, queries)
	if err != nil {
		return nil, nil, fmt.Errorf("compare: %w", err)
	}
	return ms, notes, nil
}
