package main

import (
	"context"
	"fmt"
	"math"
	"time"
)

// recordingFuncs name the agent's recording path, as goal 4 counts it:
// the recorder, the histograms it records into and encodes its snapshots
// from, and the zstd compressor of the snapshot stream. A test checks the
// recorder's names against the agent's code.
var recordingFuncs = []string{
	"github.com/surgeload/surge/agent/executor.(*Recorder).",
	"github.com/surgeload/surge/agent/executor.(*ScenarioRecorder).",
	"github.com/surgeload/surge/hist.",
	"github.com/HdrHistogram/hdrhistogram-go.",
	"github.com/klauspost/compress/zstd.",
}

// profileSlack is how much longer than a pacing run's arrivals the agent
// is profiled: the harness's wait for an idle agent, the run's start
// delay and its graceful stop. Idle time adds no samples.
const profileSlack = 7 * time.Second

// minRecordingSamples is the fewest profile samples (10 ms of CPU each)
// a recording share is judged on.
const minRecordingSamples = 100

// recordingResult is the agent's recording path in one pacing run: its
// share of the agent's CPU profile, times the agent's CPU over the run
// (/proc), per request.
type recordingResult struct {
	Rate     int
	Duration time.Duration // the run's arrivals
	Requests int64
	AgentCPU float64 // seconds, over the run
	Profile  cpuProfile
}

func newRecordingResult(profile []byte, rate int, d time.Duration, requests int64, agentCPU float64) (recordingResult, error) {
	p, err := parseCPUProfile(profile, recordingFuncs)
	if err != nil {
		return recordingResult{}, err
	}
	return recordingResult{Rate: rate, Duration: d, Requests: requests, AgentCPU: agentCPU, Profile: p}, nil
}

// Achieved is the requests sent per second of the run.
func (r recordingResult) Achieved() float64 {
	if r.Duration <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Duration.Seconds()
}

// CPU is the recording path's CPU seconds over the run.
func (r recordingResult) CPU() float64 { return r.Profile.Share() * r.AgentCPU }

// NSPerRequest is the recording path's CPU per request sent.
func (r recordingResult) NSPerRequest() float64 {
	if r.Requests <= 0 {
		return 0
	}
	return r.CPU() * 1e9 / float64(r.Requests)
}

// CoreAt is the part of a core the recording path takes at rate requests
// per second.
func (r recordingResult) CoreAt(rate float64) float64 { return r.NSPerRequest() * rate / 1e9 }

// Judged reports whether the run was at the goal's 50k/s with enough
// samples to judge the share on.
func (r recordingResult) Judged() bool {
	return r.Rate >= 50_000 && r.Profile.Samples >= minRecordingSamples
}

// agentProfiling is a CPU profile of the agent being taken.
type agentProfiling struct {
	done chan struct{}
	b    []byte
	err  error
}

// profileAgent starts a CPU profile of the bench agent for d (its
// /debug/pprof/profile); wait returns it. The caller waits for it.
func (e *env) profileAgent(ctx context.Context, d time.Duration) *agentProfiling {
	p := &agentProfiling{done: make(chan struct{})}
	url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", e.agentPprof, int(math.Ceil(d.Seconds())))
	go func() { // ends with the profile, or ctx
		defer close(p.done)
		p.b, p.err = httpGetWithin(ctx, url, d+30*time.Second)
	}()
	return p
}

func (p *agentProfiling) wait() ([]byte, error) {
	<-p.done
	return p.b, p.err
}
