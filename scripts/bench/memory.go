package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

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
	if _, err := e.startNginxConf("nginx-hold", port, workers, perWorker, true, 0); err != nil {
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

// measureIdle is goal 6's first part: the agent's memory per idle VU on a
// connection with a request in flight, as a cluster run and in-process.
func (e *env) measureIdle(ctx context.Context, r *report) error {
	fmt.Fprintf(e.stdout, "bench: idle memory, %d VUs\n", e.o.idleVUs)
	var err error
	if r.Idle, err = e.idleMemory(ctx); err != nil {
		return fmt.Errorf("idle memory: %w", err)
	}
	fmt.Fprintf(e.stdout, "bench:   %d VUs, %d fds open at peak, %.0f KiB RSS growth, %.1f KiB each\n",
		r.Idle.Conns, r.Idle.FDs, r.Idle.DeltaKiB, r.Idle.PerConnKiB())
	m, err := e.executorBench(ctx, "^BenchmarkIdleVUs$", fmt.Sprintf("%dx", e.o.idleVUs))
	if err != nil {
		return fmt.Errorf("idle memory in-process: %w", err)
	}
	if x, ok := m["BenchmarkIdleVUs"]; ok {
		r.IdleInProcess = &x
		fmt.Fprintf(e.stdout, "bench:   in-process: stack %.0f B, heap %.0f B, RSS %.0f B per VU\n",
			x.Metrics["stack-B/vu"], x.Metrics["heap-B/vu"], x.Metrics["rss-B/vu"])
	}
	return nil
}

// measureHold is goal 6's second part: three agents hold many connections
// for a while.
func (e *env) measureHold(ctx context.Context, r *report) error {
	if e.o.holdConns <= 0 {
		return nil
	}
	fmt.Fprintf(e.stdout, "bench: %d connections held by 3 agents\n", e.o.holdConns)
	var err error
	if r.Hold, err = e.holdConnections(ctx); err != nil {
		return fmt.Errorf("hold connections: %w", err)
	}
	h := r.Hold
	fmt.Fprintf(e.stdout, "bench:   opened %d, peak open %d, established at the end %d (of %d), failures %d; agent RSS %v KiB, fds %v\n",
		h.Opened, h.PeakOpen, h.EstablishedAtEnd, h.Conns, h.Failures, h.AgentRSSKiB, h.AgentFDs)
	return nil
}
