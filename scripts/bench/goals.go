package main

import (
	"fmt"
	"math"
	"path"
	"slices"
	"sort"
	"strings"
	"time"
)

// ratio is the median over rounds of surge's requests per CPU-second
// divided by tool's in the same round, and the per-round ratios.
func (r *report) ratio(tool string) (float64, []float64) {
	var rs []float64
	for _, rr := range r.Rounds {
		var s, t throughput
		for _, x := range rr {
			switch x.Tool {
			case "surge":
				s = x
			case tool:
				t = x
			}
		}
		if s.PerCPU() > 0 && t.PerCPU() > 0 {
			rs = append(rs, s.PerCPU()/t.PerCPU())
		}
	}
	if len(rs) == 0 {
		return 0, nil
	}
	sorted := slices.Clone(rs)
	sort.Float64s(sorted)
	return sorted[len(sorted)/2], rs
}

func verdict(ok bool) string {
	if ok {
		return "**pass**"
	}
	return "**miss**"
}

// verdict is verdict(ok), or none ("—") for a smoke run.
func (r *report) verdict(ok bool) string { return r.judge(true, ok) }

// judge is the verdict on a figure of this run: none ("—") when it was not
// measured or in a smoke run, else pass or miss.
func (r *report) judge(measured, ok bool) string {
	if r.Smoke || !measured {
		return "—"
	}
	return verdict(ok)
}

// goalsTable is the goals section: every goal, the figure measured and
// the verdict.
func (r *report) goalsTable() string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	w("## Goals\n\n")
	if r.Smoke {
		w("Smoke run (`make bench-smoke`): tiny loads that prove the harness runs; no verdicts.\n\n")
	}
	w("| # | goal | measured | verdict |\n|---|---|---|---|\n")
	r.goals(w)
	return b.String()
}

func (r *report) goals(w func(string, ...any)) {
	r.goal1(w)
	r.goal2(w)
	r.goal3(w)
	r.goal4(w)
	r.goal5(w)
	r.goal6(w)
	r.goal7(w)
}

// goal1 is max throughput per client CPU-second against the peers.
func (r *report) goal1(w func(string, ...any)) {
	rw, rws := r.ratio("wrk")
	rv, rvs := r.ratio("vegeta")
	rh, rhs := r.ratio("hey")
	w("| 1 | surge ≥ 0.7× wrk, ≥ 3× vegeta, ≥ 2× hey (req per client CPU-s) | %.2f× wrk, %.2f× vegeta, %.2f× hey (medians of the per-round ratios of %d rounds, tools' order balanced across rounds; per round: wrk %s; vegeta %s; hey %s) | %s |\n",
		rw, rv, rh, len(r.Rounds), floats(rws), floats(rvs), floats(rhs), r.judge(rw > 0 && rv > 0 && rh > 0, rw >= 0.7 && rv >= 3 && rh >= 2))
}

