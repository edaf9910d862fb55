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
}

func main() {
	var o options
	flag.StringVar(&o.surge, "surge", "bin/surge", "surge binary")
	flag.StringVar(&o.wrk, "wrk", "wrk", "wrk binary")
	flag.StringVar(&o.hey, "hey", "hey", "hey binary")
	flag.StringVar(&o.vegeta, "vegeta", "vegeta", "vegeta binary")
	flag.StringVar(&o.nginx, "nginx", "nginx", "nginx binary")
	flag.IntVar(&o.conns, "conns", 64, "connections (and VUs) per tool")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "duration of each throughput run")
	flag.DurationVar(&o.pacingDuration, "pacing-duration", 30*time.Second, "duration of each pacing run")
	flag.StringVar(&o.rates, "rates", "1000,10000,50000", "open-model arrival rates to pace, per second")
	flag.IntVar(&o.idleVUs, "idle-vus", 2000, "VUs held on idle connections for the memory figure")
	flag.BoolVar(&o.smoke, "smoke", false, "prove the harness runs; print, do not write -out")
	flag.StringVar(&o.out, "out", "docs/benchmarks.md", "Markdown report to write")
	flag.StringVar(&o.micro, "micro", "", "go test -bench output of ./hist/ (this tree)")
	flag.StringVar(&o.microBefore, "micro-before", "", "go test -bench output of ./hist/ before this change, if any")
	flag.StringVar(&o.only, "only", "", "run only these parts, comma-separated: idle,peers,pacing,fidelity (debugging; the report is not written)")
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
	o          options
	tmp        string
	ps         *procs
	pinClient  []string // taskset prefix for load generators
	pinTarget  []string // taskset prefix for targets and the controller
	pinNote    string
	log        io.Writer
	nginxURL   string
	controller string
	agentPID   int
}

