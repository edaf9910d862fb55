package main

import (
	"github.com/spf13/cobra"

	"github.com/surgeload/surge/plan"
)

// baseURLFlag adds --base-url, defaulting to $SURGE_BASE_URL: the base that
// completes a plan's URLs written as paths, over the plan's own base_url.
func baseURLFlag(cmd *cobra.Command, e env, p *string) {
	cmd.Flags().StringVar(p, "base-url", e.getenv(plan.BaseURLEnv),
		"`URL` that completes the plan's request URLs written as paths, over its base_url (env "+plan.BaseURLEnv+")")
}

// checkBaseURLFlag reports a bad --base-url (or $SURGE_BASE_URL) as a usage
// error.
func checkBaseURLFlag(s string) error {
	if s == "" {
		return nil
	}
	if err := plan.CheckBaseURL(s); err != nil {
		return usageErrorf("--base-url %q (or %s): %v", s, plan.BaseURLEnv, err)
	}
	return nil
}