// goal2 is pacing: the target's own count of each window's requests, and
// the send lateness the agents' recorder measured.
func (r *report) goal2(w func(string, ...any)) {
	windowsMeasured, lateMeasured := len(r.Pacing) > 0, len(r.Pacing) > 0
	pacingOK, lateOK := true, true
	var parts, late []string
	for _, p := range r.Pacing {
		windowsMeasured = windowsMeasured && len(p.Windows) > 0
		pacingOK = pacingOK && p.Windows.Within(0.001) == len(p.Windows) && p.Dropped == 0
		parts = append(parts, fmt.Sprintf("%d/s: %d of %d windows within 0.1%% (worst %.3f%%; surge's own progress: %d of %d, worst %.3f%%), deficit %d, dropped %d",
			p.Rate, p.Windows.Within(0.001), len(p.Windows), 100*p.Windows.Worst(), p.Progress.Within(0.001), len(p.Progress), 100*p.Progress.Worst(), p.Deficit, p.Dropped))
		switch x := p.InProcess; {
		case p.ClusterLateP99 >= 0:
			lateOK = lateOK && p.ClusterLateP99 <= 1000
			late = append(late, fmt.Sprintf("%d/s %d µs (summary)", p.Rate, p.ClusterLateP99))
		case x != nil:
			p99 := x.Metrics["late-p99-µs"]
			lateOK = lateOK && p99 <= 1000
			late = append(late, fmt.Sprintf("%d/s %.0f µs", p.Rate, p99))
		default:
			lateMeasured = false
		}
	}
	lateTxt, txt := "not measured", "not measured"
	if len(late) > 0 {
		lateTxt = strings.Join(late, ", ")
	}
	if len(parts) > 0 {
		txt = strings.Join(parts, "; ")
	}
	w("| 2 | pacing 1k/10k/50k/s: each 1-s window within 0.1%%; send lateness p99 ≤ 1 ms | windows as the target counted them (nginx's access log, `$msec`: the requests it received in each second from the first; the first and last windows dropped) %s; send lateness p99 (the agents' recorder; from the run summary when it reports `scenarios.<name>.send_lateness_us`, else from the in-process run of the executor): %s | %s (windows), %s (lateness) |\n",
		txt, lateTxt, r.judge(windowsMeasured, pacingOK), r.judge(lateMeasured, lateOK))
}

// goal3 is latency fidelity against a 10 ms target.
func (r *report) goal3(w func(string, ...any)) {
	f := r.Fidelity
	off := float64(f.SurgeP50 - f.HoldSurge.P50)
	w("| 3 | 10 ms target at 1k/s: surge p50 within 0.3 ms of the target-side delay; surge p99 ≤ vegeta p99 | p50 %d µs, %.0f µs above the target's held p50 (%d µs); p99 %d µs vs vegeta %d µs | %s |\n",
		f.SurgeP50, off, f.HoldSurge.P50, f.SurgeP99, f.VegetaP99, r.judge(f.Rounds > 0, math.Abs(off) <= 300 && f.SurgeP99 <= f.VegetaP99))
}

// goal6 is memory per idle connection and the held connections.
func (r *report) goal6(w func(string, ...any)) {
	h := r.Hold
	if h.Conns > 0 {
		w("| 6 | ≤ 16 KiB RSS per idle keep-alive connection or idle VU; 3 agents × 15,000 connections for 60 s | %d connections on 3 agents for %s: opened %d, peak open %d, established at the end %d; **%.1f KiB RSS per idle keep-alive connection + its idle VU** (agents' RSS growth ÷ connections); with a request in flight on each (one agent, %d VUs waiting for a 60-s answer): %.1f KiB | %s (per connection), %s (held) |\n",
			h.Conns, h.Hold, h.Opened, h.PeakOpen, h.EstablishedAtEnd, h.PerConnKiB(), r.Idle.Conns, r.Idle.PerConnKiB(), r.verdict(h.PerConnKiB() <= 16), r.verdict(h.OK()))
		return
	}
	w("| 6 | ≤ 16 KiB RSS per idle connection/VU; 3 agents × 15,000 connections for 60 s | %.1f KiB per VU + connection with a request in flight (%d held by one agent); held connections: not run (BENCH_HOLD_CONNS=0) | %s (per connection), — (held) |\n",
		r.Idle.PerConnKiB(), r.Idle.Conns, r.judge(r.Idle.Conns > 0, r.Idle.PerConnKiB() <= 16))
}

func floats(xs []float64) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = fmt.Sprintf("%.2f", x)
	}
	return strings.Join(parts, ", ")
}

// perCore is a benchmark's operations per CPU-second: from its cpu-ns/op
// when it reports one (the goal is per core), else from ns/op.
func perCore(m micro) float64 {
	ns := m.Metrics["cpu-ns/op"]
	if ns <= 0 {
		ns = m.NsOp
	}
	if ns <= 0 {
		return 0
	}
	return 1e9 / ns
}

