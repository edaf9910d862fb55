package main

import (
	"strings"
	"testing"
	"time"
)

// A report that measured nothing claims nothing: every goal's verdict is
// "—", none pass or miss.
func TestNothingMeasuredNoVerdict(t *testing.T) {
	r := &report{}
	for n := 1; n <= 7; n++ {
		row := goalRow(t, r, n)
		if strings.Contains(row, "**pass**") || strings.Contains(row, "**miss**") {
			t.Errorf("goal %d judged without a measurement: %s", n, row)
		}
	}
	// Pacing runs that counted no window at the target: no windows verdict.
	r.Pacing = []pacingResult{{Rate: 1000, ClusterLateP99: 300}}
	mustContain(t, goalRow(t, r, 2), "| — (windows), **pass** (lateness) |")
}

// Goal 2's windows verdict is the target's count, not surge's progress.
func TestGoal2FromTargetCounts(t *testing.T) {
	exact := windows{{1000, 1000}, {1000, 1000}}
	short := windows{{1000, 1000}, {990, 1000}}
	r := &report{Pacing: []pacingResult{{Rate: 1000, Windows: short, Progress: exact, ClusterLateP99: 300}}}
	mustContain(t, goalRow(t, r, 2), "1 of 2 windows within 0.1% (worst 1.000%; surge's own progress: 2 of 2, worst 0.000%)", "| **miss** (windows)")
	r.Pacing[0].Windows, r.Pacing[0].Progress = exact, short
	mustContain(t, goalRow(t, r, 2), "2 of 2 windows within 0.1%", "| **pass** (windows)")
	r.Pacing[0].Dropped = 1
	mustContain(t, goalRow(t, r, 2), "| **miss** (windows)")
}

// Goal 4's recording figure is the profiled share of the agent's CPU
// over a 50k/s run, per request; below 50k/s or on few samples it has
// no verdict.
func TestGoal4FromAgentProfile(t *testing.T) {
	rec := recordingResult{Rate: 50_000, Duration: 25 * time.Second, Requests: 1_000_000, AgentCPU: 20,
		Profile: cpuProfile{Samples: 2000, Matched: 50, TotalNS: 20e9, MatchedNS: 0.5e9,
			MatchedByPrefix: map[string]int64{recordingFuncs[0]: 0.3e9, recordingFuncs[2]: 0.4e9}}}
	r := &report{Pacing: []pacingResult{{Rate: 50_000, Recording: &rec}}}
	// 2.5% of 20 CPU-s = 0.5 s for 1e6 requests = 500 ns each: 2.5% of a
	// core at 50k/s.
	mustContain(t, goalRow(t, r, 4), "recording 2.50% of a core at 50k/s (500 ns per request × 50k/s; 2.00% of a core at the 40000 req/s the run sent)", "2.50% of its CPU in the recording path (50 of 2000 samples; executor.(*Recorder) 1.50%",
		"hist 2.00%", "0.50 of the agent's 20.00 CPU-s over the run for 1000000 requests", "**miss** (recording)")
	rec.Profile.MatchedNS = 0.1e9 // 100 ns per request: 0.5% of a core
	mustContain(t, goalRow(t, r, 4), "recording 0.50% of a core", "**pass** (recording)")
	rec.Rate = 10_000
	mustContain(t, goalRow(t, r, 4), "no verdict: a run below 50k/s", "— (recording)")
	rec.Rate, rec.Profile.Samples = 50_000, minRecordingSamples-1
	mustContain(t, goalRow(t, r, 4), "— (recording)")
}
