package main

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
)

// closedProgress is a closed-model run (no planned arrivals) in three
// regions, with wide figures and one saturated agent.
func closedProgress(elapsedMs int64) *surgev1.Progress {
	p := progress(elapsedMs)
	p.All.TargetRps, p.All.ArrivalRps = 0, 0
	p.All.AchievedRps, p.All.Requests, p.All.ConnsOpen = 123456.7, 98765432, 10000
	p.All.Vus, p.All.VusMax = 1500, 2000
	p.Regions = append(p.Regions, &surgev1.RegionProgress{Region: "ap-southeast-2", Agents: 12, AchievedRps: 99999, Requests: 12345678,
		P50Us: 123_456_000, P95Us: 234_567_000, P99Us: 345_678_000, Failures: 1234567, ConnsOpen: 10000, WsOpen: 100000, SendLatenessP99Us: 1_000_000})
	for _, r := range p.Regions {
		r.TargetRps, r.ArrivalRps = 0, 0
	}
	p.Saturation = []*surgev1.SaturationFlag{{Interval: 4, AgentId: "a2", Region: "eu-west", Reasons: []string{"cpu 97% > 90%"}}}
	return p
}

func TestProgressPlainOneLinePerInterval(t *testing.T) {
	var buf bytes.Buffer
	pp := newProgressPrinter(&buf, false)
	p := closedProgress(1000)
	p.Thresholds = nil
	for range 3 {
		pp.print(p)
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	// Per update: the interval's line and the saturation flag's.
	if len(lines) != 6 {
		t.Fatalf("%d lines for 3 updates, want 6:\n%s", len(lines), buf.String())
	}
	for _, want := range []string{"agents=3 rps=123456.7 vus=1500/2000 p50=", "| eu-west rps=4.0", "| us-east rps=5.5", "| ap-southeast-2 rps=99999.0"} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("interval line lacks %q: %s", want, lines[0])
		}
	}
	if strings.Contains(buf.String(), "arrivals=") {
		t.Errorf("a closed-model run shows arrivals: %s", lines[0])
	}
	if want := "[1.0s/2.0s running] saturated: agent a2 (eu-west) interval 4: cpu 97% > 90%"; lines[1] != want {
		t.Errorf("flag line %q, want %q", lines[1], want)
	}
}

func TestProgressTTYFits80Columns(t *testing.T) {
	for _, p := range []*surgev1.Progress{progress(1000), closedProgress(1000)} {
		block := progressBlock(p)
		for _, l := range block {
			if n := utf8.RuneCountInString(l); n > ttyWidth {
				t.Errorf("line of %d columns, want at most %d: %q", n, ttyWidth, l)
			}
		}
		if p.GetAll().GetTargetRps() == 0 && strings.Contains(strings.Join(block, "\n"), "ARR") {
			t.Errorf("a closed-model run shows an arrivals column:\n%s", strings.Join(block, "\n"))
		}
	}
	block := strings.Join(progressBlock(closedProgress(1000)), "\n")
	if !strings.Contains(block, "VUS/MAX") || !strings.Contains(block, " 1500/2000 ") {
		t.Errorf("the block of a closed-model run lacks its VUs:\n%s", block)
	}
	if !strings.Contains(block, "saturated: agent a2 (eu-west) interval 4: cpu 97% > 90%") {
		t.Errorf("the block lacks the saturation flag:\n%s", block)
	}
	t.Logf("measured: widest block\n%s", block)
}

// TestProgressShowsMonitors: the monitors' latest values, sorted by name,
// in both forms.
func TestProgressShowsMonitors(t *testing.T) {
	p := progress(2000)
	p.Thresholds = nil
	p.Monitors = map[string]float64{"mem_bytes": 123456789, "cpu": 0.4132}
	want := "monitors cpu=0.4132 mem_bytes=1.235e+08"
	lines := progressLines(p)
	if len(lines) != 2 || !strings.HasSuffix(lines[1], "] "+want) {
		t.Errorf("plain lines %q, want a second line ending %q", lines, want)
	}
	if block := strings.Join(progressBlock(p), "\n"); !strings.Contains(block, "\n"+want) {
		t.Errorf("block lacks %q:\n%s", want, block)
	}
}
