package report

import (
	"cmp"
	"fmt"
	"strings"
	"time"

	"github.com/surgeload/surge/controller/judge"
	surgev1 "github.com/surgeload/surge/gen/surge/v1"
)

// JudgeMinValues is the fewest latency values a side needs for a group to
// be judged, JudgeMinIntervals the fewest intervals for a series; what is
// thinner is left out (and not scored), and noted.
const (
	JudgeMinValues    = 20
	JudgeMinIntervals = 8
)

// defaultRules are the judge's metrics without a config: each group's
// latency by o's fields, and the whole run's error rate (no increase) and
// rate (no decrease) per interval.
func defaultRules(o *surgev1.JudgeOptions) []*surgev1.JudgeRule {
	return []*surgev1.JudgeRule{
		{Metric: judge.LatencyMetric, Direction: o.GetDirection(), AllowedIncrease: o.GetAllowedIncrease(), AllowedDecrease: o.GetAllowedDecrease()},
		{Metric: "error_rate", Direction: "increase"},
		{Metric: "rps", Direction: "decrease"},
	}
}

// Judge judges run b against run a with the statistical judge, metric by
// metric of o's rules: latency_ms on each group's latency distribution
// (all, and the breakdown's groups present on both sides), merged exactly
// from the stored histograms; the series on the whole run's values per
// interval (the last, cut short by the run's end, left out).
func Judge(a, b *RunData, by string, o *surgev1.JudgeOptions) (*surgev1.Judgement, error) {
	opts, err := CompareOptions{By: by}.normalized()
	if err != nil {
		return nil, err
	}
	conf := cmp.Or(o.GetConfidence(), judge.DefaultConfidence)
	out := &surgev1.Judgement{Confidence: conf, PassScore: cmp.Or(o.GetPassScore(), 95), MarginalScore: cmp.Or(o.GetMarginalScore(), 75)}
	rules := o.GetRules()
	if len(rules) == 0 {
		rules = defaultRules(o)
	}
	var verdicts []judge.Verdict
	add := func(group, metric string, x, y judge.Dist, r *surgev1.JudgeRule, scale float64) {
		v := judge.Classify(x, y, judge.Rule{Confidence: conf, AllowedIncrease: r.GetAllowedIncrease(),
			AllowedDecrease: r.GetAllowedDecrease(), Direction: r.GetDirection()})
		verdicts = append(verdicts, v)
		out.Metrics = append(out.Metrics, &surgev1.JudgedMetric{
			Group: group, Metric: metric, Class: v.Class, U: v.Test.U, P: v.Test.P, Critical: r.GetCritical(),
			Shift: v.Test.Shift / scale, Lo: v.Test.Lo / scale, Hi: v.Test.Hi / scale, AMedian: v.Median / scale,
			Relative: v.Relative, Reason: v.Reason, ACount: x.Count(), BCount: y.Count(),
		})
		if r.GetCritical() && v.Class != judge.Pass {
			out.Notes = append(out.Notes, fmt.Sprintf("critical metric %s of %s is %s: the judgement fails", metric, group, v.Class))
		}
	}
	for _, r := range rules {
		if r.GetMetric() != judge.LatencyMetric {
			x, y := seriesValues(a, r.GetMetric()), seriesValues(b, r.GetMetric())
			if len(x) < JudgeMinIntervals || len(y) < JudgeMinIntervals {
				out.Notes = append(out.Notes, fmt.Sprintf("%s not judged: %d and %d intervals, at least %d a side", r.GetMetric(), len(x), len(y), JudgeMinIntervals))
				continue
			}
			add("all", r.GetMetric(), judge.FromValues(x), judge.FromValues(y), r, 1)
			continue
		}
		ga, err := runGroups(a, opts.By)
		if err != nil {
			return nil, err
		}
		gb, err := runGroups(b, opts.By)
		if err != nil {
			return nil, err
		}
		for _, name := range sortedGroups(ga, gb) {
			x, y := ga[name], gb[name]
			if x == nil || y == nil || x.latency.TotalCount() < JudgeMinValues || y.latency.TotalCount() < JudgeMinValues {
				out.Notes = append(out.Notes, fmt.Sprintf("%s of %s not judged: fewer than %d values on a side", judge.LatencyMetric, name, JudgeMinValues))
				continue
			}
			add(name, judge.LatencyMetric, judge.FromHist(x.latency), judge.FromHist(y.latency), r, 1000)
		}
	}
	out.Score = judge.Score(verdicts)
	out.Outcome = judge.Outcome(out.Score, out.PassScore, out.MarginalScore)
	for _, m := range out.Metrics {
		if m.GetCritical() && m.GetClass() != judge.Pass {
			out.Outcome = "fail"
		}
	}
	return out, nil
}

