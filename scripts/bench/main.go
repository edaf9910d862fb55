// Command bench runs surge side by side with wrk, hey and vegeta against one
// nginx target on loopback and writes docs/benchmarks.md (issue 7). It is
// driven by scripts/bench.sh, which installs the peers and builds surge.
//
// Every figure here is measured in one run on one machine: compare the
// ratios, not absolute numbers across runs. Every load is bounded in time
// and aimed at 127.0.0.1 only; every process started is killed on exit.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/surgeload/surge/hist"
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

// procs owns every process the harness starts, and kills them all.
type procs struct {
	cmds []*exec.Cmd
}

func (p *procs) start(name string, args []string, logf io.Writer) (*exec.Cmd, error) {
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", filepath.Base(name), err)
	}
	p.cmds = append(p.cmds, cmd)
	return cmd, nil
}

func (p *procs) killAll() {
	for i := len(p.cmds) - 1; i >= 0; i-- {
		c := p.cmds[i]
		if c.Process == nil {
			continue
		}
		_ = syscall.Kill(-c.Process.Pid, syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = c.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(3 * time.Second):
			_ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
			<-done
		}
	}
	p.cmds = nil
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
	pinInfra   []string
	pinNote    string
	log        io.Writer
	nginxURL   string
	controller string
	agentPID   int
	busy       int // times waitQuiet gave up: the agent was still busy
}

