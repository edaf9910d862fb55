// Command fleet measures surge's controller side with real
// processes on loopback and prints Markdown:
//
//   - fleet (default): a `surge controller` child process and N simulated
//     agents speaking AgentGateway (Hello, accept, one snapshot per
//     interval with increasing seq, final snapshot, heartbeats) run one
//     plan; it reports the controller's CPU and the emission lag (an
//     interval's end to its progress reaching a Runs.Watch client), goal 5.
//     go run ./scripts/fleet -agents 500 -series 20 -duration 30s
//   - -soak D: a controller, one real agent and `surge target` run a
//     constant-rate plan for D; it samples both daemons' RSS every
//     -sample and reports the growth after the first minute, goal 7.
//   - -wire: snapshots of -series series over a real gRPC stream without
//     compression, with gzip and with zstd, through a byte-counting
//     connection: bytes and CPU per snapshot, and each codec's compress and
//     decompress CPU alone, goal 4.
//
// With -json FILE it also writes the figures as JSON (output, below) for
// scripts/bench, which puts them in docs/benchmarks.md.
//
// Every process it starts is its own child, stopped by pid on exit; every
// load is bounded in time and aimed at 127.0.0.1.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"github.com/surgeload/surge/scripts/fleet/fleetjson"
)

// options are the program's flags.
type options struct {
	surge    string
	agents   int
	series   int
	values   int
	variants int
	duration time.Duration
	interval time.Duration
	jitter   time.Duration
	compress bool

	soak   time.Duration
	rate   int
	sample time.Duration

	wire      bool
	snapshots int

	keep bool
	json string
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "fleet:", err)
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