func run(ctx context.Context, o options, stdout io.Writer) error {
	if o.smoke {
		o.duration, o.pacingDuration, o.rates, o.idleVUs, o.conns = time.Second, 2*time.Second, "1000", 100, min(o.conns, 16)
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
	r := &report{When: time.Now().UTC(), Machine: machine(), Pin: e.pinNote, Conns: o.conns, Duration: o.duration}
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
	}

	// Goal 1: the same target, connection count and duration for every tool.
	for _, t := range []struct {
		name string
		fn   func(context.Context) (throughput, error)
	}{{"wrk", e.wrk}, {"hey", e.hey}, {"vegeta", e.vegeta}, {"surge", e.surgeMax}} {
		if !want("peers") {
			break
		}
		fmt.Fprintf(stdout, "bench: %s, %d connections, %s\n", t.name, o.conns, o.duration)
		res, err := t.fn(ctx)
		if err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
		res.Tool = t.name
		fmt.Fprintf(stdout, "bench:   %d requests, %.0f req/s, %.2f CPU s, %.0f req per CPU-second\n",
			res.Requests, res.RPS(), res.CPU, res.PerCPU())
		r.Peers = append(r.Peers, res)
	}

	// Goal 3: latency fidelity against a 10 ms target at 1k/s, before the
	// pacing runs (whose 50k/s overload can leave the agent busy for a while).
	if want("fidelity") {
		fmt.Fprintf(stdout, "bench: latency fidelity, 10ms target, 1000/s for %s\n", o.duration)
		if r.Fidelity, err = e.fidelity(ctx); err != nil {
			return fmt.Errorf("latency fidelity: %w", err)
		}
		fmt.Fprintf(stdout, "bench:   surge p50 %dµs p99 %dµs; vegeta p50 %dµs p99 %dµs\n",
			r.Fidelity.SurgeP50, r.Fidelity.SurgeP99, r.Fidelity.VegetaP50, r.Fidelity.VegetaP99)
	}

	// Goal 2: pacing.
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
		r.Pacing = append(r.Pacing, p)
	}

	if o.micro != "" {
		if r.Micro, err = parseMicro(o.micro); err != nil {
			return err
		}
	}
	if o.microBefore != "" {
		if r.MicroBefore, err = parseMicro(o.microBefore); err != nil {
			return err
		}
	}
	md := r.markdown()
	if o.smoke || o.only != "" {
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

// pin decides core placement: with two cores or more, targets (nginx, the
// latency target, controller and CLI) on core 0 and the load generator on
// core 1, so the tool measured never shares its core with the server.
func (e *env) pin() {
	if _, err := exec.LookPath("taskset"); err != nil || runtime.NumCPU() < 2 {
		e.pinNote = "not pinned (taskset missing or fewer than 2 cores)"
		return
	}
	last := strconv.Itoa(runtime.NumCPU() - 1)
	e.pinTarget = []string{"taskset", "-c", "0"}
	e.pinClient = []string{"taskset", "-c", last}
	e.pinNote = "target (nginx, 2 workers; surge target; controller; CLI) on core 0, client on core " + last
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
	dir := filepath.Join(e.tmp, "nginx")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	conf := fmt.Sprintf(`daemon off;
master_process on;
worker_processes 2;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  keepalive_timeout 120s;
  keepalive_requests 100000000;
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
  server {
    listen 127.0.0.1:%[2]d backlog=4096;
    location / { default_type text/plain; return 200 "ok"; }
  }
}
`, dir, port)
	cf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		return err
	}
	name, args := e.cmd(e.pinTarget, e.o.nginx, "-p", dir, "-c", cf)
	if _, err := e.ps.start(name, args, e.log); err != nil {
		return err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	e.nginxURL = "http://" + addr + "/"
	return waitTCP(context.Background(), addr, 10*time.Second)
}

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
	name, args := e.cmd(e.pinTarget, e.o.surge, "controller", "--listen", e.controller,
		"--gossip", fmt.Sprintf("127.0.0.1:%d", gossipPort), "--data-dir", filepath.Join(e.tmp, "data"), "--log-level", "warn")
	if _, err := e.ps.start(name, args, e.log); err != nil {
		return err
	}
	if err := waitTCP(ctx, e.controller, 30*time.Second); err != nil {
		return err
	}
	name, args = e.cmd(e.pinClient, e.o.surge, "agent", "--id", "bench", "--region", "local",
		"--controller", e.controller, "--log-level", "warn")
	agent, err := e.ps.start(name, args, e.log)
	if err != nil {
		return err
	}
	e.agentPID = agent.Process.Pid
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, _ := exec.CommandContext(ctx, e.o.surge, "agents", "--json", "--controller", e.controller).Output()
		if bytes.Contains(out, []byte(`"connected"`)) {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return errors.New("the agent did not connect within 30s")
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
	before, err := procCPU(e.agentPID)
	if err != nil {
		return summary{}, "", 0, err
	}
	n, a := e.cmd(e.pinTarget, e.o.surge, "run", pf, "--controller", e.controller, "--json", jf)
	cmd := exec.CommandContext(ctx, n, a...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	runErr := cmd.Run()
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
	Rate     int
	Windows  []window
	Deficit  int64
	Dropped  int64
	Requests int64
	CPU      float64
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
	res := pacingResult{Rate: rate, Deficit: s.Deficit, Dropped: s.Dropped, Requests: s.Requests, CPU: cpu}
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

// fidelityResult compares surge and vegeta against a 10 ms target at 1k/s.
type fidelityResult struct {
	DelayUS              int64
	SurgeP50, SurgeP99   int64
	VegetaP50, VegetaP99 int64
	SurgeDeficit         int64
}

func (e *env) fidelity(ctx context.Context) (fidelityResult, error) {
	const delay = 10 * time.Millisecond
	port, err := freePort()
	if err != nil {
		return fidelityResult{}, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	name, args := e.cmd(e.pinTarget, e.o.surge, "target", "--listen", addr, "--latency", delay.String())
	if _, err := e.ps.start(name, args, e.log); err != nil {
		return fidelityResult{}, err
	}
	if err := waitTCP(ctx, addr, 10*time.Second); err != nil {
		return fidelityResult{}, err
	}
	url := "http://" + addr + "/"
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
	s, _, _, err := e.surgeRun(ctx, "fidelity", p, e.o.duration+2*time.Minute)
	if err != nil {
		return fidelityResult{}, err
	}
	vr, _, err := e.vegetaRun(ctx, url, "-rate", "1000/s")
	if err != nil {
		return fidelityResult{}, err
	}
	return fidelityResult{
		DelayUS:  delay.Microseconds(),
		SurgeP50: s.LatencyUS.P50, SurgeP99: s.LatencyUS.P99, SurgeDeficit: s.Deficit,
		VegetaP50: time.Duration(vr.Latencies.P50).Microseconds(), VegetaP99: time.Duration(vr.Latencies.P99).Microseconds(),
	}, nil
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
	n, a := e.cmd(e.pinTarget, e.o.surge, "run", pf, "--controller", e.controller, "--quiet")
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