func run(ctx context.Context, o options, stdout io.Writer) error {
	if o.smoke {
		o.duration, o.pacingDuration, o.rates, o.idleVUs, o.conns = time.Second, 2*time.Second, "1000", 100, min(o.conns, 16)
		o.rounds, o.holdConns = 2, min(o.holdConns, 300)
		o.fleetAgents, o.fleetSeries, o.fleetDuration = min(o.fleetAgents, 5), min(o.fleetSeries, 2), 3*time.Second
		o.wireSnapshots = min(o.wireSnapshots, 20)
		// A soak of seconds: too short for a growth figure, long enough
		// to prove the soak runs and its output is understood.
		o.soak, o.soakSample = 5*time.Second, time.Second
	}
	o.rounds = max(o.rounds, 1)
	if o.commit == "" {
		o.commit = gitCommit()
	}
	// The processes started inherit this limit: agents and nginx workers
	// holding many connections need it up to the most one process may hold.
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && lim.Cur < min(lim.Max, maxFDs) {
		lim.Cur = min(lim.Max, maxFDs)
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			return fmt.Errorf("raise the open-file limit to %d: %w", lim.Cur, err)
		}
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
	e := &env{o: o, tmp: tmp, ps: &procs{}, log: logf}
	defer e.ps.killAll()
	e.pin()

	want := func(part string) bool {
		return o.only == "" || slices.Contains(strings.Split(o.only, ","), part)
	}
	r := &report{When: time.Now().UTC(), Machine: machine(), Pin: e.pinNote, Conns: o.conns, Duration: o.duration, Smoke: o.smoke}

	// Goals 4, 5 and 7: the controller side, measured by scripts/fleet
	// with real processes, first, while nothing else of the harness runs.
	if err := e.controllerSide(ctx, r, want, stdout); err != nil {
		return err
	}
	if !slices.ContainsFunc([]string{"idle", "peers", "fidelity", "pacing", "hold"}, want) {
		fmt.Fprintln(stdout, "bench: ok (report not written)")
		return nil
	}
	if err := e.startNginx(); err != nil {
		return err
	}
	if err := e.startCluster(ctx); err != nil {
		return fmt.Errorf("%w (log: %s)", err, tail(filepath.Join(tmp, "procs.log")))
	}

	// Goal 6 (part): agent memory per idle VU on a held connection, first,
	// while the agent's heap is fresh (later runs leave free heap behind
	// that would hide the growth).
	if want("idle") {
		fmt.Fprintf(stdout, "bench: idle memory, %d VUs\n", o.idleVUs)
		if r.Idle, err = e.idleMemory(ctx); err != nil {
			return fmt.Errorf("idle memory: %w", err)
		}
		fmt.Fprintf(stdout, "bench:   %d VUs, %d fds open at peak, %.0f KiB RSS growth, %.1f KiB each\n",
			r.Idle.Conns, r.Idle.FDs, r.Idle.DeltaKiB, r.Idle.PerConnKiB())
		n := o.idleVUs
		m, err := e.executorBench(ctx, "^BenchmarkIdleVUs$", fmt.Sprintf("%dx", n))
		if err != nil {
			return fmt.Errorf("idle memory in-process: %w", err)
		}
		if x, ok := m["BenchmarkIdleVUs"]; ok {
			r.IdleInProcess = &x
			fmt.Fprintf(stdout, "bench:   in-process: stack %.0f B, heap %.0f B, RSS %.0f B per VU\n",
				x.Metrics["stack-B/vu"], x.Metrics["heap-B/vu"], x.Metrics["rss-B/vu"])
		}
	}

	// Goal 1: the same target, connection count and duration for every
	// tool, in rounds, so that each round's ratios compare tools measured
	// close together in time. The order changes each round (roundOrder),
	// so no tool always goes first or follows the same one; each round's
	// results are kept in the fixed order below.
	tools := []struct {
		name string
		fn   func(context.Context) (throughput, error)
	}{{"wrk", e.wrk}, {"hey", e.hey}, {"vegeta", e.vegeta}, {"surge", e.surgeMax}}
	for round := range o.rounds {
		if !want("peers") {
			break
		}
		rr := make([]throughput, len(tools))
		for _, i := range roundOrder(round, len(tools)) {
			t := tools[i]
			fmt.Fprintf(stdout, "bench: round %d/%d: %s, %d connections, %s\n", round+1, o.rounds, t.name, o.conns, o.duration)
			res, err := t.fn(ctx)
			if err != nil {
				return fmt.Errorf("%s: %w", t.name, err)
			}
			res.Tool = t.name
			fmt.Fprintf(stdout, "bench:   %d requests, %.0f req/s, %.2f CPU s, %.0f req per CPU-second\n",
				res.Requests, res.RPS(), res.CPU, res.PerCPU())
			rr[i] = res
		}
		r.Rounds = append(r.Rounds, rr)
	}
	r.Peers = medianPeers(r.Rounds)
	if want("peers") && o.executorTest != "" {
		benchtime := "2s"
		if o.smoke {
			benchtime = "20x"
		}
		fmt.Fprintln(stdout, "bench: agent/executor BenchmarkIteration against nginx")
		m, err := e.executorBench(ctx, "^BenchmarkIteration$", benchtime)
		if err != nil {
			return err
		}
		r.addMicroAgent(m)
	}

	// Goal 3: latency fidelity against a 10 ms target at 1k/s, before the
	// pacing runs (whose 50k/s overload can leave the agent busy for a while).
	if want("fidelity") {
		fmt.Fprintf(stdout, "bench: latency fidelity, 10ms target, 1000/s for %s\n", o.duration)
		if r.Fidelity, err = e.fidelity(ctx); err != nil {
			return fmt.Errorf("latency fidelity: %w", err)
		}
		f := r.Fidelity
		fmt.Fprintf(stdout, "bench:   surge p50 %dµs p99 %dµs (target held p50 %dµs); vegeta p50 %dµs p99 %dµs (target held p50 %dµs)\n",
			f.SurgeP50, f.SurgeP99, f.HoldSurge.P50, f.VegetaP50, f.VegetaP99, f.HoldVegeta.P50)
		for i := range f.SurgeP99s {
			fmt.Fprintf(stdout, "bench:   round %d: surge p99 %dµs (send lateness p99 %dµs, target held p99 %dµs, agent %.2f CPU s), vegeta p99 %dµs (target held p99 %dµs, %.2f CPU s)\n",
				i+1, f.SurgeP99s[i], f.SurgeLateP99s[i], f.HoldSurgeP99s[i], f.SurgeCPUs[i], f.VegetaP99s[i], f.HoldVegP99s[i], f.VegetaCPUs[i])
		}
	}

	// Goal 2: pacing. First the floor: how late the arrival loop's waiter
	// wakes on this machine with nothing else to do.
	if want("pacing") && o.executorTest != "" {
		fmt.Fprintln(stdout, "bench: agent/executor BenchmarkWaiter")
		n := "2000x"
		if o.smoke {
			n = "50x"
		}
		m, err := e.executorBench(ctx, "^BenchmarkWaiter$", n)
		if err != nil {
			return err
		}
		r.addMicroAgent(m)
	}
	for _, f := range strings.Split(o.rates, ",") {
		if !want("pacing") {
			break
		}
		rate, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return fmt.Errorf("-rates: %w", err)
		}
		fmt.Fprintf(stdout, "bench: pacing %d/s for %s\n", rate, o.pacingDuration)
		p, err := e.pacing(ctx, rate)
		if err != nil {
			return fmt.Errorf("pacing %d/s: %w", rate, err)
		}
		fmt.Fprintf(stdout, "bench:   %d windows, worst %.3f%%, %d within 0.1%%, deficit %d, dropped %d; arrivals/planned: %v\n",
			len(p.Windows), 100*p.Worst(), p.Within(0.001), p.Deficit, p.Dropped, p.Windows)
		secs := int(math.Max(1, math.Round(min(o.pacingDuration, 10*time.Second).Seconds())))
		fmt.Fprintf(stdout, "bench: pacing %d/s for %ds in-process (agent/executor BenchmarkOpenModel)\n", rate, secs)
		m, err := e.executorBench(ctx, "^BenchmarkOpenModel$", fmt.Sprintf("%dx", rate*secs), fmt.Sprintf("SURGE_BENCH_RATES=%d", rate))
		if err != nil {
			return fmt.Errorf("pacing %d/s in-process: %w", rate, err)
		}
		if x, ok := m[fmt.Sprintf("BenchmarkOpenModel/rate=%d", rate)]; ok {
			p.InProcess = &x
			fmt.Fprintf(stdout, "bench:   lateness p50 %.0fµs p99 %.0fµs max %.0fµs, dropped %.0f, worst window %.3f%%\n",
				x.Metrics["late-p50-µs"], x.Metrics["late-p99-µs"], x.Metrics["late-max-µs"], x.Metrics["dropped"], x.Metrics["worst-window-%"])
		}
		r.Pacing = append(r.Pacing, p)
	}

	// Goal 6: three agents hold many connections for a while.
	if want("hold") && o.holdConns > 0 {
		fmt.Fprintf(stdout, "bench: %d connections held by 3 agents\n", o.holdConns)
		if r.Hold, err = e.holdConnections(ctx); err != nil {
			return fmt.Errorf("hold connections: %w", err)
		}
		h := r.Hold
		fmt.Fprintf(stdout, "bench:   opened %d, peak open %d, established at the end %d (of %d), failures %d; agent RSS %v KiB, fds %v\n",
			h.Opened, h.PeakOpen, h.EstablishedAtEnd, h.Conns, h.Failures, h.AgentRSSKiB, h.AgentFDs)
	}

	if o.micro != "" {
		if r.Micro, err = parseMicro(o.micro); err != nil {
			return err
		}
	}
	for _, f := range strings.Split(o.microFiles, ",") {
		if f == "" {
			continue
		}
		m, err := parseMicro(f)
		if err != nil {
			return err
		}
		r.addMicroAgent(m)
	}
	if o.microBefore != "" {
		if r.MicroBefore, err = parseMicro(o.microBefore); err != nil {
			return err
		}
	}
	r.AgentBusy = e.busy
	md := r.markdown()
	if o.smoke || o.only != "" {
		if o.smoke {
			fmt.Fprint(stdout, "\n"+r.goalsTable()+"\n")
		}
		fmt.Fprintln(stdout, "bench: ok (report not written)")
		return nil
	}
	old, _ := os.ReadFile(o.out)
	md = keepNotes(md, string(old))
	if err := os.WriteFile(o.out, []byte(md), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "bench: wrote %s\n", o.out)
	return nil
}

