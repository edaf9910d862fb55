package main

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"
)

// notesMarker starts the hand-written part of docs/benchmarks.md (profiles
// and what would close each miss), which make bench keeps as it is.
const notesMarker = "<!-- hand-written below: kept by make bench -->"

// keepNotes appends old's hand-written part to md.
func keepNotes(md, old string) string {
	if i := strings.Index(old, notesMarker); i >= 0 {
		return md + "\n" + old[i:]
	}
	return md + "\n" + notesMarker + "\n"
}

// report is everything one harness run measured.
type report struct {
	When          time.Time
	Machine       string
	Pin           string
	Conns         int
	Duration      time.Duration
	Peers         []throughput   // each tool's median round (by requests per CPU-second)
	Rounds        [][]throughput // every round, tools in the same order
	Pacing        []pacingResult
	Fidelity      fidelityResult
	Idle          idleResult
	IdleInProcess *micro
	Hold          holdResult
	MicroAgent    map[string]micro
	Micro         map[string]micro
	MicroBefore   map[string]micro
	// AgentBusy counts the surge runs whose agent was not idle within 5 s
	// before or after them (its CPU figure then holds some other work).
	AgentBusy int
	// The controller side, from scripts/fleet: the snapshot stream (goal
	// 4), a simulated fleet (goal 5), and the soak (goal 7): this run's
	// when SoakFresh, else the last recorded one, or nil.
	Wire, Fleet *fleetOut
	Soak        *soakRecord
	SoakFresh   bool
	// Smoke: a harness check with tiny loads; no verdicts.
	Smoke bool
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

// ns formats a ns/op figure: tenths below 100 ns, whole numbers above.
func ns(v float64) string {
	if v < 100 {
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.0f", v)
}

func verdict(ok bool) string {
	if ok {
		return "**pass**"
	}
	return "**miss**"
}

// verdict is verdict(ok), or none ("—") for a smoke run.
func (r *report) verdict(ok bool) string {
	if r.Smoke {
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

func (r *report) markdown() string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	w("# Benchmarks\n\n")
	w("Written by `make bench` (scripts/bench.sh → scripts/bench) on %s UTC.\n\n", r.When.Format("2006-01-02 15:04"))
	w("- Machine: %s. Shared and noisy: compare the ratios measured in this run, not absolute numbers across runs.\n", r.Machine)
	w("- Placement: %s.\n", r.Pin)
	w("- Target: nginx on 127.0.0.1, 2 workers, keep-alive, `return 200 \"ok\"`, access log off.\n")
	w("- Client CPU: getrusage of the tool's process (wrk, hey, `vegeta attack`: user + system of the whole process, start to exit); for surge, the agent process's utime+stime (all its threads) from /proc/PID/stat, read before and after the `surge run`, each time once the agent is idle (its CPU grows by at most 10 ms in 200 ms), so the run's whole work is counted and nothing earlier; the controller and CLI run on the target's core at nice 19 and are not counted.\n")
	w("- Goals 4 (stream), 5 (fleet) and 7: `scripts/fleet` with real processes (a `surge controller`, simulated agents on real AgentGateway streams, a real agent and target for the soak); goal 7's soak runs only with `BENCH_SOAK=10m make bench` or `make bench-soak`, which record it in docs/bench-soak.json.\n\n")

	b.WriteString(r.goalsTable())

	w("\n## 1. Max throughput, %d connections, %s each, %d rounds\n\n", r.Conns, r.Duration, len(r.Rounds))
	w("Each tool's median round (by requests per client CPU-second); surge ÷ tool is the median of the per-round ratios. Each round runs the tools one after the other in the order of a Williams Latin square (over four rounds each tool runs once in each position and once directly after each other tool; then it starts over): %s.", r.orders())
	if r.AgentBusy > 0 {
		w(" The agent was still busy 5 s before or after %d of surge's runs: those figures hold some other work.", r.AgentBusy)
	}
	w("\n\n")
	w("| tool | requests | req/s | client CPU s | req per client CPU-second | surge ÷ tool | per round |\n|---|---:|---:|---:|---:|---:|---|\n")
	for _, p := range r.Peers {
		ratio, rounds := "—", "—"
		if p.Tool != "surge" {
			if m, rs := r.ratio(p.Tool); m > 0 {
				ratio = fmt.Sprintf("%.2f×", m)
				var parts []string
				for _, x := range rs {
					parts = append(parts, fmt.Sprintf("%.2f", x))
				}
				rounds = strings.Join(parts, ", ")
			}
		}
		w("| %s | %d | %.0f | %.2f | %.0f | %s | %s |\n", p.Tool, p.Requests, p.RPS(), p.CPU, p.PerCPU(), ratio, rounds)
	}
	w("\nsurge: one agent (constant-vus, %d VUs) and a controller as separate processes, `surge run` of the plan.\n", r.Conns)
	w("vegeta: `attack -rate=0 -workers=N -max-workers=N -connections=N`. hey: `-z D -c N`. wrk: `-t1 -c N -d D` (one thread: one client core).\n")

	w("\n## 2. Open-model pacing against nginx\n\n")
	w("Cluster: a `surge run` of constant-arrival-rate (pre-allocated VUs min(rate, 256), max VUs min(rate, 2048)); per 1-second window of the run's progress (first and last windows dropped: they straddle start and end), arrivals started vs planned. ")
	w("In-process: the same scenario run by `agent/executor` (`BenchmarkOpenModel`: BuildScenarios, RunScenarios, a recorder Swap at every second, as the agent does) against the same nginx, pinned to the client core; the send lateness is the recorder's lateness histogram, the one agents send per scenario.\n\n")
	w("| rate/s | windows | within 0.1%% | worst window error | deficit | dropped | requests | agent CPU s | in-process: lateness p50 / p99 / max µs | dropped | worst window |\n|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|\n")
	for _, p := range r.Pacing {
		ip, ipd, ipw := "not run", "—", "—"
		if x := p.InProcess; x != nil {
			ip = fmt.Sprintf("%.0f / %.0f / %.0f", x.Metrics["late-p50-µs"], x.Metrics["late-p99-µs"], x.Metrics["late-max-µs"])
			ipd = fmt.Sprintf("%.0f", x.Metrics["dropped"])
			ipw = fmt.Sprintf("%.3f%%", x.Metrics["worst-window-%"])
		}
		w("| %d | %d | %d | %.3f%% | %d | %d | %d | %.2f | %s | %s | %s |\n", p.Rate, len(p.Windows), p.Within(0.001), 100*p.Worst(), p.Deficit, p.Dropped, p.Requests, p.CPU, ip, ipd, ipw)
	}

	f := r.Fidelity
	w("\n## 3. Latency fidelity: a 10 ms target at 1000/s, %s, %d rounds\n\n", r.Duration, f.Rounds)
	w("The target (`bench serve-delay`, on the target's core) holds each request 10 ms on a timerfd of its own (a Go timer would fire up to 1 ms late, by an amount that depends on the client's timing) and measures how long it held each one; each tool is compared with the target's own p50 during that tool's runs. Each round runs surge and vegeta, which goes first alternating; figures are medians over rounds (p99 per round: surge %s; vegeta %s).\n\n",
		intList(f.SurgeP99s), intList(f.VegetaP99s))
	w("| tool | p50 µs | p99 µs | target held p50 / p99 µs | p50 − target p50 |\n|---|---:|---:|---|---:|\n")
	w("| surge | %d | %d | %d / %d | %d µs |\n", f.SurgeP50, f.SurgeP99, f.HoldSurge.P50, f.HoldSurge.P99, f.SurgeP50-f.HoldSurge.P50)
	w("| vegeta | %d | %d | %d / %d | %d µs |\n", f.VegetaP50, f.VegetaP99, f.HoldVegeta.P50, f.HoldVegeta.P99, f.VegetaP50-f.HoldVegeta.P50)
	w("\nsurge measures open-model latency from the intended send time; deficit in this run: %d.\n", f.SurgeDeficit)

	w("\n## 6. Memory per idle connection, and many held connections\n\n")
	w("%d VUs each wait for the answer to a request in flight on their own keep-alive connection to `surge target --latency 60s`; agent RSS peak minus RSS before: %.0f KiB, **%.1f KiB per connection + VU** (fixed costs of a run included).",
		r.Idle.Conns, r.Idle.DeltaKiB, r.Idle.PerConnKiB())
	if x := r.IdleInProcess; x != nil {
		w(" In-process (`BenchmarkIdleVUs`, the same wait against a server that never answers): goroutine stack %.0f B, live heap %.0f B, RSS %.0f B per VU.",
			x.Metrics["stack-B/vu"], x.Metrics["heap-B/vu"], x.Metrics["rss-B/vu"])
	}
	w("\n\n")
	if h := r.Hold; h.Conns > 0 {
		w("Three agents hold %d connections (constant-vus, one request then a think time longer than the hold) for %s against nginx with 4 workers (`listen ... reuseport`), binding %s round robin (`connection.source_addresses`): opened %d, peak open %d, established at the end %d, failures %d; agents' RSS growth %s KiB (%.1f KiB per connection + VU), descriptors %v.\n",
			h.Conns, h.Hold, strings.Join(h.Sources, ", "), h.Opened, h.PeakOpen, h.EstablishedAtEnd, h.Failures, kibList(h.AgentRSSKiB), h.PerConnKiB(), h.AgentFDs)
	} else {
		w("Held connections: not run (`BENCH_HOLD_CONNS=0`).\n")
	}

	r.controllerSection(w)

	if len(r.Micro) > 0 {
		w("\n## Hot paths: histograms (`go test -bench -benchmem ./hist/`)\n\n")
		if len(r.MicroBefore) > 0 {
			w("Before: the tree of bench.sh's `HIST_BASELINE`, before the hist/ hot-path changes (ToProto via Export, four decode passes per merged histogram), run in the same `make bench`.\n\n")
		}
		r.microTable(w, r.Micro, r.MicroBefore)
	}
	if len(r.MicroAgent) > 0 {
		w("\n## Hot paths: the agent's request path\n\n")
		w("`go test -bench Do -benchmem ./agent/httpclient/` (own HTTP/1.1 client vs the net/http client it replaced, against a child-process server; seq: one connection, par: 16) and `agent/executor` `BenchmarkIteration` (one whole open-model iteration: VU state, request, checks, recorder; vs the bare `Session.Do`) against the nginx target, pinned to the client core: cpu-ns/op is the client's CPU per request. `BenchmarkWaiter`: how late the arrival loop's waiter (a timerfd in the netpoller) and the runtime's timer wake for waits of 1 ms and 100 µs, with no requests: the floor of send lateness on this machine.\n\n")
		r.microTable(w, r.MicroAgent, nil)
	}
	return b.String()
}

func intList(xs []int64) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = fmt.Sprintf("%d", x)
	}
	return strings.Join(parts, ", ")
}

func kibList(xs []float64) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = fmt.Sprintf("%.0f", x)
	}
	return strings.Join(parts, " / ")
}

