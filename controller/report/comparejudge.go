package report

import (
	"cmp"
	"strings"

	"github.com/surgeload/surge/controller/judge"
	surgev1 "github.com/surgeload/surge/gen/surge/v1"
)

// JudgeMinValues is the fewest latency values a side needs for a group to
// be judged; a thinner group is left out (and not scored).
const JudgeMinValues = 20

// Judge judges run b against run a with the statistical judge: each
// group's latency distribution (all, and the breakdown's groups present
// on both sides), merged exactly from the stored histograms.
func Judge(a, b *RunData, by string, o *surgev1.JudgeOptions) (*surgev1.Judgement, error) {
	opts, err := CompareOptions{By: by}.normalized()
	if err != nil {
		return nil, err
	}
	ga, err := runGroups(a, opts.By)
	if err != nil {
		return nil, err
	}
	gb, err := runGroups(b, opts.By)
	if err != nil {
		return nil, err
	}
	rule := judge.Rule{Confidence: cmp.Or(o.GetConfidence(), judge.DefaultConfidence), AllowedIncrease: o.GetAllowedIncrease(),
		AllowedDecrease: o.GetAllowedDecrease(), Direction: o.GetDirection()}
	out := &surgev1.Judgement{Confidence: rule.Confidence, PassScore: cmp.Or(o.GetPassScore(), 95), MarginalScore: cmp.Or(o.GetMarginalScore(), 75)}
	var verdicts []judge.Verdict
	for _, name := range sortedGroups(ga, gb) {
		x, y := ga[name], gb[name]
		if x == nil || y == nil || x.latency.TotalCount() < JudgeMinValues || y.latency.TotalCount() < JudgeMinValues {
			continue
		}
		v := judge.Classify(judge.FromHist(x.latency), judge.FromHist(y.latency), rule)
		verdicts = append(verdicts, v)
		out.Metrics = append(out.Metrics, &surgev1.JudgedMetric{
			Group: name, Metric: "latency_ms", Class: v.Class, U: v.Test.U, P: v.Test.P,
			Shift: v.Test.Shift / 1000, Lo: v.Test.Lo / 1000, Hi: v.Test.Hi / 1000, AMedian: v.Median / 1000,
			Relative: v.Relative, Reason: v.Reason, ACount: x.latency.TotalCount(), BCount: y.latency.TotalCount(),
		})
	}
	out.Score = judge.Score(verdicts)
	out.Outcome = judge.Outcome(out.Score, out.PassScore, out.MarginalScore)
	return out, nil
}

// JudgementJSON is the judge's verdict in the comparison's JSON.
type JudgementJSON struct {
	Score         float64            `json:"score"`
	Outcome       string             `json:"outcome"`
	Confidence    float64            `json:"confidence"`
	PassScore     float64            `json:"pass_score"`
	MarginalScore float64            `json:"marginal_score"`
	Metrics       []JudgedMetricJSON `json:"metrics"`
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
}

func judgementJSON(j *surgev1.Judgement) *JudgementJSON {
	if j == nil {
		return nil
	}
	out := &JudgementJSON{Score: j.GetScore(), Outcome: j.GetOutcome(), Confidence: j.GetConfidence(),
		PassScore: j.GetPassScore(), MarginalScore: j.GetMarginalScore(), Metrics: []JudgedMetricJSON{}}
	for _, m := range j.GetMetrics() {
		out.Metrics = append(out.Metrics, JudgedMetricJSON{Group: m.GetGroup(), Metric: m.GetMetric(), Class: m.GetClass(),
			U: m.GetU(), P: m.GetP(), Shift: m.GetShift(), Low: m.GetLo(), High: m.GetHi(), AMedian: m.GetAMedian(),
			Relative: m.GetRelative(), ACount: m.GetACount(), BCount: m.GetBCount(), Reason: m.GetReason()})
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
		tw.printf("%s\t%s\t%s\t%.2fms\t%+.3fms\t[%+.3f, %+.3f]\t%.3g\t%s\n", m.GetGroup(), m.GetMetric(), m.GetClass(),
			m.GetAMedian(), m.GetShift(), m.GetLo(), m.GetHi(), m.GetP(), m.GetReason())
	}
	tw.flush()
	p.printf("judge score %.0f: %s (pass at %.0f, marginal at %.0f)\n", j.GetScore(), strings.ToUpper(j.GetOutcome()), j.GetPassScore(), j.GetMarginalScore())
}
