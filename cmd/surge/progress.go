package main

import (
	"bytes"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
)

// progressPrinter shows a run's live progress: on a terminal one compact
// block redrawn in place, otherwise plain lines per update.
type progressPrinter struct {
	w     io.Writer
	tty   bool
	lines int // lines of the block on screen (tty)
	n     int // updates printed
}

func newProgressPrinter(w io.Writer, tty bool) *progressPrinter {
	return &progressPrinter{w: w, tty: tty}
}

func (pp *progressPrinter) printed() bool { return pp.n > 0 }

func (pp *progressPrinter) print(p *surgev1.Progress) {
	pp.n++
	if !pp.tty {
		for _, l := range progressLines(p) {
			fmt.Fprintln(pp.w, l)
		}
		return
	}
	var buf bytes.Buffer
	if pp.lines > 0 {
		fmt.Fprintf(&buf, "\x1b[%dA", pp.lines) // cursor up to the block's first line
	}
	block := progressBlock(p)
	for _, l := range block {
		buf.WriteString("\r\x1b[2K") // clear the line
		buf.WriteString(l)
		buf.WriteByte('\n')
	}
	// A shorter block than last time leaves old lines below: clear them.
	for i := len(block); i < pp.lines; i++ {
		buf.WriteString("\r\x1b[2K\n")
	}
	if extra := pp.lines - len(block); extra > 0 {
		fmt.Fprintf(&buf, "\x1b[%dA", extra)
	}
	pp.lines = len(block)
	_, _ = pp.w.Write(buf.Bytes())
}

func elapsed(p *surgev1.Progress) string {
	return fmt.Sprintf("%.1fs/%.1fs", float64(p.GetElapsedMs())/1000, float64(p.GetTotalMs())/1000)
}

func msStr(us int64) string { return fmt.Sprintf("%.2fms", float64(us)/1000) }

// progressLines is one update as plain lines, for logs and pipes: one
// line for the interval (the whole run, then each region compactly), then
// thresholds and saturation flags when there are any.
func progressLines(p *surgev1.Progress) []string {
	prefix := fmt.Sprintf("[%s %s]", elapsed(p), p.GetStatus())
	a := p.GetAll()
	line := fmt.Sprintf("%s agents=%d rps=%.1f", prefix, a.GetAgents(), a.GetAchievedRps())
	if a.GetVusMax() > 0 {
		line += fmt.Sprintf(" vus=%d/%d", a.GetVus(), a.GetVusMax())
	}
	if a.GetTargetRps() > 0 {
		line += fmt.Sprintf(" arrivals=%.1f/%.1f", a.GetArrivalRps(), a.GetTargetRps())
	}
	line += fmt.Sprintf(" p50=%s p95=%s p99=%s requests=%d errors=%d conns=%d",
		msStr(a.GetP50Us()), msStr(a.GetP95Us()), msStr(a.GetP99Us()), a.GetRequests(), a.GetFailures(), a.GetConnsOpen())
	if a.GetWsOpen() > 0 {
		line += fmt.Sprintf(" ws=%d", a.GetWsOpen())
	}
	if a.GetSendLatenessP99Us() > 0 {
		line += " send_lateness_p99=" + msStr(a.GetSendLatenessP99Us())
	}
	if len(p.GetRegions()) > 1 {
		for _, r := range p.GetRegions() {
			line += fmt.Sprintf(" | %s rps=%.1f p95=%s errors=%d", r.GetRegion(), r.GetAchievedRps(), msStr(r.GetP95Us()), r.GetFailures())
		}
	}
	out := []string{line}
	if m := monitorStates(p.GetMonitors()); m != "" {
		out = append(out, prefix+" monitors "+m)
	}
	if th := thresholdStates(p.GetThresholds()); th != "" {
		out = append(out, prefix+" thresholds "+th)
	}
	for _, f := range p.GetSaturation() {
		out = append(out, prefix+" "+saturationLine(f))
	}
	return out
}