// microTable writes benchmark results, with a before column when before
// is given.
func (r *report) microTable(w func(string, ...any), ms, before map[string]micro) {
	if len(before) > 0 {
		w("| benchmark | before ns/op | after ns/op | before B/op | after B/op | before allocs | after allocs | extra (after) |\n|---|---:|---:|---:|---:|---:|---:|---|\n")
	} else {
		w("| benchmark | ns/op | B/op | allocs/op | extra |\n|---|---:|---:|---:|---|\n")
	}
	names := make([]string, 0, len(ms))
	for n := range ms {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		m := ms[n]
		extra := make([]string, 0, len(m.Metrics))
		for k, v := range m.Metrics {
			extra = append(extra, fmt.Sprintf("%.0f %s", v, k))
		}
		sort.Strings(extra)
		if len(before) > 0 {
			bm, ok := before[n]
			if !ok {
				w("| %s | — | %s | — | %.0f | — | %.0f | %s |\n", n, ns(m.NsOp), m.BOp, m.Allocs, strings.Join(extra, ", "))
				continue
			}
			w("| %s | %s | %s | %.0f | %.0f | %.0f | %.0f | %s |\n", n, ns(bm.NsOp), ns(m.NsOp), bm.BOp, m.BOp, bm.Allocs, m.Allocs, strings.Join(extra, ", "))
			continue
		}
		w("| %s | %s | %.0f | %.0f | %s |\n", n, ns(m.NsOp), m.BOp, m.Allocs, strings.Join(extra, ", "))
	}
}

