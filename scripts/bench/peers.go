package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"syscall"
	"time"
)

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

// measurePeers is goal 1: the same target, connection count and duration
// for every tool, in rounds, so that each round's ratios compare tools
// measured close together in time. The order changes each round
// (roundOrder), so no tool always goes first or follows the same one;
// each round's results are kept in the fixed order below. Then the
// executor's whole iteration in-process, against the same nginx.
func (e *env) measurePeers(ctx context.Context, r *report) error {
	tools := []struct {
		name string
		fn   func(context.Context) (throughput, error)
	}{{"wrk", e.wrk}, {"hey", e.hey}, {"vegeta", e.vegeta}, {"surge", e.surgeMax}}
	for round := range e.o.rounds {
		rr := make([]throughput, len(tools))
		for _, i := range roundOrder(round, len(tools)) {
			t := tools[i]
			fmt.Fprintf(e.stdout, "bench: round %d/%d: %s, %d connections, %s\n", round+1, e.o.rounds, t.name, e.o.conns, e.o.duration)
			res, err := t.fn(ctx)
			if err != nil {
				return fmt.Errorf("%s: %w", t.name, err)
			}
			res.Tool = t.name
			fmt.Fprintf(e.stdout, "bench:   %d requests, %.0f req/s, %.2f CPU s, %.0f req per CPU-second\n",
				res.Requests, res.RPS(), res.CPU, res.PerCPU())
			rr[i] = res
		}
		r.Rounds = append(r.Rounds, rr)
	}
	r.Peers = medianPeers(r.Rounds)
	if e.o.executorTest == "" {
		return nil
	}
	benchtime := "2s"
	if e.o.smoke {
		benchtime = "20x"
	}
	fmt.Fprintln(e.stdout, "bench: agent/executor BenchmarkIteration against nginx, BenchmarkExtraction")
	m, err := e.executorBench(ctx, "^Benchmark(Iteration|Extraction)$", benchtime)
	if err != nil {
		return err
	}
	r.addMicroAgent(m)
	return nil
}

// medianPeers returns each tool's round with the median requests per
// CPU-second.
func medianPeers(rounds [][]throughput) []throughput {
	if len(rounds) == 0 {
		return nil
	}
	var out []throughput
	for i := range rounds[0] {
		var runs []throughput
		for _, rr := range rounds {
			if i < len(rr) {
				runs = append(runs, rr[i])
			}
		}
		sort.Slice(runs, func(a, b int) bool { return runs[a].PerCPU() < runs[b].PerCPU() })
		out = append(out, runs[len(runs)/2])
	}
	return out
}
