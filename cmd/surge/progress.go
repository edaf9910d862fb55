package main

import (
	"bytes"
	"fmt"
	"io"
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

// progressLines is one update as plain lines, for logs and pipes.
func progressLines(p *surgev1.Progress) []string {
	prefix := fmt.Sprintf("[%s %s]", elapsed(p), p.GetStatus())
	rows := append([]*surgev1.RegionProgress{p.GetAll()}, p.GetRegions()...)
	var out []string
	for i, r := range rows {
		if r == nil {
			continue
		}
		name := r.GetRegion()
		if i == 0 {
			name = "all"
		}
		line := fmt.Sprintf("%s %-10s agents=%d rps=%.1f arrivals=%.1f/%.1f p50=%s p95=%s p99=%s requests=%d errors=%d conns=%d",
			prefix, name, r.GetAgents(), r.GetAchievedRps(), r.GetArrivalRps(), r.GetTargetRps(),
			msStr(r.GetP50Us()), msStr(r.GetP95Us()), msStr(r.GetP99Us()), r.GetRequests(), r.GetFailures(), r.GetConnsOpen())
		if r.GetWsOpen() > 0 {
			line += fmt.Sprintf(" ws=%d", r.GetWsOpen())
		}
		if r.GetSendLatenessP99Us() > 0 {
			line += " send_lateness_p99=" + msStr(r.GetSendLatenessP99Us())
		}
		out = append(out, line)
	}
	if th := thresholdStates(p.GetThresholds()); th != "" {
		out = append(out, prefix+" thresholds "+th)
	}
	return out
}

// progressBlock is one update as a compact table, for a terminal.
func progressBlock(p *surgev1.Progress) []string {
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "%s  %s  %s\n", p.GetRunId(), p.GetStatus(), elapsed(p))
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', tabwriter.AlignRight)
	rows := append([]*surgev1.RegionProgress{p.GetAll()}, p.GetRegions()...)
	// WebSocket and send-lateness columns only when the run has them.
	ws, late := p.GetAll().GetWsOpen() > 0, p.GetAll().GetSendLatenessP99Us() > 0
	fmt.Fprint(tw, "REGION\tAGENTS\tRPS\tARRIVALS\tTARGET\tP50\tP95\tP99\tREQUESTS\tERRORS\tCONNS\t")
	if ws {
		fmt.Fprint(tw, "WS\t")
	}
	if late {
		fmt.Fprint(tw, "SEND LATE P99\t")
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
		fmt.Fprintf(tw, "%s\t%d\t%.1f\t%.1f\t%.1f\t%s\t%s\t%s\t%d\t%d\t%d\t", name, r.GetAgents(), r.GetAchievedRps(),
			r.GetArrivalRps(), r.GetTargetRps(), msStr(r.GetP50Us()), msStr(r.GetP95Us()), msStr(r.GetP99Us()), r.GetRequests(), r.GetFailures(),
			r.GetConnsOpen())
		if ws {
			fmt.Fprintf(tw, "%d\t", r.GetWsOpen())
		}
		if late {
			fmt.Fprintf(tw, "%s\t", msStr(r.GetSendLatenessP99Us()))
		}
		fmt.Fprint(tw, "\n")
	}
	_ = tw.Flush()
	if th := thresholdStates(p.GetThresholds()); th != "" {
		fmt.Fprintf(&buf, "thresholds %s\n", th)
	}
	return strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
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