func (r *report) goals(w func(string, ...any)) {
	rw, rws := r.ratio("wrk")
	rv, rvs := r.ratio("vegeta")
	rh, rhs := r.ratio("hey")
	w("| 1 | surge ≥ 0.7× wrk, ≥ 3× vegeta, ≥ 2× hey (req per client CPU-s) | %.2f× wrk, %.2f× vegeta, %.2f× hey (medians of the per-round ratios of %d rounds, tools' order balanced across rounds; per round: wrk %s; vegeta %s; hey %s) | %s |\n",
		rw, rv, rh, len(r.Rounds), floats(rws), floats(rvs), floats(rhs), r.verdict(len(r.Rounds) > 0 && rw >= 0.7 && rv >= 3 && rh >= 2))

	pacingOK, lateOK := len(r.Pacing) > 0, len(r.Pacing) > 0
	var parts, late []string
	for _, p := range r.Pacing {
		ok := len(p.Windows) > 0 && p.Within(0.001) == len(p.Windows) && p.Dropped == 0
		pacingOK = pacingOK && ok
		parts = append(parts, fmt.Sprintf("%d/s: %d of %d windows within 0.1%% (worst %.3f%%), deficit %d, dropped %d", p.Rate, p.Within(0.001), len(p.Windows), 100*p.Worst(), p.Deficit, p.Dropped))
		switch x := p.InProcess; {
		case p.ClusterLateP99 >= 0:
			lateOK = lateOK && p.ClusterLateP99 <= 1000
			late = append(late, fmt.Sprintf("%d/s %d µs (summary)", p.Rate, p.ClusterLateP99))
		case x != nil:
			p99 := x.Metrics["late-p99-µs"]
			lateOK = lateOK && p99 <= 1000
			late = append(late, fmt.Sprintf("%d/s %.0f µs", p.Rate, p99))
		default:
			lateOK = false
		}
	}
	lateTxt := "not measured"
	if len(late) > 0 {
		lateTxt = strings.Join(late, ", ")
	}
	w("| 2 | pacing 1k/10k/50k/s: each 1-s window within 0.1%%; send lateness p99 ≤ 1 ms | %s; send lateness p99 (the agents' recorder; from the run summary when it reports `scenarios.<name>.send_lateness_us`, else from the in-process run of the executor): %s | %s (windows), %s (lateness) |\n",
		strings.Join(parts, "; "), lateTxt, r.verdict(pacingOK), r.verdict(lateOK))

	f := r.Fidelity
	off := float64(f.SurgeP50 - f.HoldSurge.P50)
	w("| 3 | 10 ms target at 1k/s: surge p50 within 0.3 ms of the target-side delay; surge p99 ≤ vegeta p99 | p50 %d µs, %.0f µs above the target's held p50 (%d µs); p99 %d µs vs vegeta %d µs | %s |\n",
		f.SurgeP50, off, f.HoldSurge.P50, f.SurgeP99, f.VegetaP99, r.verdict(math.Abs(off) <= 300 && f.SurgeP99 <= f.VegetaP99))

	r.goal4(w)
	r.goal5(w)

	h := r.Hold
	if h.Conns > 0 {
		w("| 6 | ≤ 16 KiB RSS per idle keep-alive connection or idle VU; 3 agents × 15,000 connections for 60 s | %d connections on 3 agents for %s: opened %d, peak open %d, established at the end %d; **%.1f KiB RSS per idle keep-alive connection + its idle VU** (agents' RSS growth ÷ connections); with a request in flight on each (one agent, %d VUs waiting for a 60-s answer): %.1f KiB | %s (per connection), %s (held) |\n",
			h.Conns, h.Hold, h.Opened, h.PeakOpen, h.EstablishedAtEnd, h.PerConnKiB(), r.Idle.Conns, r.Idle.PerConnKiB(), r.verdict(h.PerConnKiB() <= 16), r.verdict(h.OK()))
	} else {
		w("| 6 | ≤ 16 KiB RSS per idle connection/VU; 3 agents × 15,000 connections for 60 s | %.1f KiB per VU + connection with a request in flight (%d held by one agent); held connections: not run (BENCH_HOLD_CONNS=0) | %s (per connection), — (held) |\n",
			r.Idle.PerConnKiB(), r.Idle.Conns, r.verdict(r.Idle.PerConnKiB() <= 16))
	}
	r.goal7(w)
}