// roundOrder is the order of n tools in round (from 0): the rows of a
// Williams Latin square (first row 0, 1, n-1, 2, n-2, …; each next row
// adds 1 mod n). For an even n, over n rounds each tool runs once in
// each position and directly after each other tool once, so neither
// going first nor following a particular tool (its TIME_WAIT sockets, a
// warm or cold nginx) favours anyone; round n starts over.
func roundOrder(round, n int) []int {
	out := make([]int, 0, n)
	for lo, hi := 0, n-1; lo <= hi; {
		out = append(out, lo)
		lo++
		if lo <= hi {
			out = append(out, lo)
			lo++
		}
		if lo <= hi {
			out = append(out, hi)
			hi--
		}
	}
	for k := range out {
		out[k] = (out[k] + round) % n
	}
	return out
}

// pin decides core placement: with two cores or more, targets (nginx, the
// latency target) and surge's controller and CLI (at nice 19) on core 0
// and the load generator on the last core, so the tool measured never
// shares its core with the server.
func (e *env) pin() {
	if _, err := exec.LookPath("taskset"); err != nil || runtime.NumCPU() < 2 {
		e.pinNote = "not pinned (taskset missing or fewer than 2 cores)"
		return
	}
	last := strconv.Itoa(runtime.NumCPU() - 1)
	e.pinTarget = []string{"taskset", "-c", "0"}
	e.pinClient = []string{"taskset", "-c", last}
	e.pinInfra = append([]string{"nice", "-n", "19"}, e.pinTarget...)
	e.pinNote = "target (nginx, 2 workers; surge target) on core 0, and surge's controller and CLI there too at nice 19 (they yield to the target); client on core " + last
}