// goal4 is the agent's recording path in a pacing run (its CPU profile)
// and the snapshot stream's bytes per agent with the agents'
// compression, over a real gRPC connection.
func (r *report) goal4(w func(string, ...any)) {
	var parts, verdicts []string
	stream, haveStream := wireRow{}, false
	if r.Wire != nil {
		stream, haveStream = r.Wire.WireRow(agentsCompression)
	}
	txt, v := r.recordingGoal()
	parts, verdicts = append(parts, txt), append(verdicts, v+" (recording)")
	if haveStream {
		txt := fmt.Sprintf("stream %.1f KB/s per agent (%d series × a latency and a service-time histogram of 1,000 values over 0.5–50 ms, one snapshot a second, zstd as agents send it; bytes on a real gRPC connection, HTTP/2 framing included, fleet -wire",
			stream.BytesPerSnapshot/1000, stream.Series)
		if raw, ok := r.Wire.WireRow(""); ok {
			txt += fmt.Sprintf("; %.1f KB/s uncompressed", raw.BytesPerSnapshot/1000)
		}
		parts = append(parts, txt+")")
		verdicts = append(verdicts, r.verdict(stream.Series >= 10 && stream.BytesPerSnapshot <= 20_000)+" (stream)")
	} else {
		parts = append(parts, "stream: not measured (scripts/fleet -wire not run)")
		verdicts = append(verdicts, "— (stream)")
	}
	w("| 4 | recording ≤ 1%% of a core at 50k req/s; snapshot stream ≤ 20 KB/s per agent for 10 series | %s | %s |\n",
		strings.Join(parts, "; "), strings.Join(verdicts, ", "))
}

// goal5 is merges per CPU-second (micro-benchmarks) and a simulated
// fleet against a real controller (fleet): its CPU and emission lag.
func (r *report) goal5(w func(string, ...any)) {
	var parts, verdicts []string
	path, sep := r.Micro["BenchmarkDecodeValidateAndMerge"], r.Micro["BenchmarkDecodeValidateMerge"]
	switch {
	case path.NsOp > 0:
		txt := fmt.Sprintf("%.0f merges per CPU-second (10-series snapshot: `hist.UnmarshalSnapshot` + `Set.ValidateAndMergeProto`, the controller's path, `BenchmarkDecodeValidateAndMerge`; %.0f/s wall", perCore(path), 1e9/path.NsOp)
		if sep.NsOp > 0 {
			txt += fmt.Sprintf("; %.0f/s per CPU-second with validate and merge as separate passes, `BenchmarkDecodeValidateMerge`", perCore(sep))
		}
		parts = append(parts, txt+"; the controller merges each snapshot into its interval's and the run's sets)")
		verdicts = append(verdicts, r.verdict(perCore(path) >= 20_000)+" (merges/s)")
	case sep.NsOp > 0:
		parts = append(parts, fmt.Sprintf("%.0f merges per CPU-second (10-series snapshot, unmarshal + `ValidateProto` + `MergeProto`, `BenchmarkDecodeValidateMerge`)", perCore(sep)))
		verdicts = append(verdicts, r.verdict(perCore(sep) >= 20_000)+" (merges/s)")
	default:
		parts = append(parts, "merges/s: not measured (no micro-benchmarks given)")
		verdicts = append(verdicts, "— (merges/s)")
	}
	if r.Fleet != nil && r.Fleet.Fleet != nil {
		f := r.Fleet.Fleet
		txt := fmt.Sprintf("fleet of %d simulated agents × %d series × %d values, %s intervals for %s against a real `surge controller` (scripts/fleet): controller %.2f cores on average (busiest second %.2f), %d of %d snapshots acknowledged, %d of %d requests in the summary; emission lag p50 %.0f / p99 %.0f / max %.0f ms over %d of %d intervals",
			f.Agents, f.Series, f.Values, secs(f.IntervalS), secs(f.DurationS), f.ControllerCores, f.PeakCores, f.SnapshotsAcked, f.SnapshotsSent,
			f.Requests, f.RequestsSent, f.LagP50MS, f.LagP99MS, f.LagMaxMS, f.Emitted, f.Expected)
		if f.Status != "finished" {
			txt += fmt.Sprintf("; run %s", f.Status)
		}
		parts = append(parts, txt)
		if f.Agents >= 500 && f.Series >= 20 && f.IntervalS <= 1 {
			verdicts = append(verdicts, r.verdict(f.ControllerCores < 1 && f.KeptUp())+" (under one core)",
				r.verdict(f.LagP99MS <= 500 && f.Emitted == f.Expected)+" (emission lag)")
		} else {
			verdicts = append(verdicts, "— (fleet smaller than 500 × 20)")
			if r.Smoke {
				verdicts[len(verdicts)-1] = "— (fleet)"
			}
		}
	} else {
		parts = append(parts, "fleet: not measured (scripts/fleet not run)")
		verdicts = append(verdicts, "— (fleet)")
	}
	w("| 5 | ≥ 20,000 merges/s/core; 500 agents × 20 series under one core; emission lag p99 ≤ 500 ms | %s | %s |\n",
		strings.Join(parts, "; "), strings.Join(verdicts, ", "))
}

