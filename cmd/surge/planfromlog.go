package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/surgeload/surge/plan"
	"github.com/surgeload/surge/plan/fromlog"
)

// maxMalformedShown bounds the malformed lines listed one by one.
const maxMalformedShown = 20

type fromLogOptions struct {
	file     string
	format   string
	window   time.Duration
	scale    float64
	speedup  float64
	regions  string
	target   string
	name     string
	output   string
	baseline string
	top      int
}

func newPlanCmd(e env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "plan",
		Short: "Derive plans",
	}
	cmd.AddCommand(newPlanFromLogCmd(e))
	return cmd
}

func newPlanFromLogCmd(e env) *cobra.Command {
	var o fromLogOptions
	cmd := &cobra.Command{
		Use:   "from-log ACCESS_LOG",
		Short: "Derive a plan that replays an access log's rate curve and request mix",
		Long: `from-log reads a web server access log (nginx/Apache combined format, JSON
lines, or CSV timestamp,method,path,status,duration), groups paths into endpoint
templates (numeric ids, UUIDs and long hex ids become {id}), counts each
endpoint's requests per --window and writes a plan with one ramping-arrival-rate
scenario per endpoint whose schedule holds exactly each window's count times
--scale. --speedup compresses time (60: each minute of the log runs in a
second). It prints the traffic's profile (top endpoints, peak window,
peak-to-mean, inter-arrival variability) to stderr. Malformed lines are
reported with their line numbers, skipped and counted. --target is the plan's
base_url (surge run --base-url overrides it).

--baseline FILE also writes the log's own figures, per endpoint and for "all":
p50/p95/p99 of its response times ($request_time and the like), error rate
(responses of 400 and above) and the rate the plan sends, as the CSV that
surge compare --baseline FILE RUN reads.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.file = args[0]
			return runPlanFromLog(o, e.stdout, e.stderr)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.format, "format", "", "log format: combined, json or csv (default: by file extension and content)")
	f.DurationVar(&o.window, "window", fromlog.DefaultWindow, "width of the rate curve's steps")
	f.Float64Var(&o.scale, "scale", 1, "multiply every rate (0.1: a tenth of the log's traffic)")
	f.Float64Var(&o.speedup, "speedup", 1, "compress time: each window runs in window/speedup")
	f.StringVar(&o.regions, "regions", "", "region weights, e.g. us-east=0.5,eu-west=0.5")
	f.StringVar(&o.target, "target", fromlog.DefaultTarget, "the plan's base_url: where the system under test listens (surge run --base-url overrides it)")
	f.StringVar(&o.name, "name", "", "plan name (default from-log-<file>)")
	f.StringVarP(&o.output, "output", "o", "", "write the plan to `FILE` instead of stdout")
	f.StringVar(&o.baseline, "baseline", "", "also write the log's latency, error rate and rate per endpoint to `CSV`, for surge compare --baseline")
	f.IntVar(&o.top, "top", 10, "endpoints listed in the profile (0: all)")
	return cmd
}

// runPlanFromLog is `surge plan from-log`.
func runPlanFromLog(o fromLogOptions, stdout, stderr io.Writer) error {
	regions, err := parseRegionWeights(o.regions)
	if err != nil {
		return withExitCode(exitUsage, err)
	}
	src, err := os.ReadFile(o.file)
	if err != nil {
		return fmt.Errorf("from-log: %w", err)
	}
	format := o.format
	if format == "" {
		format = detectLogFormat(o.file, src)
	}
	recs, bad, err := fromlog.Read(strings.NewReader(string(src)), format)
	if err != nil {
		return withExitCode(exitUsage, fmt.Errorf("from-log: %w", err))
	}
	for i, m := range bad {
		if i == maxMalformedShown {
			fmt.Fprintf(stderr, "%s: ... %d more malformed lines\n", o.file, len(bad)-i)
			break
		}
		fmt.Fprintf(stderr, "%s:%d: malformed, skipped: %v\n", o.file, m.Line, m.Err)
	}
	prof, err := fromlog.Analyze(recs, o.window)
	if err != nil {
		return fmt.Errorf("from-log %s: %w (%d malformed lines)", o.file, err, len(bad))
	}
	name := o.name
	if name == "" {
		base := o.file[strings.LastIndexAny(o.file, `/\`)+1:]
		if i := strings.IndexByte(base, '.'); i > 0 {
			base = base[:i]
		}
		name = "from-log-" + base
	}
	opts := fromlog.Options{Window: o.window, Scale: o.scale, Speedup: o.speedup, Regions: regions, Target: o.target, Name: name}
	src, err = prof.Plan(opts)
	if err != nil {
		return withExitCode(exitUsage, fmt.Errorf("from-log: %w", err))
	}
	// The derived plan must be one surge accepts.
	if _, err := plan.Parse(name+".yaml", src); err != nil {
		return fmt.Errorf("from-log: derived plan is invalid: %w", err)
	}
	var baseline bytes.Buffer
	if o.baseline != "" {
		skipped, err := prof.WriteBaseline(&baseline, opts)
		if err != nil {
			return fmt.Errorf("from-log --baseline: %w", err)
		}
		for _, e := range skipped {
			fmt.Fprintf(stderr, "baseline: %s has no response times in the log, left out\n", e)
		}
	}
	if err := prof.WriteSummary(stderr, len(bad), o.top); err != nil {
		return err
	}
	if o.baseline != "" {
		if err := os.WriteFile(o.baseline, baseline.Bytes(), 0o644); err != nil {
			return fmt.Errorf("from-log: %w", err)
		}
		fmt.Fprintf(stderr, "baseline written to %s; compare a run of the plan with it: surge compare --baseline %s RUN_ID\n", o.baseline, o.baseline)
	}
	if o.output == "" {
		_, err = stdout.Write(src)
		return err
	}
	if err := os.WriteFile(o.output, src, 0o644); err != nil {
		return fmt.Errorf("from-log: %w", err)
	}
	_, err = fmt.Fprintf(stderr, "plan written to %s (%d scenarios)\n", o.output, len(prof.Endpoints))
	return err
}

// detectLogFormat guesses a log's format from its extension, then its first
// non-empty line.
func detectLogFormat(file string, src []byte) string {
	switch {
	case strings.HasSuffix(file, ".csv"):
		return fromlog.FormatCSV
	case strings.HasSuffix(file, ".json"), strings.HasSuffix(file, ".jsonl"), strings.HasSuffix(file, ".ndjson"):
		return fromlog.FormatJSON
	}
	for line := range strings.Lines(string(src)) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "{") {
			return fromlog.FormatJSON
		}
		if strings.Contains(line, "[") && strings.Contains(line, `"`) {
			return fromlog.FormatCombined
		}
		return fromlog.FormatCSV
	}
	return fromlog.FormatCombined
}

// parseRegionWeights reads "us-east=0.5,eu-west=0.5".
func parseRegionWeights(s string) (map[string]float64, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	out := map[string]float64{}
	for part := range strings.SplitSeq(s, ",") {
		name, w, ok := strings.Cut(strings.TrimSpace(part), "=")
		v, err := strconv.ParseFloat(w, 64)
		if !ok || name == "" || err != nil || !(v > 0) {
			return nil, fmt.Errorf("--regions %q: want name=weight,... with weights > 0", s)
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("--regions: region %q given twice", name)
		}
		out[name] = v
	}
	return out, nil
}
