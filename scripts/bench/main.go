// Command bench runs surge side by side with wrk, hey and vegeta against one
// nginx target on loopback and writes docs/benchmarks.md. It is
// driven by scripts/bench.sh, which installs the peers and builds surge.
//
// Every figure here is measured in one run on one machine: compare the
// ratios, not absolute numbers across runs. Every load is bounded in time
// and aimed at 127.0.0.1 only; every process started is killed on exit.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"
)

// options are the harness's flags.
type options struct {
	surge, wrk, hey, vegeta, nginx string
	conns                          int
	duration                       time.Duration
	pacingDuration                 time.Duration
	rates                          string
	idleVUs                        int
	smoke                          bool
	out                            string
	micro                          string
	microBefore                    string
	only                           string
	agentProfile                   string
	agentPacingSpin                time.Duration
	fidelitySleep                  bool
	rounds                         int
	holdConns                      int
	hold                           time.Duration
	executorTest                   string
	microFiles                     string
	// scripts/fleet: the controller side (goals 4, 5 and 7).
	fleet         string
	fleetAgents   int
	fleetSeries   int
	fleetDuration time.Duration
	wireSnapshots int
	soak          time.Duration
	soakSample    time.Duration
	soakRecord    string
	commit        string
}

func main() {
	// The fidelity target: this binary again, serving a fixed delay.
	if len(os.Args) > 1 && os.Args[1] == "serve-delay" {
		if err := serveDelay(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "bench serve-delay:", err)
			os.Exit(1)
		}
		return
	}
	var o options
	flag.StringVar(&o.surge, "surge", "bin/surge", "surge binary")
	flag.StringVar(&o.wrk, "wrk", "wrk", "wrk binary")
	flag.StringVar(&o.hey, "hey", "hey", "hey binary")
	flag.StringVar(&o.vegeta, "vegeta", "vegeta", "vegeta binary")
	flag.StringVar(&o.nginx, "nginx", "nginx", "nginx binary")
	flag.IntVar(&o.conns, "conns", 64, "connections (and VUs) per tool")
	flag.DurationVar(&o.duration, "duration", 5*time.Second, "duration of each throughput and fidelity run")
	flag.DurationVar(&o.pacingDuration, "pacing-duration", 30*time.Second, "duration of each pacing run")
	flag.StringVar(&o.rates, "rates", "1000,10000,50000", "open-model arrival rates to pace, per second")
	flag.IntVar(&o.idleVUs, "idle-vus", 5000, "VUs held on idle connections for the memory figure")
	flag.BoolVar(&o.smoke, "smoke", false, "prove the harness runs; print, do not write -out")
	flag.StringVar(&o.out, "out", "docs/benchmarks.md", "Markdown report to write")
	flag.StringVar(&o.micro, "micro", "", "go test -bench output of ./hist/ (this tree)")
	flag.StringVar(&o.microBefore, "micro-before", "", "go test -bench output of ./hist/ before this change, if any")
	flag.StringVar(&o.only, "only", "", "run only these parts, comma-separated: wire,fleet,soak,idle,peers,fidelity,pacing,hold (the report is not written; a soak still updates -soak-record)")
	flag.IntVar(&o.rounds, "rounds", 5, "rounds of the max-throughput and fidelity runs (the report shows medians; the tools' order changes each round)")
	flag.IntVar(&o.holdConns, "hold-conns", 45000, "connections three agents hold for -hold (0: not run)")
	flag.DurationVar(&o.hold, "hold", 60*time.Second, "how long the agents hold -hold-conns connections")
	flag.StringVar(&o.executorTest, "executor-test", "", "go test -c binary of ./agent/executor: runs its open-model and iteration benchmarks against the nginx target")
	flag.StringVar(&o.microFiles, "micro-agent", "", "go test -bench outputs of the agent packages, comma-separated (the hot-path table)")
	flag.StringVar(&o.fleet, "fleet", "", "scripts/fleet binary: the snapshot stream (-wire), a simulated fleet and the soak (empty: not run)")
	flag.IntVar(&o.fleetAgents, "fleet-agents", 500, "simulated agents of the fleet run")
	flag.IntVar(&o.fleetSeries, "fleet-series", 20, "series per snapshot of the fleet run")
	flag.DurationVar(&o.fleetDuration, "fleet-duration", 30*time.Second, "duration of the fleet run")
	flag.IntVar(&o.wireSnapshots, "wire-snapshots", 300, "snapshots per compression of the wire run")
	flag.DurationVar(&o.soak, "soak", 0, "run the soak (a controller, an agent and a target at a constant rate) for this long; 0: report the last one from -soak-record")
	flag.DurationVar(&o.soakSample, "soak-sample", 10*time.Second, "RSS sampling period of the soak")
	flag.StringVar(&o.soakRecord, "soak-record", "docs/bench-soak.json", "the last soak's figures, date and commit: written by a soak, read by a run without one")
	flag.StringVar(&o.commit, "commit", "", "the tree's commit, for the soak record (default: git rev-parse)")
	flag.StringVar(&o.agentProfile, "agent-cpuprofile", "", "write the agent's CPU profile over the whole harness run to `FILE` (surge agent --cpuprofile)")
	flag.DurationVar(&o.agentPacingSpin, "agent-pacing-spin", 0, "the agents' --pacing-spin (0: not passed)")
	flag.BoolVar(&o.fidelitySleep, "fidelity-sleep", false, "the fidelity target holds requests with time.Sleep (a Go timer) instead of a timerfd")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, o, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// env is what one harness run shares.
