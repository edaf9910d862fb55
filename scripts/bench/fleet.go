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
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/surgeload/surge/scripts/fleet/fleetjson"
)

// What `scripts/fleet -json FILE` writes (package fleetjson), under the
// names this harness uses.
type (
	fleetOut = fleetjson.Output
	wireRow  = fleetjson.Wire
	soakRun  = fleetjson.Soak
	growth   = fleetjson.Growth
)

// agentsCompression is the stream compression agents use: cmd/surge
// registers controller.Zstd (fastest level) and agents choose it; fleet
// -wire measures it under this name beside the others.
const agentsCompression = "zstd"

// parseFleet reads scripts/fleet's -json output and checks it holds the
// figures of mode.
func parseFleet(b []byte, mode string) (fleetOut, error) {
	var f fleetOut
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&f); err != nil {
		return f, fmt.Errorf("fleet %s output: %w", mode, err)
	}
	if f.Mode != mode {
		return f, fmt.Errorf("fleet %s output: mode %q", mode, f.Mode)
	}
	switch {
	case mode == "wire" && len(f.Wire) == 0:
		return f, errors.New("fleet wire output: no rows")
	case mode == "fleet" && f.Fleet == nil:
		return f, errors.New("fleet output: no fleet figures")
	case mode == "soak" && f.Soak == nil:
		return f, errors.New("fleet soak output: no soak figures")
	}
	return f, nil
}

// runFleet runs scripts/fleet (built by bench.sh) with args and -json, and
// returns its figures. Interrupted, it gets SIGTERM and stops the
// processes it started itself.
func (e *env) runFleet(ctx context.Context, mode string, timeout time.Duration, args ...string) (fleetOut, error) {
	jf := filepath.Join(e.tmp, "fleet-"+mode+".json")
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.o.fleet, append(args, "-json", jf)...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fleetOut{}, fmt.Errorf("fleet %s: %w: %s", mode, err, lastLines(out.String(), 8))
	}
	b, err := os.ReadFile(jf)
	if err != nil {
		return fleetOut{}, fmt.Errorf("fleet %s: %w", mode, err)
	}
	return parseFleet(b, mode)
}

// soakRecord is the last soak, kept in the tree (docs/bench-soak.json) so
// that a `make bench` without one can report it as what it is: an older
// figure, with its date and commit.
type soakRecord struct {
	When   time.Time `json:"when"`
	Commit string    `json:"commit"`
	Run    fleetOut  `json:"run"`
}

func readSoakRecord(path string) (*soakRecord, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("soak record: %w", err)
	}
	var r soakRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("soak record %s: %w", path, err)
	}
	if r.Run.Mode != "soak" || r.Run.Soak == nil {
		return nil, fmt.Errorf("soak record %s: no soak figures", path)
	}
	return &r, nil
}

func writeSoakRecord(path string, r *soakRecord) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("soak record: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("soak record: %w", err)
	}
	return nil
}

// headingRe matches a Markdown heading line.
var headingRe = regexp.MustCompile(`(?m)^(#+) `)

// demote makes md's headings one level deeper (fleet's "## " sections go
// under the report's own).
func demote(md string) string {
	return headingRe.ReplaceAllString(md, "#$1 ")
}

// soakLabel says where row 7's figure comes from.
func soakLabel(r *soakRecord, fresh bool) string {
	if fresh {
		return fmt.Sprintf("this run (soak of %s, commit %s)", r.When.Format("2006-01-02"), r.Commit)
	}
	return fmt.Sprintf("from the soak of %s, commit %s", r.When.Format("2006-01-02 15:04 UTC"), r.Commit)
}

// soakGoal is row 7's figure and whether it holds: controller and agent
// RSS trend under 5% after the first minute of a run of 10 minutes or
// more. ok is false with judged false when there is nothing to judge.
func soakGoal(s *soakRun) (txt string, ok, judged bool) {
	c, cok := s.GrowthOf("controller")
	a, aok := s.GrowthOf("agent")
	d := (time.Duration(s.DurationS * float64(time.Second))).String()
	if !cok || !aok {
		return fmt.Sprintf("a %s run at %d/s: shorter than a minute plus a sample, no growth figure", d, s.Rate), false, false
	}
	pct := func(name string, g growth) string {
		x := fmt.Sprintf("%s trend %+.1f%% (%+.1f%% at the end, from %.1f MiB at %.0f s", name, g.TrendPct, g.LastPct, g.BaseMiB, g.BaseAtS)
		if an, ok := s.GrowthOf(name + " anonymous"); ok {
			x += fmt.Sprintf("; its anonymous part's trend %+.1f%%", an.TrendPct)
		}
		if h, ok := s.GrowthOf(name + " live heap"); ok {
			x += fmt.Sprintf("; its Go heap live after GC: trend %+.1f%% from %.1f MiB", h.TrendPct, h.BaseMiB)
		}
		return x + ")"
	}
	txt = fmt.Sprintf("%s at %d/s (%d requests, %d failures): RSS after the first minute (least-squares trend over the rest of the run, in %% of the RSS then): %s; %s", d, s.Rate, s.Requests, s.Failures,
		pct("controller", c), pct("agent", a))
	if s.DurationS < 600 {
		return txt + "; shorter than the goal's 10 minutes", false, false
	}
	return txt, c.TrendPct < 5 && a.TrendPct < 5, true
}

