package main

import (
	"cmp"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/surgeload/surge/controller/judge"
	surgev1 "github.com/surgeload/surge/gen/surge/v1"
)

// exitMarginal is compare --judge's exit status for a marginal score.
const exitMarginal = 3

// judgeFlags are compare's --judge flags.
type judgeFlags struct {
	on                   bool
	confidence           float64
	increase, decrease   float64
	direction            string
	passScore, marginSco float64
	config               string
}

func addJudgeFlags(cmd *cobra.Command, o *judgeFlags) {
	f := cmd.Flags()
	f.BoolVar(&o.on, "judge", false, "judge B against A by Mann–Whitney U on each group's exact latency distribution (Kayenta's method); its score sets the exit status")
	f.Float64Var(&o.confidence, "judge-confidence", 0.98, "the judge's confidence level")
	f.Float64Var(&o.increase, "allowed-increase", 0, "relative latency increase the judge allows (`FRACTION` of A's median, 0.05: 5%)")
	f.Float64Var(&o.decrease, "allowed-decrease", 0, "relative latency decrease the judge allows (`FRACTION`)")
	f.StringVar(&o.direction, "judge-direction", "increase", "which change fails: increase, decrease or either")
	f.Float64Var(&o.passScore, "judge-pass", 95, "score at or above which the judge passes")
	f.Float64Var(&o.marginSco, "judge-marginal", 75, "score at or above which (below --judge-pass) the judge is marginal")
	f.StringVar(&o.config, "judge-config", "", "judge by the rules of a YAML `FILE` (confidence, pass, marginal, metrics: direction, allowed_increase, allowed_decrease, critical); implies --judge")
}

// options checks the flags; nil when --judge is off.
func (o judgeFlags) options() (*surgev1.JudgeOptions, error) {
	if !o.on && o.config == "" {
		return nil, nil
	}
	switch {
	case !(o.confidence > 0 && o.confidence < 1):
		return nil, usageErrorf("--judge-confidence %v: want a level between 0 and 1, e.g. 0.98", o.confidence)
	case !(o.increase >= 0 && o.increase <= 1) || !(o.decrease >= 0 && o.decrease <= 1):
		return nil, usageErrorf("--allowed-increase %v, --allowed-decrease %v: want fractions from 0 to 1 (0.05 allows 5%%)", o.increase, o.decrease)
	case o.direction != "increase" && o.direction != "decrease" && o.direction != "either":
		return nil, usageErrorf("--judge-direction %q: want increase, decrease or either", o.direction)
	case !(o.marginSco >= 0 && o.marginSco <= o.passScore && o.passScore <= 100):
		return nil, usageErrorf("--judge-marginal %v, --judge-pass %v: want 0 <= marginal <= pass <= 100", o.marginSco, o.passScore)
	}
	jo := &surgev1.JudgeOptions{Confidence: o.confidence, AllowedIncrease: o.increase, AllowedDecrease: o.decrease,
		Direction: o.direction, PassScore: o.passScore, MarginalScore: o.marginSco}
	if o.config == "" {
		return jo, nil
	}
	src, err := os.ReadFile(o.config)
	if err != nil {
		return nil, withExitCode(exitUsage, fmt.Errorf("--judge-config: %w", err))
	}
	c, err := judge.ParseConfig(o.config, src)
	if err != nil {
		return nil, withExitCode(exitUsage, err)
	}
	jo.Confidence = cmp.Or(c.Confidence, jo.Confidence)
	jo.PassScore, jo.MarginalScore = cmp.Or(c.Pass, jo.PassScore), cmp.Or(c.Marginal, jo.MarginalScore)
	for _, name := range c.Order {
		r := c.Metrics[name]
		jo.Rules = append(jo.Rules, &surgev1.JudgeRule{Metric: name, Direction: r.Direction,
			AllowedIncrease: r.AllowedIncrease, AllowedDecrease: r.AllowedDecrease, Critical: r.Critical})
	}
	return jo, nil
}

// judgeExit maps the judge's outcome to the exit status: 0 pass, 1 fail,
// 3 marginal.
func judgeExit(j *surgev1.Judgement) error {
	switch j.GetOutcome() {
	case "pass":
		return nil
	case "marginal":
		return &exitError{code: exitMarginal, reported: true, err: fmt.Errorf("judge: score %.0f: marginal", j.GetScore())}
	}
	return &exitError{code: exitFailure, reported: true, err: fmt.Errorf("judge: score %.0f: fail", j.GetScore())}
}
