package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

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

// addMicroFiles reads the go test -bench outputs bench.sh ran: the
// histograms' (-micro, and -micro-before when given) and the agent
// packages' (-micro-agent).
func (r *report) addMicroFiles(o options) error {
	var err error
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
	return nil
}

// addMicroAgent adds benchmark results to the agent's hot-path table.
func (r *report) addMicroAgent(m map[string]micro) {
	if r.MicroAgent == nil {
		r.MicroAgent = map[string]micro{}
	}
	for k, v := range m {
		r.MicroAgent[k] = v
	}
}
