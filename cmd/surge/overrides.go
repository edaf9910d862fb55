package main

import (
	"strconv"

	"github.com/spf13/cobra"

	"github.com/surgeload/surge/plan"
)

// overrideFlags are surge run's plan overrides, as k6 takes them.
type overrideFlags struct {
	set, env []string
	vus      int
	duration string
	rps      int64
}

func addOverrideFlags(cmd *cobra.Command, o *overrideFlags) {
	f := cmd.Flags()
	f.StringArrayVar(&o.set, "set", nil, "set a plan key, `PATH=VALUE` (VALUE is YAML; repeatable), e.g. scenarios.api.rate=500")
	f.StringArrayVarP(&o.env, "env", "e", nil, "a value for {{env \"NAME\"}}, `NAME=VALUE` (repeatable; before the agents' environment)")
	f.IntVar(&o.vus, "vus", 0, "the VUs of a one-scenario plan (its `N` vus)")
	f.StringVar(&o.duration, "duration", "", "the duration of a one-scenario plan (`DURATION`, e.g. 30m)")
	f.Int64Var(&o.rps, "rps", 0, "cap the whole run at `N` requests per second, split exactly across the agents (the plan's rps)")
}

// overrides reads the flags into plan overrides for the plan in src:
// --vus, --duration and --rps, then each --set, then each -e, in order.
func (o *overrideFlags) overrides(src []byte) ([]plan.Override, error) {
	var out []plan.Override
	if o.vus != 0 {
		ov, err := plan.ScenarioOverride(src, "vus", strconv.Itoa(o.vus), "--vus "+strconv.Itoa(o.vus))
		if err != nil {
			return nil, withExitCode(exitUsage, err)
		}
		out = append(out, ov)
	}
	if o.duration != "" {
		ov, err := plan.ScenarioOverride(src, "duration", o.duration, "--duration "+o.duration)
		if err != nil {
			return nil, withExitCode(exitUsage, err)
		}
		out = append(out, ov)
	}
	if o.rps != 0 {
		n := strconv.FormatInt(o.rps, 10)
		out = append(out, plan.Override{Path: "rps", Value: n, Flag: "--rps " + n})
	}
	for _, s := range o.set {
		ov, err := plan.ParseOverride(s)
		if err != nil {
			return nil, withExitCode(exitUsage, err)
		}
		out = append(out, ov)
	}
	for _, s := range o.env {
		ov, err := plan.EnvOverride(s)
		if err != nil {
			return nil, withExitCode(exitUsage, err)
		}
		out = append(out, ov)
	}
	return out, nil
}
