package report

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
)

// ComparisonJSON is the stable JSON form of a comparison: add fields, never
// rename them.
type ComparisonJSON struct {
	RunA      string       `json:"run_a"`
	RunB      string       `json:"run_b"`
	Tolerance float64      `json:"tolerance"`
	By        string       `json:"by"`
	Aligned   bool         `json:"aligned"`
	WindowMs  int64        `json:"window_ms"`
	Diverged  int64        `json:"diverged"`
	Within    bool         `json:"within_tolerance"`
	Metrics   []MetricJSON `json:"metrics"`
	Notes     []string     `json:"notes"`
	// Judgement is the judge's verdict (compare --judge); absent without.
	Judgement *JudgementJSON `json:"judgement,omitempty"`
}

// MetricJSON is one compared metric. RelDiff is null when it has no finite
// value (one side is 0 or missing).
type MetricJSON struct {
	Window        bool     `json:"window"`
	WindowStartMs int64    `json:"window_start_ms,omitempty"`
	WindowEndMs   int64    `json:"window_end_ms,omitempty"`
	Group         string   `json:"group"`
	Metric        string   `json:"metric"`
	A             *float64 `json:"a"`
	B             *float64 `json:"b"`
	RelDiff       *float64 `json:"rel_diff"`
	Diverged      bool     `json:"diverged"`
	ARequests     int64    `json:"a_requests"`
	BRequests     int64    `json:"b_requests"`
	Thin          bool     `json:"thin,omitempty"`
	// ARange and BRange are a percentile's or a rate's 95% confidence
	// intervals, [low, high]; high is null when unbounded. Noise: the
	// difference is within them (see docs/compare.md).
	ARange []*float64 `json:"a_range,omitempty"`
	BRange []*float64 `json:"b_range,omitempty"`
	Noise  bool       `json:"noise,omitempty"`
}

func finitePtr(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}

// CompareJSON encodes a comparison as indented JSON ending in a newline.
func CompareJSON(c *surgev1.CompareResponse) ([]byte, error) {
	out := ComparisonJSON{
		RunA: c.GetRunA(), RunB: c.GetRunB(), Tolerance: c.GetTolerance(), By: c.GetBy(),
		Aligned: c.GetAligned(), WindowMs: c.GetWindowMs(), Diverged: c.GetDiverged(), Within: c.GetDiverged() == 0,
		Metrics: []MetricJSON{}, Notes: append([]string{}, c.GetNotes()...), Judgement: judgementJSON(c.GetJudgement()),
	}
	for _, m := range c.GetMetrics() {
		mj := MetricJSON{
			Window: m.GetWindow(), WindowStartMs: m.GetWindowStartMs(), WindowEndMs: m.GetWindowEndMs(),
			Group: m.GetGroup(), Metric: m.GetMetric(), RelDiff: finitePtr(m.GetRelDiff()), Diverged: m.GetDiverged(),
			ARequests: m.GetARequests(), BRequests: m.GetBRequests(), Thin: m.GetThin(), Noise: m.GetNoise(),
		}
		if _, pct := beyond(m.GetMetric()); (pct || isRate(m.GetMetric())) && m.GetAPresent() && m.GetBPresent() {
			mj.ARange = []*float64{finitePtr(m.GetALow()), finitePtr(m.GetAHigh())}
			mj.BRange = []*float64{finitePtr(m.GetBLow()), finitePtr(m.GetBHigh())}
		}
		if m.GetAPresent() {
			mj.A = finitePtr(m.GetA())
		}
		if m.GetBPresent() {
			mj.B = finitePtr(m.GetB())
		}
		out.Metrics = append(out.Metrics, mj)
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode comparison: %w", err)
	}
	return append(b, '\n'), nil
}

// CompareText writes a comparison side by side: one table for the whole
// run (every group), one for the aligned windows, then the verdict.
func CompareText(w io.Writer, c *surgev1.CompareResponse) error {
	p := &printer{w: w}
	p.printf("A %s  vs  B %s  tolerance %.0f%%  by %s\n\n", c.GetRunA(), c.GetRunB(), c.GetTolerance()*100, c.GetBy())
	var whole, windows []*surgev1.MetricDiff
	for _, m := range c.GetMetrics() {
		if m.GetWindow() {
			windows = append(windows, m)
		} else {
			whole = append(whole, m)
		}
	}
	tw := p.table()
	tw.printf("GROUP\tMETRIC\tA\tB\tDIFF\t\n")
	for _, m := range whole {
		compareRow(tw, m.GetGroup(), m, c.GetTolerance())
	}
	tw.flush()
	if len(windows) > 0 {
		p.printf("\naligned by elapsed time (window %s)\n", millis(c.GetWindowMs()))
		tw = p.table()
		tw.printf("WINDOW\tMETRIC\tA\tB\tDIFF\t\n")
		for _, m := range windows {
			compareRow(tw, fmt.Sprintf("%s-%s", millis(m.GetWindowStartMs()), millis(m.GetWindowEndMs())), m, c.GetTolerance())
		}
		tw.flush()
	}
	for _, n := range c.GetNotes() {
		p.printf("note: %s\n", n)
	}
	judgementText(p, c.GetJudgement())
	if c.GetDiverged() == 0 {
		p.printf("\nwithin tolerance: no metric differs by more than %.0f%%\n", c.GetTolerance()*100)
	} else {
		p.printf("\nDIVERGED: %d metrics differ by more than %.0f%%\n", c.GetDiverged(), c.GetTolerance()*100)
	}
	return p.err
}

// compareRow prints one metric; a percentile past the tolerance that does
// not diverge says why.
func compareRow(tw *table, label string, m *surgev1.MetricDiff, tol float64) {
	mark := ""
	switch {
	case m.GetDiverged():
		mark = "✗ diverged"
	case m.GetThin():
		mark = "(too few values)"
	case m.GetNoise() && math.Abs(m.GetRelDiff()) > tol:
		mark = "(within noise)"
	}
	tw.printf("%s\t%s\t%s\t%s\t%s\t%s\n", label, m.GetMetric(),
		metricValue(m.GetMetric(), m.GetA(), m.GetAPresent()), metricValue(m.GetMetric(), m.GetB(), m.GetBPresent()),
		percent(m.GetRelDiff()), mark)
}

func metricValue(metric string, v float64, present bool) string {
	if !present {
		return "(none)"
	}
	metric = strings.TrimSuffix(metric, ExpectedSuffix)
	switch {
	case strings.HasPrefix(metric, "error_rate"):
		return fmt.Sprintf("%.3f%%", v*100)
	case strings.HasSuffix(metric, "_ms"):
		return fmt.Sprintf("%.2fms", v)
	case strings.HasPrefix(metric, "monitor_"):
		return fmt.Sprintf("%.4g", v)
	}
	return fmt.Sprintf("%.2f", v)
}

func percent(v float64) string {
	switch {
	case math.IsNaN(v):
		return "-"
	case math.IsInf(v, 1):
		return "+inf"
	case math.IsInf(v, -1):
		return "-inf"
	}
	return fmt.Sprintf("%+.1f%%", v*100)
}

func millis(ms int64) string { return micros(ms * 1000) }