// gitCommit names the tree's commit for the soak record, "+dirty" when
// it has uncommitted changes (bench.sh passes it; this is the fallback).
func gitCommit() string {
	out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	rev := strings.TrimSpace(string(out))
	if exec.Command("git", "diff", "--quiet", "HEAD").Run() != nil {
		rev += "+dirty"
	}
	return rev
}

// controllerSide runs scripts/fleet's modes for goals 4, 5 and 7: the
// snapshot stream's bytes, a simulated fleet against a real controller,
// and (when -soak is set) the soak, which it records in -soak-record.
// Without a soak, row 7 reports the recorded one, labelled as such.
func (e *env) controllerSide(ctx context.Context, r *report) error {
	o, stdout, want := e.o, e.stdout, e.o.want
	if o.fleet != "" && want("wire") {
		fmt.Fprintf(stdout, "bench: snapshot stream, %d snapshots of 10 series per compression (scripts/fleet -wire)\n", o.wireSnapshots)
		f, err := e.runFleet(ctx, "wire", 10*time.Minute, "-wire", "-snapshots", strconv.Itoa(o.wireSnapshots))
		if err != nil {
			return err
		}
		r.Wire = &f
		if w, ok := f.WireRow(agentsCompression); ok {
			fmt.Fprintf(stdout, "bench:   agents' zstd: %.0f bytes per snapshot (%.1f KB/s at one a second), %.0f µs of CPU each (sender and receiver)\n",
				w.BytesPerSnapshot, w.BytesPerSnapshot/1000, w.CPUPerSnapshotUS)
		}
	}
	if o.fleet != "" && want("fleet") {
		fmt.Fprintf(stdout, "bench: simulated fleet, %d agents × %d series for %s (scripts/fleet)\n", o.fleetAgents, o.fleetSeries, o.fleetDuration)
		f, err := e.runFleet(ctx, "fleet", o.fleetDuration+5*time.Minute, "-surge", o.surge,
			"-agents", strconv.Itoa(o.fleetAgents), "-series", strconv.Itoa(o.fleetSeries), "-duration", o.fleetDuration.String())
		if err != nil {
			return err
		}
		r.Fleet = &f
		x := f.Fleet
		fmt.Fprintf(stdout, "bench:   controller %.2f cores (busiest second %.2f); emission lag p50 %.0f ms, p99 %.0f ms; %d of %d intervals, %d of %d snapshots acknowledged\n",
			x.ControllerCores, x.PeakCores, x.LagP50MS, x.LagP99MS, x.Emitted, x.Expected, x.SnapshotsAcked, x.SnapshotsSent)
	}
	if o.fleet != "" && want("soak") && o.soak > 0 {
		fmt.Fprintf(stdout, "bench: soak, a controller, an agent and a target for %s (scripts/fleet -soak)\n", o.soak)
		args := []string{"-surge", o.surge, "-soak", o.soak.String(), "-sample", o.soakSample.String()}
		if o.smoke {
			args = append(args, "-rate", "100")
		}
		f, err := e.runFleet(ctx, "soak", o.soak+5*time.Minute, args...)
		if err != nil {
			return err
		}
		r.Soak, r.SoakFresh = &soakRecord{When: time.Now().UTC(), Commit: o.commit, Run: f}, true
		txt, _, _ := soakGoal(f.Soak)
		fmt.Fprintf(stdout, "bench:   %s\n", txt)
		if !o.smoke {
			if err := writeSoakRecord(o.soakRecord, r.Soak); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "bench: wrote %s\n", o.soakRecord)
		}
		return nil
	}
	rec, err := readSoakRecord(o.soakRecord)
	if err != nil {
		return err
	}
	r.Soak = rec
	return nil
}