// saturationLine names a flagged interval's agent, region and reasons.
func saturationLine(f *surgev1.SaturationFlag) string {
	return fmt.Sprintf("saturated: agent %s (%s) interval %d: %s", f.GetAgentId(), f.GetRegion(), f.GetInterval(), strings.Join(f.GetReasons(), "; "))
}

// ttyWidth is the terminal width the block fits: longer lines are cut, so
// none wraps and every line the block rewrites is one screen line.
const ttyWidth = 80

// progressBlock is one update as a compact table, for a terminal.
func progressBlock(p *surgev1.Progress) []string {
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "%s  %s  %s\n", p.GetRunId(), p.GetStatus(), elapsed(p))
	tw := tabwriter.NewWriter(&buf, 0, 0, 1, ' ', tabwriter.AlignRight)
	rows := append([]*surgev1.RegionProgress{p.GetAll()}, p.GetRegions()...)
	// VU, arrival, WebSocket and send-lateness columns only when the run
	// has them.
	open, vus := p.GetAll().GetTargetRps() > 0, p.GetAll().GetVusMax() > 0
	ws, late := p.GetAll().GetWsOpen() > 0, p.GetAll().GetSendLatenessP99Us() > 0
	fmt.Fprint(tw, "REGION\tAG\tRPS\t")
	if vus {
		fmt.Fprint(tw, "VUS/MAX\t")
	}
	if open {
		fmt.Fprint(tw, "ARR/TARGET\t")
	}
	fmt.Fprint(tw, "P50ms\tP95ms\tP99ms\tREQS\tERRS\tCONNS\t")
	if ws {
		fmt.Fprint(tw, "WS\t")
	}
	if late {
		fmt.Fprint(tw, "LATE99ms\t")
	}
	fmt.Fprint(tw, "\n")
	for i, r := range rows {
		if r == nil {
			continue
		}
		name := r.GetRegion()
		if i == 0 {
			name = "all"
		}
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t", name, r.GetAgents(), r.GetAchievedRps())
		if vus {
			fmt.Fprintf(tw, "%d/%d\t", r.GetVus(), r.GetVusMax())
		}
		if open {
			fmt.Fprintf(tw, "%.0f/%.0f\t", r.GetArrivalRps(), r.GetTargetRps())
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t", ms2(r.GetP50Us()), ms2(r.GetP95Us()), ms2(r.GetP99Us()),
			r.GetRequests(), r.GetFailures(), r.GetConnsOpen())
		if ws {
			fmt.Fprintf(tw, "%d\t", r.GetWsOpen())
		}
		if late {
			fmt.Fprintf(tw, "%s\t", ms2(r.GetSendLatenessP99Us()))
		}
		fmt.Fprint(tw, "\n")
	}
	_ = tw.Flush()
	if m := monitorStates(p.GetMonitors()); m != "" {
		fmt.Fprintf(&buf, "monitors %s\n", m)
	}
	if th := thresholdStates(p.GetThresholds()); th != "" {
		fmt.Fprintf(&buf, "thresholds %s\n", th)
	}
	for _, f := range p.GetSaturation() {
		fmt.Fprintln(&buf, saturationLine(f))
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	for i, l := range lines {
		lines[i] = cut(l, ttyWidth)
	}
	return lines
}

// ms2 formats microseconds as milliseconds, two decimals, no unit.
func ms2(us int64) string { return fmt.Sprintf("%.2f", float64(us)/1000) }

// cut shortens s to at most n runes, marking the cut with "…".
func cut(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// monitorStates is the monitors' latest values, by name.
func monitorStates(m map[string]float64) string {
	parts := make([]string, 0, len(m))
	for _, name := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s=%.4g", name, m[name]))
	}
	return strings.Join(parts, " ")
}

func thresholdStates(ts []*surgev1.ThresholdResult) string {
	parts := make([]string, 0, len(ts))
	for _, t := range ts {
		mark := "✓"
		if !t.GetOk() {
			mark = "✗"
		}
		parts = append(parts, fmt.Sprintf("%s %s %s", mark, t.GetMetric(), t.GetExpr()))
	}
	return strings.Join(parts, "  ")
}
