package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/surgeload/surge/plan"
)

type validateOptions struct {
	file    string
	baseURL string // --base-url
}

func newValidateCmd(e env) *cobra.Command {
	var o validateOptions
	cmd := &cobra.Command{
		Use:   "validate PLAN.yaml",
		Short: "Check a plan without running it",
		Long: `Validate checks a plan as surge run does, without a controller: every
problem is reported at once, each as file:line:col: path: message. Data files
are read relative to the plan; --base-url completes URLs written as paths, as
it does for surge run.`,
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			o.file = args[0]
			return runValidate(o, e.stdout, e.stderr)
		},
	}
	baseURLFlag(cmd, e, &o.baseURL)
	return cmd
}

// runValidate is `surge validate`.
func runValidate(o validateOptions, stdout, stderr io.Writer) error {
	if err := checkBaseURLFlag(o.baseURL); err != nil {
		return err
	}
	src, err := os.ReadFile(o.file)
	if err != nil {
		return fmt.Errorf("read plan: %w", err)
	}
	p, _, err := plan.ParseFile(o.file, src, plan.Options{BaseDir: filepath.Dir(o.file), BaseURL: o.baseURL})
	if err != nil {
		return reportPlanErrors(stderr, err)
	}
	n := len(p.Scenarios)
	scenarios := "scenarios"
	if n == 1 {
		scenarios = "scenario"
	}
	_, err = fmt.Fprintf(stdout, "%s: ok (%d %s, total duration %s)\n", o.file, n, scenarios, p.TotalDuration())
	return err
}