func (e *env) cmd(pin []string, name string, args ...string) (string, []string) {
	if len(pin) == 0 {
		return name, args
	}
	return pin[0], append(append(append([]string{}, pin[1:]...), name), args...)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func waitTCP(ctx context.Context, addr string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			return c.Close()
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s not listening after %s: %w", addr, within, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (e *env) startNginx() error {
	port, err := freePort()
	if err != nil {
		return err
	}
	addr, err := e.startNginxConf("nginx", port, 2, 8192, false)
	e.nginxURL = "http://" + addr + "/"
	return err
}

// startNginxConf starts an nginx on 127.0.0.1:port with workers worker
// processes of conns connections each (SO_REUSEPORT spreads connections
// across workers when reuseport), keep-alive, a small fixed answer; it
// returns the address once nginx listens.
func (e *env) startNginxConf(name string, port, workers, conns int, reuseport bool) (string, error) {
	dir := filepath.Join(e.tmp, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	listenOpts := "backlog=4096"
	if reuseport {
		listenOpts += " reuseport"
	}
	conf := fmt.Sprintf(`daemon off;
master_process on;
worker_processes %[3]d;
worker_rlimit_nofile %[4]d;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections %[4]d; }
http {
  access_log off;
  keepalive_timeout 1h;
  keepalive_requests 100000000;
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
  server {
    listen 127.0.0.1:%[2]d %[5]s;
    location / { default_type text/plain; return 200 "ok"; }
  }
}
`, dir, port, workers, min(conns, maxFDs-64), listenOpts)
	cf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		return "", err
	}
	n, args := e.cmd(e.pinTarget, e.o.nginx, "-p", dir, "-c", cf)
	if _, err := e.ps.start(n, args, e.log); err != nil {
		return "", err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	return addr, waitTCP(context.Background(), addr, 10*time.Second)
}

// maxFDs is the most file descriptors one process may hold on the
// machines this runs on (issue 7).
const maxFDs = 20000

func (e *env) startCluster(ctx context.Context) error {
	grpcPort, err := freePort()
	if err != nil {
		return err
	}
	gossipPort, err := freePort()
	if err != nil {
		return err
	}
	e.controller = fmt.Sprintf("127.0.0.1:%d", grpcPort)
	if err := os.MkdirAll(filepath.Join(e.tmp, "data"), 0o755); err != nil {
		return err
	}
	name, args := e.cmd(e.pinInfra, e.o.surge, "controller", "--listen", e.controller,
		"--gossip", fmt.Sprintf("127.0.0.1:%d", gossipPort), "--data-dir", filepath.Join(e.tmp, "data"), "--log-level", "warn")
	if _, err := e.ps.start(name, args, e.log); err != nil {
		return err
	}
	if err := waitTCP(ctx, e.controller, 30*time.Second); err != nil {
		return err
	}
	e.agentPID, err = e.startAgent(ctx, "bench")
	return err
}

// startAgent starts an agent on the client core and waits until the
// controller lists it connected; it returns its pid.
func (e *env) startAgent(ctx context.Context, id string) (int, error) {
	agentArgs := []string{"agent", "--id", id, "--region", "local", "--controller", e.controller, "--log-level", "warn"}
	if e.o.agentProfile != "" && id == "bench" {
		agentArgs = append(agentArgs, "--cpuprofile", e.o.agentProfile)
	}
	if e.o.agentPacingSpin != 0 {
		agentArgs = append(agentArgs, "--pacing-spin", e.o.agentPacingSpin.String())
	}
	name, args := e.cmd(e.pinClient, e.o.surge, agentArgs...)
	agent, err := e.ps.start(name, args, e.log)
	if err != nil {
		return 0, err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var list struct {
			Agents []struct {
				ID    string `json:"id"`
				State string `json:"state"`
			} `json:"agents"`
		}
		out, _ := exec.CommandContext(ctx, e.o.surge, "agents", "--json", "--controller", e.controller).Output()
		if json.Unmarshal(out, &list) == nil {
			for _, a := range list.Agents {
				if a.ID == id && a.State == "connected" {
					return agent.Process.Pid, nil
				}
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return 0, fmt.Errorf("agent %s did not connect within 30s", id)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// throughput is one tool's max-throughput run.
type throughput struct {
	Tool     string
	Requests int64
	Wall     float64 // seconds
	CPU      float64 // client CPU seconds, user + system
}

func (t throughput) RPS() float64 { return float64(t.Requests) / t.Wall }
func (t throughput) PerCPU() float64 {
	if t.CPU <= 0 {
		return 0
	}
	return float64(t.Requests) / t.CPU
}

// runTool runs a load generator to its end and returns its output and the
// CPU it used (getrusage of the child: user + system).
func (e *env) runTool(ctx context.Context, name string, args ...string) ([]byte, float64, error) {
	ctx, cancel := context.WithTimeout(ctx, e.o.duration+2*time.Minute)
	defer cancel()
	n, a := e.cmd(e.pinClient, name, args...)
	cmd := exec.CommandContext(ctx, n, a...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil {
		return out.Bytes(), 0, fmt.Errorf("%s: %w: %s", filepath.Base(name), err, lastLines(out.String(), 5))
	}
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		return out.Bytes(), 0, errors.New("no rusage")
	}
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
	return out.Bytes(), cpu, nil
}

var wrkRe = regexp.MustCompile(`(\d+) requests in ([\d.]+)(ms|s|m)`)

func (e *env) wrk(ctx context.Context) (throughput, error) {
	threads := 1
	if len(e.pinClient) == 0 {
		threads = runtime.NumCPU()
	}
	out, cpu, err := e.runTool(ctx, e.o.wrk, "-t", strconv.Itoa(threads), "-c", strconv.Itoa(e.o.conns),
		"-d", fmt.Sprintf("%ds", int(e.o.duration.Seconds())), e.nginxURL)
	if err != nil {
		return throughput{}, err
	}
	m := wrkRe.FindSubmatch(out)
	if m == nil {
		return throughput{}, fmt.Errorf("wrk output not understood: %s", lastLines(string(out), 8))
	}
	n, _ := strconv.ParseInt(string(m[1]), 10, 64)
	wall, _ := strconv.ParseFloat(string(m[2]), 64)
	switch string(m[3]) {
	case "ms":
		wall /= 1000
	case "m":
		wall *= 60
	}
	if bytes.Contains(out, []byte("Non-2xx")) || bytes.Contains(out, []byte("Socket errors")) {
		return throughput{}, fmt.Errorf("wrk saw errors: %s", lastLines(string(out), 8))
	}
	return throughput{Requests: n, Wall: wall, CPU: cpu}, nil
}

var (
	heyOK    = regexp.MustCompile(`\[200\]\s+(\d+) responses`)
	heyTotal = regexp.MustCompile(`Total:\s+([\d.]+) secs`)
)

func (e *env) hey(ctx context.Context) (throughput, error) {
	out, cpu, err := e.runTool(ctx, e.o.hey, "-z", e.o.duration.String(), "-c", strconv.Itoa(e.o.conns), e.nginxURL)
	if err != nil {
		return throughput{}, err
	}
	m, t := heyOK.FindSubmatch(out), heyTotal.FindSubmatch(out)
	if m == nil || t == nil {
		return throughput{}, fmt.Errorf("hey output not understood: %s", lastLines(string(out), 12))
	}
	n, _ := strconv.ParseInt(string(m[1]), 10, 64)
	wall, _ := strconv.ParseFloat(string(t[1]), 64)
	return throughput{Requests: n, Wall: wall, CPU: cpu}, nil
}

// vegetaReport is the part of `vegeta report -type=json` read here.
type vegetaReport struct {
	Requests  int64 `json:"requests"`
	Duration  int64 `json:"duration"` // ns
	Latencies struct {
		P50 int64 `json:"50th"`
		P99 int64 `json:"99th"`
	} `json:"latencies"`
	StatusCodes map[string]int64 `json:"status_codes"`
}

func (e *env) vegetaRun(ctx context.Context, url string, extra ...string) (vegetaReport, float64, error) {
	targets := filepath.Join(e.tmp, "targets.txt")
	results := filepath.Join(e.tmp, "results.bin")
	if err := os.WriteFile(targets, []byte("GET "+url+"\n"), 0o644); err != nil {
		return vegetaReport{}, 0, err
	}
	args := append([]string{"attack", "-targets", targets, "-output", results,
		"-duration", e.o.duration.String(), "-keepalive=true"}, extra...)
	_, cpu, err := e.runTool(ctx, e.o.vegeta, args...)
	if err != nil {
		return vegetaReport{}, 0, err
	}
	out, err := exec.CommandContext(ctx, e.o.vegeta, "report", "-type", "json", results).Output()
	if err != nil {
		return vegetaReport{}, 0, fmt.Errorf("vegeta report: %w", err)
	}
	var vr vegetaReport
	if err := json.Unmarshal(out, &vr); err != nil {
		return vegetaReport{}, 0, fmt.Errorf("vegeta report: %w", err)
	}
	if vr.StatusCodes["200"] != vr.Requests {
		return vr, cpu, fmt.Errorf("vegeta saw non-200 answers: %v", vr.StatusCodes)
	}
	return vr, cpu, nil
}

func (e *env) vegeta(ctx context.Context) (throughput, error) {
	n := strconv.Itoa(e.o.conns)
	vr, cpu, err := e.vegetaRun(ctx, e.nginxURL, "-rate", "0", "-workers", n, "-max-workers", n, "-connections", n)
	if err != nil {
		return throughput{}, err
	}
	return throughput{Requests: vr.Requests, Wall: time.Duration(vr.Duration).Seconds(), CPU: cpu}, nil
}

// summary is the part of surge's summary JSON read here.
type summary struct {
	Status    string  `json:"status"`
	DurationS float64 `json:"duration_s"`
	Requests  int64   `json:"requests"`
	Failures  int64   `json:"failures"`
	LatencyUS struct {
		P50 int64 `json:"p50"`
		P99 int64 `json:"p99"`
	} `json:"latency_us"`
	Dropped int64 `json:"dropped_iterations"`
	Deficit int64 `json:"deficit"`
	// SendLatenessUS is read when the summary has it (the field asked of
	// controller/report for issue 7): the whole run's send lateness of an
	// open-model scenario, merged from the agents' per-interval histograms.
	Scenarios map[string]struct {
		SendLatenessUS *struct {
			P50 int64 `json:"p50"`
			P99 int64 `json:"p99"`
			Max int64 `json:"max"`
		} `json:"send_lateness_us"`
	} `json:"scenarios"`
}

// surgeRun submits a plan and waits for its summary; it returns the summary,
// the progress output, and the agent's CPU seconds over the run.
func (e *env) surgeRun(ctx context.Context, name, planYAML string, timeout time.Duration) (summary, string, float64, error) {
	pf := filepath.Join(e.tmp, name+".yaml")
	jf := filepath.Join(e.tmp, name+".json")
	if err := os.WriteFile(pf, []byte(planYAML), 0o644); err != nil {
		return summary{}, "", 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// The agent is a daemon: its CPU over the run is read from /proc
	// before and after, each time once it is idle, so that the figure
	// holds neither the tail of earlier work nor misses the end of this
	// run's (closing connections, the final snapshot, freeing memory),
	// as a peer's rusage holds its whole process.
	e.waitQuiet(ctx, e.agentPID)
	before, err := procCPU(e.agentPID)
	if err != nil {
		return summary{}, "", 0, err
	}
	n, a := e.cmd(e.pinInfra, e.o.surge, "run", pf, "--controller", e.controller, "--json", jf)
	cmd := exec.CommandContext(ctx, n, a...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	runErr := cmd.Run()
	e.waitQuiet(ctx, e.agentPID)
	after, err := procCPU(e.agentPID)
	if err != nil {
		return summary{}, "", 0, err
	}
	var s summary
	b, err := os.ReadFile(jf)
	if err != nil {
		return s, out.String(), 0, fmt.Errorf("surge run: %v: %s", runErr, lastLines(out.String(), 8))
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, out.String(), 0, fmt.Errorf("summary: %w", err)
	}
	if s.Status != "finished" {
		return s, out.String(), 0, fmt.Errorf("run %s: %s", s.Status, lastLines(out.String(), 8))
	}
	return s, out.String(), after - before, nil
}

func (e *env) surgeMax(ctx context.Context) (throughput, error) {
	p := fmt.Sprintf(`name: bench-max
scenarios:
  max:
    executor: constant-vus
    vus: %d
    duration: %s
    graceful_stop: 5s
    requests:
      - url: %s
`, e.o.conns, e.o.duration, e.nginxURL)
	s, _, cpu, err := e.surgeRun(ctx, "max", p, e.o.duration+2*time.Minute)
	if err != nil {
		return throughput{}, err
	}
	if s.Failures > 0 {
		return throughput{}, fmt.Errorf("%d failures", s.Failures)
	}
	return throughput{Requests: s.Requests, Wall: s.DurationS, CPU: cpu}, nil
}

// pacingResult is one open-model pacing run.
type pacingResult struct {
	// InProcess is the same rate run by the executor in-process
	// (BenchmarkOpenModel): the send lateness its recorder measured.
	InProcess *micro
	// ClusterLateP99 is the summary's send lateness p99 (µs), -1 when the
	// summary does not report it.
	ClusterLateP99 int64
	Rate           int
	Windows        []window
	Deficit        int64
	Dropped        int64
	Requests       int64
	CPU            float64
}

type window struct{ arrivals, target float64 }

func (p pacingResult) errs() []float64 {
	out := make([]float64, 0, len(p.Windows))
	for _, w := range p.Windows {
		if w.target > 0 {
			out = append(out, math.Abs(w.arrivals-w.target)/w.target)
		}
	}
	return out
}

func (p pacingResult) Worst() float64 {
	worst := 0.0
	for _, x := range p.errs() {
		worst = max(worst, x)
	}
	return worst
}

func (p pacingResult) Within(tol float64) int {
	n := 0
	for _, x := range p.errs() {
		if x <= tol+1e-12 {
			n++
		}
	}
	return n
}

var arrivalsRe = regexp.MustCompile(`\] all .* arrivals=([\d.]+)/([\d.]+)`)

func (e *env) pacing(ctx context.Context, rate int) (pacingResult, error) {
	p := fmt.Sprintf(`name: bench-pacing-%d
scenarios:
  paced:
    executor: constant-arrival-rate
    rate: %d
    duration: %s
    pre_allocated_vus: %d
    max_vus: %d
    graceful_stop: 5s
    requests:
      - url: %s
`, rate, rate, e.o.pacingDuration, min(rate, 256), min(rate, 2048), e.nginxURL)
	s, out, cpu, err := e.surgeRun(ctx, fmt.Sprintf("pacing-%d", rate), p, e.o.pacingDuration+2*time.Minute)
	if err != nil {
		return pacingResult{}, err
	}
	res := pacingResult{Rate: rate, Deficit: s.Deficit, Dropped: s.Dropped, Requests: s.Requests, CPU: cpu, ClusterLateP99: -1}
	if l := s.Scenarios["paced"].SendLatenessUS; l != nil {
		res.ClusterLateP99 = l.P99
	}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if m := arrivalsRe.FindStringSubmatch(sc.Text()); m != nil {
			a, _ := strconv.ParseFloat(m[1], 64)
			t, _ := strconv.ParseFloat(m[2], 64)
			res.Windows = append(res.Windows, window{a, t})
		}
	}
	// Windows past the end plan nothing; the first and last planned ones
	// straddle the start and the end of the run.
	planned := res.Windows[:0]
	for _, w := range res.Windows {
		if w.target > 0 {
			planned = append(planned, w)
		}
	}
	res.Windows = planned
	if len(res.Windows) > 2 {
		res.Windows = res.Windows[1 : len(res.Windows)-1]
	}
	return res, nil
}

// fidelityResult compares surge and vegeta against a 10 ms target at
// 1k/s. The target measures how long it held each request (its own timer
// is not exact either); each tool's p50 is compared with the target's p50
// over that tool's run.
type fidelityResult struct {
	DelayUS               int64
	SurgeP50, SurgeP99    int64
	VegetaP50, VegetaP99  int64
	SurgeDeficit          int64 // over all rounds
	Rounds                int
	SurgeP99s, VegetaP99s []int64 // per round
	// Per round: the agent's CPU seconds over its run, vegeta's over its;
	// surge's send lateness p99 (-1: not in the summary) and the target's
	// hold p99 during each tool's run, in microseconds.
	SurgeCPUs, VegetaCPUs      []float64
	SurgeLateP99s              []int64
	HoldSurgeP99s, HoldVegP99s []int64
	// The target's hold time during each tool's run.
	HoldSurge, HoldVegeta delayStats
}

// delayStats is the fidelity target's hold time, in microseconds.
type delayStats struct {
	Count int64 `json:"count"`
	P50   int64 `json:"p50_us"`
	P99   int64 `json:"p99_us"`
}

func (e *env) fidelity(ctx context.Context) (fidelityResult, error) {
	const delay = 10 * time.Millisecond
	port, err := freePort()
	if err != nil {
		return fidelityResult{}, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	self, err := os.Executable()
	if err != nil {
		return fidelityResult{}, err
	}
	targetArgs := []string{"serve-delay", "-listen", addr, "-delay", delay.String()}
	if e.o.fidelitySleep {
		targetArgs = append(targetArgs, "-sleep")
	}
	name, args := e.cmd(e.pinTarget, self, targetArgs...)
	if _, err := e.ps.start(name, args, e.log); err != nil {
		return fidelityResult{}, err
	}
	if err := waitTCP(ctx, addr, 10*time.Second); err != nil {
		return fidelityResult{}, err
	}
	url := "http://" + addr + "/"
	stats := func() (delayStats, error) { // since the last call
		var d delayStats
		out, err := httpGet(ctx, url+"__stats")
		if err != nil {
			return d, fmt.Errorf("target stats: %w", err)
		}
		return d, json.Unmarshal(out, &d)
	}
	p := fmt.Sprintf(`name: bench-fidelity
scenarios:
  fixed:
    executor: constant-arrival-rate
    rate: 1000
    duration: %s
    pre_allocated_vus: 50
    max_vus: 200
    graceful_stop: 5s
    requests:
      - url: %s
`, e.o.duration, url)
	res := fidelityResult{DelayUS: delay.Microseconds()}
	if _, err := stats(); err != nil {
		return res, err
	}
	// Rounds of surge and vegeta, which goes first alternating; each
	// figure is the median over rounds.
	var sp50, sp99, vp50, vp99, hs50, hs99, hv50, hv99 []int64
	for round := range e.o.rounds {
		var (
			s          summary
			vr         vegetaReport
			hs, hv     delayStats
			scpu, vcpu float64
		)
		runSurge := func() (err error) {
			if s, _, scpu, err = e.surgeRun(ctx, "fidelity", p, e.o.duration+2*time.Minute); err != nil {
				return err
			}
			hs, err = stats()
			return err
		}
		runVegeta := func() (err error) {
			if vr, vcpu, err = e.vegetaRun(ctx, url, "-rate", "1000/s"); err != nil {
				return err
			}
			hv, err = stats()
			return err
		}
		first, second := runSurge, runVegeta
		if round%2 == 1 {
			first, second = runVegeta, runSurge
		}
		if err := first(); err != nil {
			return res, err
		}
		if err := second(); err != nil {
			return res, err
		}
		res.SurgeCPUs, res.VegetaCPUs = append(res.SurgeCPUs, scpu), append(res.VegetaCPUs, vcpu)
		late := int64(-1)
		if l := s.Scenarios["fixed"].SendLatenessUS; l != nil {
			late = l.P99
		}
		res.SurgeLateP99s = append(res.SurgeLateP99s, late)
		res.HoldSurgeP99s, res.HoldVegP99s = append(res.HoldSurgeP99s, hs.P99), append(res.HoldVegP99s, hv.P99)
		res.SurgeDeficit += s.Deficit
		sp50, sp99 = append(sp50, s.LatencyUS.P50), append(sp99, s.LatencyUS.P99)
		vp50 = append(vp50, time.Duration(vr.Latencies.P50).Microseconds())
		vp99 = append(vp99, time.Duration(vr.Latencies.P99).Microseconds())
		hs50, hs99, hv50, hv99 = append(hs50, hs.P50), append(hs99, hs.P99), append(hv50, hv.P50), append(hv99, hv.P99)
	}
	res.Rounds = e.o.rounds
	res.SurgeP99s, res.VegetaP99s = sp99, vp99
	res.SurgeP50, res.SurgeP99, res.VegetaP50, res.VegetaP99 = median(sp50), median(sp99), median(vp50), median(vp99)
	res.HoldSurge = delayStats{P50: median(hs50), P99: median(hs99)}
	res.HoldVegeta = delayStats{P50: median(hv50), P99: median(hv99)}
	return res, nil
}

// median is the median of xs (the upper one of an even count).
func median(xs []int64) int64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// httpGet fetches url's body (the harness's own small requests).
func httpGet(ctx context.Context, url string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("%s: %s", url, resp.Status)
	}
	return b, err
}

// serveDelay is `bench serve-delay -listen ADDR -delay D`: an HTTP/1.1
// keep-alive target that answers "ok" after D (held on a timerfd, see
// hold; -sleep: time.Sleep), measuring how long it held
// each request (from the handler's start to its answer); GET /__stats
// returns those hold times since the last /__stats as delayStats.
func serveDelay(args []string) error {
	fs := flag.NewFlagSet("serve-delay", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "address")
	delay := fs.Duration("delay", 10*time.Millisecond, "delay of every answer")
	sleep := fs.Bool("sleep", false, "hold with time.Sleep (a Go timer, up to 1 ms late on an idle process) instead of a timerfd")
	if err := fs.Parse(args); err != nil {
		return err
	}
	wait := hold
	if *sleep {
		wait = func(d time.Duration) error { time.Sleep(d); return nil }
	}
	var (
		mu   sync.Mutex
		held = hist.New()
	)
	mux := http.NewServeMux()
	mux.HandleFunc("/__stats", func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		d := delayStats{Count: held.TotalCount(), P50: held.ValueAtQuantile(50), P99: held.ValueAtQuantile(99)}
		held.Reset()
		mu.Unlock()
		_ = json.NewEncoder(w).Encode(d)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		t0 := time.Now()
		if err := wait(*delay); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		us := time.Since(t0).Microseconds()
		mu.Lock()
		_ = held.RecordValue(hist.Clamp(us))
		mu.Unlock()
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("ok"))
	})
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv := &http.Server{Addr: *listen, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		<-errc
		return nil
	}
}

// executorBench runs benchmarks of the agent/executor test binary (built
// by bench.sh with go test -c) pinned to the client core, against the
// nginx target, and returns their results by name.
func (e *env) executorBench(ctx context.Context, bench, benchtime string, env ...string) (map[string]micro, error) {
	if e.o.executorTest == "" {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	n, a := e.cmd(e.pinClient, e.o.executorTest, "-test.run", "^$", "-test.bench", bench, "-test.benchtime", benchtime, "-test.benchmem")
	cmd := exec.CommandContext(ctx, n, a...)
	cmd.Env = append(append(os.Environ(), "SURGE_BENCH_URL="+e.nginxURL), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %s", bench, err, lastLines(string(out), 8))
	}
	f := filepath.Join(e.tmp, "executor-bench.txt")
	if err := os.WriteFile(f, out, 0o644); err != nil {
		return nil, err
	}
	return parseMicro(f)
}

// idleResult is the agent's RSS growth while it holds n VUs, each waiting
// on its own keep-alive connection to a target that answers after 60 s.
type idleResult struct {
	Conns    int
	FDs      int // the agent's open file descriptors at the peak
	DeltaKiB float64
}

func (r idleResult) PerConnKiB() float64 { return r.DeltaKiB / float64(max(r.Conns, 1)) }

func (e *env) idleMemory(ctx context.Context) (idleResult, error) {
	port, err := freePort()
	if err != nil {
		return idleResult{}, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	name, args := e.cmd(e.pinTarget, e.o.surge, "target", "--listen", addr, "--latency", "60s")
	if _, err := e.ps.start(name, args, e.log); err != nil {
		return idleResult{}, err
	}
	if err := waitTCP(ctx, addr, 10*time.Second); err != nil {
		return idleResult{}, err
	}
	hold := 4 * time.Second
	if e.o.smoke {
		hold = 2 * time.Second
	}
	p := fmt.Sprintf(`name: bench-idle
scenarios:
  idle:
    executor: constant-vus
    vus: %d
    duration: %s
    graceful_stop: 0s
    requests:
      - url: http://%s/
`, e.o.idleVUs, hold, addr)
	before, err := procRSSKiB(e.agentPID)
	if err != nil {
		return idleResult{}, err
	}
	pf := filepath.Join(e.tmp, "idle.yaml")
	if err := os.WriteFile(pf, []byte(p), 0o644); err != nil {
		return idleResult{}, err
	}
	rctx, cancel := context.WithTimeout(ctx, hold+time.Minute)
	defer cancel()
	n, a := e.cmd(e.pinInfra, e.o.surge, "run", pf, "--controller", e.controller, "--quiet")
	cmd := exec.CommandContext(rctx, n, a...)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		return idleResult{}, err
	}
	// Sample the peak while the VUs wait, then let the run end.
	var peak float64
	fds := 0
	for end := time.Now().Add(hold + 2*time.Second); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		if v, err := procRSSKiB(e.agentPID); err == nil {
			peak = max(peak, v)
		}
		if d, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", e.agentPID)); err == nil {
			fds = max(fds, len(d))
		}
	}
	_ = cmd.Wait() // the run ends with its VUs interrupted: not an error here
	return idleResult{Conns: e.o.idleVUs, FDs: fds, DeltaKiB: peak - before}, nil
}

// holdResult is three agents holding connections against nginx.
type holdResult struct {
	Conns            int
	Hold             time.Duration
	Sources          []string
	Opened, PeakOpen int64
	Failures         int64
	// EstablishedAtEnd counts the established TCP connections to nginx
	// just before the hold ends (every one of them should be there).
	EstablishedAtEnd int
	// Per agent: RSS growth from before the run to the end of the hold,
	// and open file descriptors then.
	AgentRSSKiB []float64
	AgentFDs    []int
}

// PerConnKiB is the agents' RSS growth per connection (and its VU).
func (h holdResult) PerConnKiB() float64 {
	var sum float64
	for _, x := range h.AgentRSSKiB {
		sum += x
	}
	return sum / float64(max(h.Conns, 1))
}

// OK reports whether every connection was opened once and was still
// established at the end of the hold.
func (h holdResult) OK() bool {
	return h.Conns > 0 && h.Opened == int64(h.Conns) && h.PeakOpen == int64(h.Conns) &&
		h.EstablishedAtEnd >= h.Conns && h.Failures == 0
}

// holdConnections runs a second nginx (4 workers, connections spread by
// SO_REUSEPORT so that no worker passes the 20,000 descriptors one process
// may hold here) and two more agents, then a constant-vus plan of -hold-conns
// VUs split across the three agents, each VU holding one keep-alive
// connection (a request, then a think time longer than the hold). The
// connections bind 127.0.0.2 to 127.0.0.7 round robin
// (connection.source_addresses): one address pair has only ~28k ephemeral
// ports.
func (e *env) holdConnections(ctx context.Context) (holdResult, error) {
	hold := e.o.hold
	if e.o.smoke {
		hold = 2 * time.Second
	}
	res := holdResult{Conns: e.o.holdConns, Hold: hold}
	for i := 2; i <= 7; i++ {
		res.Sources = append(res.Sources, fmt.Sprintf("127.0.0.%d", i))
	}
	port, err := freePort()
	if err != nil {
		return res, err
	}
	workers := 4
	perWorker := e.o.holdConns/workers*2 + 1024 // SO_REUSEPORT spreads unevenly
	if _, err := e.startNginxConf("nginx-hold", port, workers, perWorker, true); err != nil {
		return res, err
	}
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	pids := []int{e.agentPID}
	for i := 2; i <= 3; i++ {
		pid, err := e.startAgent(ctx, fmt.Sprintf("bench%d", i))
		if err != nil {
			return res, err
		}
		pids = append(pids, pid)
	}
	before := make([]float64, len(pids))
	for i, pid := range pids {
		if before[i], err = procRSSKiB(pid); err != nil {
			return res, err
		}
	}
	srcs := `"` + strings.Join(res.Sources, `", "`) + `"`
	p := fmt.Sprintf(`name: bench-hold
scenarios:
  hold:
    executor: constant-vus
    vus: %d
    duration: %s
    graceful_stop: 0s
    connection:
      source_addresses: [%s]
      idle_timeout: 1h
    flows:
      hold:
        steps:
          - {url: "%s"}
          - think: %s
`, e.o.holdConns, hold, srcs, url, 10*hold)
	pf := filepath.Join(e.tmp, "hold.yaml")
	jf := filepath.Join(e.tmp, "hold.json")
	if err := os.WriteFile(pf, []byte(p), 0o644); err != nil {
		return res, err
	}
	rctx, cancel := context.WithTimeout(ctx, hold+3*time.Minute)
	defer cancel()
	n, a := e.cmd(e.pinInfra, e.o.surge, "run", pf, "--controller", e.controller, "--quiet", "--json", jf)
	cmd := exec.CommandContext(rctx, n, a...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return res, err
	}
	// Near the end of the hold: what is still established, and what the
	// agents hold. The run starts a second or two after the submit, so
	// the last seconds before submit+hold are inside the hold.
	start := time.Now()
	for time.Since(start) < hold {
		time.Sleep(min(time.Second, hold-time.Since(start)))
		res.AgentRSSKiB, res.AgentFDs = res.AgentRSSKiB[:0], res.AgentFDs[:0]
		for i, pid := range pids {
			rss, _ := procRSSKiB(pid)
			fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
			res.AgentRSSKiB = append(res.AgentRSSKiB, rss-before[i])
			res.AgentFDs = append(res.AgentFDs, len(fds))
		}
		if time.Since(start) > hold-3*time.Second {
			res.EstablishedAtEnd = max(res.EstablishedAtEnd, establishedTo(port))
		}
	}
	runErr := cmd.Wait()
	var s struct {
		summary
		Connections struct {
			Opened   int64 `json:"opened"`
			PeakOpen int64 `json:"peak_open"`
		} `json:"connections"`
	}
	b, err := os.ReadFile(jf)
	if err != nil {
		return res, fmt.Errorf("surge run: %v: %s", runErr, lastLines(out.String(), 8))
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return res, fmt.Errorf("summary: %w", err)
	}
	res.Opened, res.PeakOpen, res.Failures = s.Connections.Opened, s.Connections.PeakOpen, s.Failures
	return res, nil
}

// establishedTo counts the established TCP connections to 127.0.0.1:port
// from the server's side (/proc/net/tcp).
func establishedTo(port int) int {
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return 0
	}
	local := fmt.Sprintf("0100007F:%04X", port)
	n := 0
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) > 3 && f[1] == local && f[3] == "01" { // TCP_ESTABLISHED
			n++
		}
	}
	return n
}

// waitQuiet waits until pid's CPU time stops growing (at most one clock
// tick, 10 ms, in 200 ms), for at most 5 s; past that it says so (the
// figure read next then holds some of that work).
func (e *env) waitQuiet(ctx context.Context, pid int) {
	const step, within = 200 * time.Millisecond, 5 * time.Second
	prev, err := procCPU(pid)
	if err != nil {
		return
	}
	for deadline := time.Now().Add(within); time.Now().Before(deadline); {
		select {
		case <-ctx.Done():
			return
		case <-time.After(step):
		}
		cur, err := procCPU(pid)
		if err != nil || cur-prev < 0.015 {
			return
		}
		prev = cur
	}
	e.busy++
}

// procCPU is a process's user + system CPU seconds from /proc/PID/stat.
func procCPU(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("bad /proc stat")
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	ut, err1 := strconv.ParseFloat(f[11], 64)
	st, err2 := strconv.ParseFloat(f[12], 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	const clkTck = 100 // USER_HZ on Linux
	return (ut + st) / clkTck, nil
}

// procRSSKiB is a process's resident set from /proc/PID/status.
func procRSSKiB(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			return strconv.ParseFloat(f[1], 64)
		}
	}
	return 0, errors.New("no VmRSS")
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

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, " | ")
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	return lastLines(string(b), 10)
}

// micro is one go test benchmark line.
type micro struct {
	Name    string
	NsOp    float64
	BOp     float64
	Allocs  float64
	Metrics map[string]float64
}

func parseMicro(path string) (map[string]micro, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	// With -count > 1, keep the median ns/op of each benchmark.
	runs := map[string][]micro{}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		name := f[0]
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			name = name[:i]
		}
		m := micro{Name: name, Metrics: map[string]float64{}}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			switch f[i+1] {
			case "ns/op":
				m.NsOp = v
			case "B/op":
				m.BOp = v
			case "allocs/op":
				m.Allocs = v
			default:
				m.Metrics[f[i+1]] = v
			}
		}
		runs[name] = append(runs[name], m)
	}
	out := map[string]micro{}
	for name, ms := range runs {
		sort.Slice(ms, func(i, j int) bool { return ms[i].NsOp < ms[j].NsOp })
		out[name] = ms[len(ms)/2]
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no benchmark lines", path)
	}
	return out, nil
}
