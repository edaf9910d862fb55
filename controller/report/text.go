package report

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
)

// Text writes the human summary of a run: a header, the whole run and each
// region, the scenarios, the agents, the thresholds and the notes.
func Text(w io.Writer, s *surgev1.RunSummary) error {
	sum := FromProto(s)
	p := &printer{w: w}

	headerText(p, sum)
	if sum.Error != "" {
		p.printf("error: %s\n", sum.Error)
	}

	p.printf("\n")
	tw := p.table()
	tw.printf("REGION\tAGENTS\tREQUESTS\tFAILURES\tRPS\tP50 ms\tP90 ms\tP95 ms\tP99 ms\tP99.9 ms\tMAX ms\n")
	var agents int64
	for _, r := range sum.Regions {
		agents += r.Agents
	}
	regionRow(tw, "all", agents, sum.Stats)
	for _, name := range sortedKeys(sum.Regions) {
		r := sum.Regions[name]
		regionRow(tw, name, r.Agents, r.Stats)
	}
	tw.flush()
	if l := sum.ExpectedLatencyUS; l != nil && sum.Failures > 0 {
		p.printf("expected responses only (1xx-3xx, %d): P50 %s  P90 %s  P95 %s  P99 %s  MAX %s ms\n",
			l.Count, ms(l.P50), ms(l.P90), ms(l.P95), ms(l.P99), ms(l.Max))
	}
	if len(sum.Errors) > 0 || sum.DroppedIterations > 0 || sum.Deficit > 0 || sum.Retries > 0 {
		p.printf("errors: %s  dropped iterations: %d  deficit: %d", errorList(sum.Errors), sum.DroppedIterations, sum.Deficit)
		if sum.Retries > 0 {
			p.printf("  retries: %d", sum.Retries)
		}
		p.printf("\n")
	}

	if len(sum.Scenarios) > 0 {
		p.printf("\n")
		tw = p.table()
		tw.printf("SCENARIO\tVUS MAX\tREQUESTS\tFAILURES\tRPS\tP50 ms\tP95 ms\tP99 ms\tMAX ms\tDROPPED\tDEFICIT\tERRORS\n")
		for _, name := range sortedKeys(sum.Scenarios) {
			st := sum.Scenarios[name]
			l := st.LatencyUS
			tw.printf("%s\t%d\t%d\t%d\t%.1f\t%s\t%s\t%s\t%s\t%d\t%d\t%s\n", name, st.VUsMax, st.Requests, st.Failures, st.RPS,
				ms(l.P50), ms(l.P95), ms(l.P99), ms(l.Max), st.DroppedIterations, st.Deficit, errorList(st.Errors))
		}
		tw.flush()
	}

	detailText(p, sum)
	checksText(p, sum)
	extractText(p, sum)
	agentsText(p, sum.Agents)
	monitorsText(p, sum.Monitors)
	thresholdsText(p, sum.Thresholds)
	saturationText(p, sum.Saturation)

	if len(sum.Notes) > 0 {
		p.printf("\nnotes\n")
		for _, n := range sum.Notes {
			p.printf("  - %s\n", n)
		}
	}
	return p.err
}

func regionRow(tw *table, name string, agents int64, st Stats) {
	l := st.LatencyUS
	tw.printf("%s\t%d\t%d\t%d\t%.1f\t%s\t%s\t%s\t%s\t%s\t%s\n", name, agents, st.Requests, st.Failures, st.RPS,
		ms(l.P50), ms(l.P90), ms(l.P95), ms(l.P99), ms(l.P999), ms(l.Max))
}

// ms formats microseconds as milliseconds with two decimals.
func ms(us int64) string { return fmt.Sprintf("%.2f", float64(us)/1000) }

// micros formats microseconds as a short duration ("1.234ms").
func micros(us int64) string { return (time.Duration(us) * time.Microsecond).String() }

func seconds(s float64) string {
	return (time.Duration(s * float64(time.Second))).Round(time.Millisecond).String()
}

func errorList(m map[string]int64) string {
	if len(m) == 0 {
		return "-"
	}
	parts := make([]string, 0, len(m))
	for _, k := range sortedKeys(m) {
		parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
	}
	return strings.Join(parts, " ")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// printer remembers the first write error so Text can check it once.
type printer struct {
	w   io.Writer
	err error
}

func (p *printer) printf(format string, args ...any) {
	if p.err != nil {
		return
	}
	_, p.err = fmt.Fprintf(p.w, format, args...)
}

func (p *printer) table() *table {
	return &table{p: p, tw: tabwriter.NewWriter(p.w, 0, 0, 2, ' ', 0)}
}

// table is a tabwriter whose errors go to its printer.
type table struct {
	p  *printer
	tw *tabwriter.Writer
}

func (t *table) printf(format string, args ...any) {
	if t.p.err != nil {
		return
	}
	_, t.p.err = fmt.Fprintf(t.tw, format, args...)
}

func (t *table) flush() {
	if t.p.err != nil {
		return
	}
	t.p.err = t.tw.Flush()
}

// agentsText writes each agent with its requests and clock offset.
func agentsText(p *printer, list []Agent) {
	if len(list) == 0 {
		return
	}
	p.printf("\n")
	tw := p.table()
	tw.printf("AGENT\tREGION\tREQUESTS\tCLOCK OFFSET\n")
	for _, a := range list {
		tw.printf("%s\t%s\t%d\t%s\n", a.ID, a.Region, a.Requests, micros(a.ClockOffsetUS))
	}
	tw.flush()
}

// thresholdsText writes each threshold with its verdict and value.
func thresholdsText(p *printer, list []Threshold) {
	if len(list) == 0 {
		return
	}
	p.printf("\nthresholds\n")
	tw := p.table()
	for _, t := range list {
		mark := "✓"
		if !t.OK {
			mark = "✗"
		}
		value := "(no data)"
		if t.Value != nil {
			value = fmt.Sprintf("(value %.6g)", *t.Value)
		}
		tw.printf("  %s %s\t%s\t%s\n", mark, t.Metric, t.Expr, value)
	}
	tw.flush()
}

// headerText writes the run's id, plan, tags, status, verdict and times.
func headerText(p *printer, sum *Summary) {
	verdict := strings.ToUpper(sum.Verdict)
	if verdict == "" {
		verdict = "-"
	}
	p.printf("run %s  plan %s", orDash(sum.RunID), orDash(sum.Plan))
	for _, k := range sortedKeys(sum.Tags) {
		p.printf("  %s=%s", k, sum.Tags[k])
	}
	p.printf("\n")
	p.printf("status %s  verdict %s  duration %s  start spread %s\n",
		orDash(sum.Status), verdict, seconds(sum.DurationS), micros(sum.StartSpreadUS))
	switch {
	case sum.StartedAt != "":
		p.printf("started %s", sum.StartedAt)
		if sum.EndedAt != "" {
			p.printf("  ended %s", sum.EndedAt)
		}
		p.printf("\n")
	case sum.EndedAt != "":
		p.printf("never started  ended %s\n", sum.EndedAt)
	}
}
