package main

import (
	"fmt"
	"math"
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
	When        time.Time
	Machine     string
	Pin         string
	Conns       int
	Duration    time.Duration
	Peers       []throughput
	Pacing      []pacingResult
	Fidelity    fidelityResult
	Idle        idleResult
	Micro       map[string]micro
	MicroBefore map[string]micro
}

func (r *report) peer(name string) throughput {
	for _, p := range r.Peers {
		if p.Tool == name {
			return p
		}
	}
	return throughput{}
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

func (r *report) markdown() string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	w("# Benchmarks\n\n")
	w("Written by `make bench` (scripts/bench.sh → scripts/bench) on %s UTC.\n\n", r.When.Format("2006-01-02 15:04"))
	w("- Machine: %s. Shared and noisy: compare the ratios measured in this run, not absolute numbers across runs.\n", r.Machine)
	w("- Placement: %s.\n", r.Pin)
	w("- Target: nginx on 127.0.0.1, 2 workers, keep-alive, `return 200 \"ok\"`, access log off.\n")
	w("- Client CPU: getrusage of the tool's process (wrk, hey, `vegeta attack`); for surge, the agent process's utime+stime from /proc over the run (the controller and CLI run on the target's core and are not counted).\n\n")

	w("## Goals (issue 7)\n\n")
	w("| # | goal | measured | verdict |\n|---|---|---|---|\n")
	r.goals(w)

	w("\n## 1. Max throughput, %d connections, %s each\n\n", r.Conns, r.Duration)
	w("| tool | requests | req/s | client CPU s | req per client CPU-second | surge ÷ tool |\n|---|---:|---:|---:|---:|---:|\n")
	s := r.peer("surge")
	for _, p := range r.Peers {
		ratio := "—"
		if p.Tool != "surge" && p.PerCPU() > 0 {
			ratio = fmt.Sprintf("%.2f×", s.PerCPU()/p.PerCPU())
		}
		w("| %s | %d | %.0f | %.2f | %.0f | %s |\n", p.Tool, p.Requests, p.RPS(), p.CPU, p.PerCPU(), ratio)
	}
	w("\nsurge: one agent (constant-vus, %d VUs) and a controller as separate processes, `surge run` of the plan.\n", r.Conns)
	w("vegeta: `attack -rate=0 -workers=N -max-workers=N -connections=N`. hey: `-z D -c N`. wrk: `-t1 -c N -d D` (one thread: one client core).\n")

	w("\n## 2. Open-model pacing against nginx\n\n")
	w("Per 1-second window of the run's progress (first and last windows dropped: they straddle start and end): arrivals started vs planned.\n\n")
	w("| rate/s | windows | within 0.1%% | worst window error | deficit | dropped | requests | agent CPU s |\n|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, p := range r.Pacing {
		w("| %d | %d | %d | %.3f%% | %d | %d | %d | %.2f |\n", p.Rate, len(p.Windows), p.Within(0.001), 100*p.Worst(), p.Deficit, p.Dropped, p.Requests, p.CPU)
	}

	f := r.Fidelity
	w("\n## 3. Latency fidelity: `surge target --latency 10ms`, 1000/s, %s\n\n", r.Duration)
	w("| tool | p50 µs | p99 µs |\n|---|---:|---:|\n| surge | %d | %d |\n| vegeta | %d | %d |\n", f.SurgeP50, f.SurgeP99, f.VegetaP50, f.VegetaP99)
	w("\nsurge measures open-model latency from the intended send time; deficit in this run: %d.\n", f.SurgeDeficit)

	w("\n## 6. Memory per idle connection\n\n")
	w("%d VUs each wait on their own keep-alive connection to `surge target --latency 60s`; agent RSS peak minus RSS before: %.0f KiB, **%.1f KiB per connection + VU**.\n",
		r.Idle.Conns, r.Idle.DeltaKiB, r.Idle.PerConnKiB())

	if len(r.Micro) > 0 {
		w("\n## Hot paths (`go test -bench -benchmem ./hist/`)\n\n")
		if len(r.MicroBefore) > 0 {
			w("Before: the tree before the hist/ changes of issue 7 (ToProto via Export, four decode passes per merged histogram), run in the same `make bench`.\n\n")
			w("| benchmark | before ns/op | after ns/op | before B/op | after B/op | before allocs | after allocs | extra (after) |\n|---|---:|---:|---:|---:|---:|---:|---|\n")
		} else {
			w("| benchmark | ns/op | B/op | allocs/op | extra |\n|---|---:|---:|---:|---|\n")
		}
		names := make([]string, 0, len(r.Micro))
		for n := range r.Micro {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			m := r.Micro[n]
			extra := make([]string, 0, len(m.Metrics))
			for k, v := range m.Metrics {
				extra = append(extra, fmt.Sprintf("%.0f %s", v, k))
			}
			sort.Strings(extra)
			if len(r.MicroBefore) > 0 {
				bm, ok := r.MicroBefore[n]
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
	return b.String()
}

func (r *report) goals(w func(string, ...any)) {
	s, wrk, veg, hey := r.peer("surge"), r.peer("wrk"), r.peer("vegeta"), r.peer("hey")
	rw, rv, rh := s.PerCPU()/wrk.PerCPU(), s.PerCPU()/veg.PerCPU(), s.PerCPU()/hey.PerCPU()
	w("| 1 | surge ≥ 0.7× wrk, ≥ 3× vegeta, ≥ 2× hey (req per client CPU-s) | %.2f× wrk, %.2f× vegeta, %.2f× hey | %s |\n",
		rw, rv, rh, verdict(rw >= 0.7 && rv >= 3 && rh >= 2))

	pacingOK := len(r.Pacing) > 0
	var parts []string
	for _, p := range r.Pacing {
		ok := len(p.Windows) > 0 && p.Within(0.001) == len(p.Windows) && p.Dropped == 0
		pacingOK = pacingOK && ok
		parts = append(parts, fmt.Sprintf("%d/s: %d of %d windows within 0.1%% (worst %.3f%%), deficit %d", p.Rate, p.Within(0.001), len(p.Windows), 100*p.Worst(), p.Deficit))
	}
	w("| 2 | pacing 1k/10k/50k/s: each 1-s window within 0.1%%; send lateness p99 ≤ 1 ms | %s; lateness p99: not measured (agents send a lateness histogram per scenario, but neither progress nor the summary reports it) | %s (windows) |\n",
		strings.Join(parts, "; "), verdict(pacingOK))

	f := r.Fidelity
	p50off := math.Abs(float64(f.SurgeP50 - f.DelayUS))
	w("| 3 | 10 ms target at 1k/s: surge p50 within 0.3 ms of the delay; surge p99 ≤ vegeta p99 | p50 %d µs (%.0f µs off); p99 %d µs vs vegeta %d µs | %s |\n",
		f.SurgeP50, p50off, f.SurgeP99, f.VegetaP99, verdict(p50off <= 300 && f.SurgeP99 <= f.VegetaP99))

	rec, enc := r.Micro["BenchmarkRecord"], r.Micro["BenchmarkSnapshotEncode"]
	if rec.NsOp > 0 && enc.NsOp > 0 {
		// Each request records latency and service time; one snapshot a second.
		frac := (2*rec.NsOp*50_000 + enc.NsOp) / 1e9
		bytes := enc.Metrics["bytes/snapshot"]
		w("| 4 | recording ≤ 1%% of a core at 50k req/s; snapshots ≤ 20 KB/s per agent for 10 series | %.2f%% of a core (2 × %.1f ns record × 50k/s + %.0f µs per snapshot, from the micro-benchmarks); %.1f KB/s (10 series × 2 histograms of 1,000 values spread over 0.5–50 ms, uncompressed) | %s |\n",
			100*frac, rec.NsOp, enc.NsOp/1000, bytes/1000, verdict(frac <= 0.01 && bytes <= 20_000))
	} else {
		w("| 4 | recording overhead | not measured (no micro-benchmarks given) | — |\n")
	}

	dvm, fleet := r.Micro["BenchmarkDecodeValidateMerge"], r.Micro["BenchmarkFleetInterval"]
	if dvm.NsOp > 0 {
		merges := 1e9 / dvm.NsOp
		fleetTxt, fleetOK := "fleet: not measured", false
		if fleet.NsOp > 0 {
			fleetTxt = fmt.Sprintf("500 agents × 20 series: %.0f ms of merge per 1-s interval (%.0f%% of a core, merge only)", fleet.NsOp/1e6, fleet.NsOp/1e7)
			fleetOK = fleet.NsOp < 1e9
		}
		w("| 5 | ≥ 20,000 merges/s/core; 500 agents × 20 series under one core; emission lag p99 ≤ 500 ms | %.0f merges/s (10-series snapshot); %s; emission lag: not measured (needs a simulated fleet speaking AgentGateway) | %s (merges/s), %s (fleet merge cost) |\n",
			merges, fleetTxt, verdict(merges >= 20_000), verdict(fleetOK))
	}

	w("| 6 | ≤ 16 KiB RSS per idle connection/VU; 3 agents × 15,000 connections for 60 s | %.1f KiB per idle VU + connection (%d held); 45,000 connections: not measured (needs source addresses, issue 4, to pass 20,000 fds per process and the ephemeral-port limit of one loopback pair) | %s (per connection) |\n",
		r.Idle.PerConnKiB(), r.Idle.Conns, verdict(r.Idle.PerConnKiB() <= 16))
	w("| 7 | agent and controller RSS grow < 5%% after the first minute of a 10-minute run | not measured: a 10-minute soak does not fit a few-minute `make bench` | — |\n")
}