// seriesValues are run r's values of a per-interval metric: rps,
// error_rate, pN_ms of every region merged, or a monitor's; the last
// interval (cut short by the run's end) and intervals without requests
// are left out.
func seriesValues(r *RunData, metric string) []float64 {
	if name, ok := strings.CutPrefix(metric, "monitor:"); ok {
		for _, m := range r.Monitors {
			if m.GetName() == name {
				var out []float64
				for _, v := range m.GetValues() {
					out = append(out, v.GetValue())
				}
				return out
			}
		}
		return nil
	}
	ws, err := windows(r, cmp.Or(r.Interval, time.Second))
	if err != nil || len(ws) < 2 {
		return nil
	}
	var out []float64
	for _, w := range ws[:len(ws)-1] {
		v := valuesOf(w.g, w.secs)
		if x, ok := v.values[metric]; ok && v.requests > 0 {
			out = append(out, x)
		}
	}
	return out
}

// JudgementJSON is the judge's verdict in the comparison's JSON.
type JudgementJSON struct {
	Score         float64            `json:"score"`
	Outcome       string             `json:"outcome"`
	Confidence    float64            `json:"confidence"`
	PassScore     float64            `json:"pass_score"`
	MarginalScore float64            `json:"marginal_score"`
	Metrics       []JudgedMetricJSON `json:"metrics"`
	Notes         []string           `json:"notes"`
}

// JudgedMetricJSON is one judged metric: its class, the test's U and
// p-value, the Hodges–Lehmann shift (ms) with its interval, and why.
type JudgedMetricJSON struct {
	Group    string  `json:"group"`
	Metric   string  `json:"metric"`
	Class    string  `json:"class"`
	U        float64 `json:"u"`
	P        float64 `json:"p"`
	Shift    float64 `json:"shift"`
	Low      float64 `json:"low"`
	High     float64 `json:"high"`
	AMedian  float64 `json:"a_median"`
	Relative float64 `json:"relative"`
	ACount   int64   `json:"a_count"`
	BCount   int64   `json:"b_count"`
	Reason   string  `json:"reason"`
	Critical bool    `json:"critical"`
}

func judgementJSON(j *surgev1.Judgement) *JudgementJSON {
	if j == nil {
		return nil
	}
	out := &JudgementJSON{Score: j.GetScore(), Outcome: j.GetOutcome(), Confidence: j.GetConfidence(),
		PassScore: j.GetPassScore(), MarginalScore: j.GetMarginalScore(), Metrics: []JudgedMetricJSON{},
		Notes: append([]string{}, j.GetNotes()...)}
	for _, m := range j.GetMetrics() {
		out.Metrics = append(out.Metrics, JudgedMetricJSON{Group: m.GetGroup(), Metric: m.GetMetric(), Class: m.GetClass(),
			U: m.GetU(), P: m.GetP(), Shift: m.GetShift(), Low: m.GetLo(), High: m.GetHi(), AMedian: m.GetAMedian(),
			Relative: m.GetRelative(), ACount: m.GetACount(), BCount: m.GetBCount(), Reason: m.GetReason(), Critical: m.GetCritical()})
	}
	return out
}

// judgementText writes the judge's verdict: per metric its class and
// shift, then the score.
func judgementText(p *printer, j *surgev1.Judgement) {
	if j == nil {
		return
	}
	p.printf("\njudge (Mann–Whitney U, confidence %.0f%%)\n", 100*j.GetConfidence())
	tw := p.table()
	tw.printf("GROUP\tMETRIC\tCLASS\tA MEDIAN\tSHIFT\tINTERVAL\tP\tWHY\n")
	for _, m := range j.GetMetrics() {
		class := m.GetClass()
		if m.GetCritical() {
			class += " (critical)"
		}
		tw.printf("%s\t%s\t%s\t%.4g\t%+.4g\t[%+.4g, %+.4g]\t%.3g\t%s\n", m.GetGroup(), m.GetMetric(), class,
			m.GetAMedian(), m.GetShift(), m.GetLo(), m.GetHi(), m.GetP(), m.GetReason())
	}
	tw.flush()
	for _, n := range j.GetNotes() {
		p.printf("judge note: %s\n", n)
	}
	p.printf("judge score %.0f: %s (pass at %.0f, marginal at %.0f)\n", j.GetScore(), strings.ToUpper(j.GetOutcome()), j.GetPassScore(), j.GetMarginalScore())
}