type env struct {
	o         options
	tmp       string
	ps        *procs
	pinClient []string // taskset prefix for load generators
	pinTarget []string // taskset prefix for targets
	// pinInfra: the controller's and the CLI's prefix, pinTarget at the
	// lowest CPU priority (nice 19), so that their once-a-second work
	// yields to the target: in a deployment they run on other machines.
	pinInfra []string
	pinNote  string
	log      io.Writer // the processes' output
	stdout   io.Writer // the harness's progress
	nginxURL string
	// pacedURL is the same nginx on a port that logs each request's time
	// (accessLog): the pacing runs' target, counted by the target itself.
	pacedURL   string
	accessLog  string
	agentPprof string // the bench agent's /debug/pprof address ("": none)
	controller string
	agentPID   int
	busy       int // times waitQuiet gave up: the agent was still busy
}

// clientParts are the parts -only may name that need nginx, a controller
// and an agent (the others, wire, fleet and soak, are scripts/fleet's).
var clientParts = []string{"idle", "peers", "fidelity", "pacing", "hold"}

// want reports whether -only leaves part to run.
func (o options) want(part string) bool {
	return o.only == "" || slices.Contains(strings.Split(o.only, ","), part)
}

// withSmoke shrinks every load to seconds for -smoke: enough to run each
// code path once, too little for a verdict.
func (o options) withSmoke() options {
	if !o.smoke {
		return o
	}
	o.duration, o.pacingDuration, o.rates, o.idleVUs, o.conns = time.Second, 2*time.Second, "1000", 100, min(o.conns, 16)
	o.rounds, o.holdConns = 2, min(o.holdConns, 300)
	o.fleetAgents, o.fleetSeries, o.fleetDuration = min(o.fleetAgents, 5), min(o.fleetSeries, 2), 3*time.Second
	o.wireSnapshots = min(o.wireSnapshots, 20)
	// A soak of seconds: too short for a growth figure, long enough
	// to prove the soak runs and its output is understood.
	o.soak, o.soakSample = 5*time.Second, time.Second
	return o
}

// raiseFDLimit raises the open-file limit, which the processes started
// inherit: agents and nginx workers holding many connections need it up
// to the most one process may hold.
func raiseFDLimit() error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && lim.Cur < min(lim.Max, maxFDs) {
		lim.Cur = min(lim.Max, maxFDs)
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			return fmt.Errorf("raise the open-file limit to %d: %w", lim.Cur, err)
		}
	}
	return nil
}

func run(ctx context.Context, o options, stdout io.Writer) error {
	o = o.withSmoke()
	o.rounds = max(o.rounds, 1)
	if o.commit == "" {
		o.commit = gitCommit()
	}
	if err := raiseFDLimit(); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "surge-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	logf, err := os.Create(filepath.Join(tmp, "procs.log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	e := &env{o: o, tmp: tmp, ps: &procs{}, log: logf, stdout: stdout}
	defer e.ps.killAll()
	e.pin()
	r := &report{When: time.Now().UTC(), Machine: machine(), Pin: e.pinNote, Conns: o.conns, Duration: o.duration, Smoke: o.smoke}

	// Goals 4, 5 and 7: the controller side, measured by scripts/fleet
	// with real processes, first, while nothing else of the harness runs.
	if err := e.controllerSide(ctx, r); err != nil {
		return err
	}
	if !slices.ContainsFunc(clientParts, o.want) {
		fmt.Fprintln(stdout, "bench: ok (report not written)")
		return nil
	}
	if err := e.startNginx(); err != nil {
		return err
	}
	if err := e.startCluster(ctx); err != nil {
		return fmt.Errorf("%w (log: %s)", err, tail(filepath.Join(tmp, "procs.log")))
	}
	// In this order: idle memory while the agent's heap is fresh (later
	// runs leave free heap behind that would hide the growth); fidelity
	// before pacing, whose 50k/s overload can leave the agent busy for a
	// while; the held connections last, with two more agents.
	steps := []struct {
		part string
		fn   func(context.Context, *report) error
	}{{"idle", e.measureIdle}, {"peers", e.measurePeers}, {"fidelity", e.measureFidelity}, {"pacing", e.measurePacing}, {"hold", e.measureHold}}
	for _, s := range steps {
		if !o.want(s.part) {
			continue
		}
		if err := s.fn(ctx, r); err != nil {
			return err
		}
	}
	if err := r.addMicroFiles(o); err != nil {
		return err
	}
	r.AgentBusy = e.busy
	return writeReport(r, o, stdout)
}

// writeReport writes docs/benchmarks.md (-out), keeping its hand-written
// notes; a smoke run prints its goals table instead, and -only writes
// nothing.
func writeReport(r *report, o options, stdout io.Writer) error {
	if o.smoke || o.only != "" {
		if o.smoke {
			fmt.Fprint(stdout, "\n"+r.goalsTable()+"\n")
		}
		fmt.Fprintln(stdout, "bench: ok (report not written)")
		return nil
	}
	old, _ := os.ReadFile(o.out)
	md := keepNotes(r.markdown(), string(old))
	if err := os.WriteFile(o.out, []byte(md), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "bench: wrote %s\n", o.out)
	return nil
}

func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	return fmt.Sprintf("%d cores, %s, %s/%s, %s", runtime.NumCPU(), model, runtime.GOOS, runtime.GOARCH, runtime.Version())
}