func parse(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("fleet", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.surge, "surge", "bin/surge", "the surge `BINARY` (make build)")
	fs.IntVar(&o.agents, "agents", 500, "simulated agents")
	fs.IntVar(&o.series, "series", 20, "series per snapshot (wire mode: 10)")
	fs.IntVar(&o.values, "values", 1000, "values per histogram (each series has a latency and a service-time histogram)")
	fs.IntVar(&o.variants, "variants", 8, "distinct snapshot payloads the agents take turns sending")
	fs.DurationVar(&o.duration, "duration", 30*time.Second, "run duration (fleet mode)")
	fs.DurationVar(&o.interval, "interval", time.Second, "snapshot interval")
	fs.DurationVar(&o.jitter, "jitter", 20*time.Millisecond, "agents send their snapshots spread over this much after each interval's end")
	fs.BoolVar(&o.compress, "compress", true, "compress the agents' streams with zstd, as agents do")
	fs.DurationVar(&o.soak, "soak", 0, "soak mode: run a real controller, agent and target at -rate for this long")
	fs.IntVar(&o.rate, "rate", 1000, "soak mode: requests per second")
	fs.DurationVar(&o.sample, "sample", 10*time.Second, "soak mode: RSS sampling period")
	fs.BoolVar(&o.wire, "wire", false, "wire mode: bytes and CPU per snapshot over gRPC, without compression, with gzip and with zstd")
	fs.IntVar(&o.snapshots, "snapshots", 300, "wire mode: snapshots sent per compression")
	fs.BoolVar(&o.keep, "keep", false, "keep the working directory (logs, controller data)")
	fs.StringVar(&o.json, "json", "", "also write the figures as JSON to `FILE` (for scripts/bench)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if o.wire && !set["series"] {
		o.series = 10 // goal 4 is stated for 10 series
	}
	switch {
	case fs.NArg() > 0:
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	case o.agents < 1 || o.series < 1 || o.values < 1 || o.variants < 1:
		return o, errors.New("-agents, -series, -values and -variants must be >= 1")
	case o.interval < 100*time.Millisecond || o.duration < o.interval:
		return o, errors.New("-interval must be >= 100ms and -duration at least one interval")
	case o.jitter < 0 || o.jitter >= o.interval:
		return o, errors.New("-jitter must be in [0, -interval)")
	case o.soak < 0 || (o.soak > 0 && o.soak < 2*o.sample):
		return o, errors.New("-soak must be at least two -sample periods")
	case o.rate < 1 || o.snapshots < 1:
		return o, errors.New("-rate and -snapshots must be >= 1")
	case o.wire && o.soak > 0:
		return o, errors.New("-wire and -soak are separate modes")
	}
	return o, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parse(args, stderr)
	if err != nil {
		return err
	}
	// The report goes to stdout and, with -json, into the JSON output too.
	var md bytes.Buffer
	out := output{When: time.Now().UTC(), Machine: machine()}
	if o.wire {
		res, err := runWire(ctx, o)
		if err != nil {
			return err
		}
		fmt.Fprintf(&md, "## Snapshot stream bytes (goal 4), %s\n\n", machine())
		res.markdown(&md)
		out.Mode, out.Wire = "wire", res.output()
		return emit(o, out, &md, stdout)
	}
	if _, err := os.Stat(o.surge); err != nil {
		return fmt.Errorf("surge binary: %w (run `make build`, or pass -surge)", err)
	}
	dir, err := os.MkdirTemp("", "surge-fleet-")
	if err != nil {
		return fmt.Errorf("work dir: %w", err)
	}
	if o.keep {
		fmt.Fprintf(stderr, "working directory %s (kept)\n", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	if o.soak > 0 {
		res, err := runSoak(ctx, o, dir, stderr)
		if err != nil {
			return err
		}
		fmt.Fprintf(&md, "## Memory over a %s constant-rate run (goal 7), %s\n\n", o.soak, machine())
		res.markdown(&md)
		out.Mode, out.Soak = "soak", res.output()
		return emit(o, out, &md, stdout)
	}
	res, err := runFleet(ctx, o, dir, stderr)
	if err != nil {
		return err
	}
	fmt.Fprintf(&md, "## Simulated fleet (goal 5), %s\n\n", machine())
	res.markdown(&md)
	out.Mode, out.Fleet = "fleet", res.output()
	return emit(o, out, &md, stdout)
}

// emit writes the Markdown report to stdout and, with -json, out (the
// report included) to that file.
func emit(o options, out output, md *bytes.Buffer, stdout io.Writer) error {
	out.Markdown = md.String()
	if _, err := md.WriteTo(stdout); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if o.json == "" {
		return nil
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return fmt.Errorf("json: %w", err)
	}
	if err := os.WriteFile(o.json, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("json: %w", err)
	}
	return nil
}

// The -json form of one mode's figures (package fleetjson, which
// scripts/bench reads), under the names this program uses.
type (
	output       = fleetjson.Output
	wireOutput   = fleetjson.Wire
	fleetOutput  = fleetjson.Fleet
	soakOutput   = fleetjson.Soak
	growthOutput = fleetjson.Growth
)

func (r *wireResult) output() []wireOutput {
	out := make([]wireOutput, 0, len(r.rows))
	for _, row := range r.rows {
		out = append(out, wireOutput{Compression: row.name, Description: row.description, Series: r.o.series, Snapshots: r.o.snapshots,
			BytesPerSnapshot: row.bytes, CPUPerSnapshotUS: us(row.cpu), ProtoBytes: row.protoBytes,
			Agents: row.agents, KBPerAgentS: row.bytes / 1000, CodecBytes: row.codecBytes, CompressUS: us(row.compress), DecompressUS: us(row.decompress)})
	}
	return out
}

func (r *fleetResult) output() *fleetOutput {
	win := max(r.window.Seconds(), 1e-9)
	msf := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	lags := make([]int64, len(r.lags))
	for i, l := range r.lags {
		lags[i] = l.Milliseconds()
	}
	return &fleetOutput{Agents: r.o.agents, Series: r.o.series, Values: r.o.values, Compressed: r.o.compress,
		DurationS: r.o.duration.Seconds(), IntervalS: r.o.interval.Seconds(), Expected: r.expected, Emitted: r.emitted,
		SnapshotsSent: r.snapshotsSent, SnapshotsAcked: r.acked, Requests: r.requests, RequestsSent: r.expected2,
		WindowS: r.window.Seconds(), ControllerCores: r.ctrlCPU.Seconds() / win, PeakCores: r.peakCores,
		LagP50MS: msf(percentile(r.lags, 50)), LagP99MS: msf(percentile(r.lags, 99)), LagMaxMS: msf(percentile(r.lags, 100)), LagsMS: lags,
		BytesPerAgentS: float64(r.bytesOut) / win / float64(r.o.agents), CtrlRSSPeakMiB: float64(r.ctrlRSSPeakKiB) / 1024,
		SimulatorCores: r.simCPU.Seconds() / win, Status: r.status, Verdict: r.verdict, Warnings: r.warn, Errors: r.errs}
}

func (r *soakResult) output() *soakOutput {
	out := &soakOutput{DurationS: r.o.soak.Seconds(), Rate: r.o.rate, SampleS: r.o.sample.Seconds(), Samples: len(r.samples),
		Status: r.status, Requests: r.requests, Failures: r.failures, Growth: []growthOutput{}}
	if len(r.samples) > 0 {
		first, last := r.samples[0], r.samples[len(r.samples)-1]
		secs := max((last.at - first.at).Seconds(), 1e-9)
		out.ControllerCPUPct = 100 * (last.ctrlCPU - first.ctrlCPU).Seconds() / secs
		out.AgentCPUPct = 100 * (last.agentCPU - first.agentCPU).Seconds() / secs
	}
	for _, d := range soakSeries() {
		if base, last, peak, trend, ok := r.growth(d.kib); ok {
			out.Growth = append(out.Growth, growthOutput{Name: d.name, BaseAtS: base.at.Seconds(), BaseMiB: float64(d.kib(base)) / 1024,
				TrendPct: trend, LastPct: last, PeakPct: peak})
		}
	}
	return out
}

// machine names the machine and date for the report.
func machine() string {
	return fmt.Sprintf("%s, %d cores, %s/%s, %s", time.Now().UTC().Format("2006-01-02 15:04 UTC"), runtime.NumCPU(),
		runtime.GOOS, runtime.GOARCH, runtime.Version())
}