// secs formats seconds as a duration.
func secs(s float64) time.Duration {
	return time.Duration(s * float64(time.Second)).Round(time.Millisecond)
}

// goal7 is the soak: this run's, or the last recorded one, labelled.
func (r *report) goal7(w func(string, ...any)) {
	const goal = "agent and controller RSS grow < 5% after the first minute of a 10-minute run"
	if r.Soak == nil || r.Soak.Run.Soak == nil {
		w("| 7 | %s | not measured: no soak recorded (`BENCH_SOAK=10m make bench` or `make bench-soak` runs one, 10 minutes, and records it in docs/bench-soak.json) | — |\n", goal)
		return
	}
	txt, ok, judged := soakGoal(r.Soak.Run.Soak)
	v := r.judge(judged, ok)
	if !r.SoakFresh {
		v = "stale (another run's)"
	}
	w("| 7 | %s | %s: %s | %s |\n", goal, soakLabel(r.Soak, r.SoakFresh), txt, v)
}

// recordingGoal is goal 4's recording figure: the share of the agent's
// CPU profile in the recording path during the highest-rate pacing run,
// times the agent's CPU over that run, per request.
func (r *report) recordingGoal() (string, string) {
	x := r.recording()
	if x == nil {
		return "recording: not measured (no pacing run with the agent profiled)", "—"
	}
	pr := x.Profile
	var by []string
	for _, p := range recordingFuncs {
		by = append(by, fmt.Sprintf("%s %.2f%%", strings.TrimSuffix(path.Base(p), "."), 100*float64(pr.MatchedByPrefix[p])/float64(max(pr.TotalNS, 1))))
	}
	txt := fmt.Sprintf("recording %.2f%% of a core at 50k/s (%.0f ns per request × 50k/s; %.2f%% of a core at the %.0f req/s the run sent): the agent's CPU profile over the %d/s pacing run puts %.2f%% of its CPU in the recording path (%d of %d samples; %s), %.2f of the agent's %.2f CPU-s over the run for %d requests",
		100*x.CoreAt(50_000), x.NSPerRequest(), 100*x.CoreAt(x.Achieved()), x.Achieved(), x.Rate, 100*pr.Share(), pr.Matched, pr.Samples, strings.Join(by, ", "), x.CPU(), x.AgentCPU, x.Requests)
	if !x.Judged() {
		txt += fmt.Sprintf(" (no verdict: a run below 50k/s or fewer than %d samples)", minRecordingSamples)
	}
	return txt, r.judge(x.Judged(), x.CoreAt(50_000) <= 0.01)
}

// recording is the pacing runs' recording measurement, if any.
func (r *report) recording() *recordingResult {
	var x *recordingResult
	for _, p := range r.Pacing {
		if p.Recording != nil {
			x = p.Recording
		}
	}
	return x
}