// orders names the tools' order in each round.
func (r *report) orders() string {
	parts := make([]string, len(r.Rounds))
	for round, rr := range r.Rounds {
		names := make([]string, 0, len(rr))
		for _, i := range roundOrder(round, len(rr)) {
			names = append(names, rr[i].Tool)
		}
		parts[round] = fmt.Sprintf("round %d %s", round+1, strings.Join(names, ", "))
	}
	return strings.Join(parts, "; ")
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

// goal4 is recording overhead (the micro-benchmarks, plus the stream's
// CPU per snapshot from fleet -wire) and the snapshot stream's bytes per
// agent with the agents' compression, over a real gRPC connection.
func (r *report) goal4(w func(string, ...any)) {
	var parts, verdicts []string
	stream, haveStream := wireRow{}, false
	if r.Wire != nil {
		stream, haveStream = r.Wire.WireRow(agentsCompression)
	}
	rec, enc := r.Micro["BenchmarkRecord"], r.Micro["BenchmarkSnapshotEncode"]
	if rec.NsOp > 0 && enc.NsOp > 0 {
		// Each request records latency and service time; one snapshot a second.
		frac := (2*rec.NsOp*50_000 + enc.NsOp) / 1e9
		txt := fmt.Sprintf("recording %.2f%% of a core (micro-benchmarks: 2 × %.1f ns record × 50k/s + %.0f µs to encode the second's snapshot", 100*frac, rec.NsOp, enc.NsOp/1000)
		if haveStream {
			frac += stream.CPUPerSnapshotUS / 1e6
			txt += fmt.Sprintf("; + %.0f µs per snapshot on the stream, compression to decompression, both ends (fleet -wire): %.2f%%", stream.CPUPerSnapshotUS, 100*frac)
		}
		parts = append(parts, txt+")")
		verdicts = append(verdicts, r.verdict(frac <= 0.01)+" (recording)")
	} else {
		parts = append(parts, "recording: not measured (no micro-benchmarks given)")
		verdicts = append(verdicts, "— (recording)")
	}
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
	v := "—"
	switch {
	case r.Smoke:
		v = r.verdict(ok)
	case judged && r.SoakFresh:
		v = verdict(ok)
	case judged:
		v = verdict(ok) + " (that soak's)"
	}
	w("| 7 | %s | %s: %s | %s |\n", goal, soakLabel(r.Soak, r.SoakFresh), txt, v)
}

// controllerSection is what scripts/fleet printed for goals 4, 5 and 7.
func (r *report) controllerSection(w func(string, ...any)) {
	if r.Wire == nil && r.Fleet == nil && r.Soak == nil {
		return
	}
	w("\n## 4, 5, 7. Controller side (`scripts/fleet`)\n\n")
	w("As `scripts/fleet` printed it (`go run ./scripts/fleet -h`): real processes on loopback; the fleet's agents are simulated (Hello, snapshots with seq, heartbeats over real AgentGateway streams, zstd as agents send it).\n\n")
	for _, f := range []*fleetOut{r.Wire, r.Fleet} {
		if f != nil {
			w("%s\n", demote(f.Markdown))
		}
	}
	if r.Soak != nil {
		if !r.SoakFresh {
			w("The soak below is not from this run: it is %s (`BENCH_SOAK=10m make bench` or `make bench-soak` runs a new one).\n\n", soakLabel(r.Soak, false))
		}
		w("%s\n", demote(r.Soak.Run.Markdown))
	}
}
