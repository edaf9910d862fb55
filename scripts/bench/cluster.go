package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

func (e *env) startCluster(ctx context.Context) error {
	ports, err := freePorts(3)
	if err != nil {
		return err
	}
	grpcPort, gossipPort := ports[0], ports[1]
	// The agent serves its CPU profile for goal 4, unless -agent-cpuprofile
	// takes the profiler for the whole harness run.
	if e.o.agentProfile == "" {
		e.agentPprof = fmt.Sprintf("127.0.0.1:%d", ports[2])
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
	if e.agentPprof != "" && id == "bench" {
		agentArgs = append(agentArgs, "--pprof-addr", e.agentPprof)
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
	// SendLatenessUS, when the summary has it: the whole run's send
	// lateness of an open-model scenario, merged from the agents'
	// per-interval histograms.
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
