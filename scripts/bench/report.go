package main

import (
	"fmt"
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

// ns formats a ns/op figure: tenths below 100 ns, whole numbers above.
func ns(v float64) string {
	if v < 100 {
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.0f", v)
}

func (r *report) markdown() string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	w("# Benchmarks\n\n")
	w("Written by `make bench` (scripts/bench.sh → scripts/bench) on %s UTC.\n\n", r.When.Format("2006-01-02 15:04"))
	w("- Machine: %s. Shared and noisy: compare the ratios measured in this run, not absolute numbers across runs.\n", r.Machine)
	w("- Placement: %s.\n", r.Pin)
	w("- Target: nginx on 127.0.0.1, 2 workers, keep-alive, `return 200 \"ok\"`, access log off (the pacing runs use a second port that logs each request's time).\n")
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

	r.pacingSection(w)

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
		w("`go test -bench Do -benchmem ./agent/httpclient/` (own HTTP/1.1 client vs the net/http client it replaced, against a child-process server; seq: one connection, par: 16) and `agent/executor` `BenchmarkIteration` (one whole open-model iteration: VU state, request, checks, recorder; vs the bare `Session.Do`) against the nginx target, pinned to the client core: cpu-ns/op is the client's CPU per request. `BenchmarkExtraction`: the same iteration taking nothing, a JSON path or a regex from a 2 KiB JSON reply of an in-process server (none must allocate nothing; the others keep the body and the value). `BenchmarkWaiter`: how late the arrival loop's waiter (a timerfd in the netpoller) and the runtime's timer wake for waits of 1 ms and 100 µs, with no requests: the floor of send lateness on this machine.\n\n")
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

// pacingSection is goal 2's table: per rate, the target's count of each
// window's requests, surge's own progress, and the in-process run.
func (r *report) pacingSection(w func(string, ...any)) {
	w("\n## 2. Open-model pacing against nginx\n\n")
	w("Cluster: a `surge run` of constant-arrival-rate (pre-allocated VUs min(rate, 256), max VUs min(rate, 2048)) against the same nginx on a port that logs each request's time (`$msec`, millisecond resolution; buffered). Windows: the requests the target received in each second from its first request of the run, vs the rate (first and last windows dropped: they straddle start and end); at 50k/s one millisecond holds 50 requests, 0.1%% of a window. Beside it, surge's own progress: the arrivals each interval started vs planned. ")
	w("In-process: the same scenario run by `agent/executor` (`BenchmarkOpenModel`: BuildScenarios, RunScenarios, a recorder Swap at every second, as the agent does) against the unlogged nginx port, pinned to the client core; the send lateness is the recorder's lateness histogram, the one agents send per scenario.\n\n")
	w("| rate/s | target: requests | windows | within 0.1%% | worst window | surge's progress: within 0.1%% | worst | deficit | dropped | surge: requests | agent CPU s | in-process: lateness p50 / p99 / max µs | dropped | worst window |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|\n")
	for _, p := range r.Pacing {
		ip, ipd, ipw := "not run", "—", "—"
		if x := p.InProcess; x != nil {
			ip = fmt.Sprintf("%.0f / %.0f / %.0f", x.Metrics["late-p50-µs"], x.Metrics["late-p99-µs"], x.Metrics["late-max-µs"])
			ipd = fmt.Sprintf("%.0f", x.Metrics["dropped"])
			ipw = fmt.Sprintf("%.3f%%", x.Metrics["worst-window-%"])
		}
		w("| %d | %d | %d | %d | %.3f%% | %d of %d | %.3f%% | %d | %d | %d | %.2f | %s | %s | %s |\n", p.Rate, p.TargetRequests, len(p.Windows), p.Windows.Within(0.001), 100*p.Windows.Worst(),
			p.Progress.Within(0.001), len(p.Progress), 100*p.Progress.Worst(), p.Deficit, p.Dropped, p.Requests, p.CPU, ip, ipd, ipw)
	}
	if x := r.recording(); x != nil {
		w("\nThe %d/s run profiled the agent (`/debug/pprof/profile`, from before the run to after it; idle time adds no samples): %d samples, %d of them in the recording path (functions named %s).\n",
			x.Rate, x.Profile.Samples, x.Profile.Matched, "`"+strings.Join(recordingFuncs, "`, `")+"`")
	}
}
