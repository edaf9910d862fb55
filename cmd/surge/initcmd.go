package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/surgeload/surge/examples/templates"
)

type initOptions struct {
	template string
	output   string
	baseURL  string
	force    bool
}

func newInitCmd(e env) *cobra.Command {
	var o initOptions
	cmd := &cobra.Command{
		Use:   "init --template NAME [-o FILE]",
		Short: "Write a starter plan for a failure mode: " + strings.Join(templates.Names(), ", "),
		Long: `init writes a starter plan. Each template opens with a comment naming the
failure it is meant to surface:

  spike            a sudden 10x burst: queueing, shedding, slow recovery
  soak, endurance  hours at normal load: memory/connection leaks, degradation
  pool-exhaustion  more concurrent clients than the server's pool: queueing, timeouts
  breakpoint       ramp until thresholds fail: the capacity limit and how it breaks
  multi-region     weighted traffic from three regions: per-region latency and errors

Their requests are paths completed by base_url, ` + templates.BaseURL + `
(surge target's default): --base-url writes another, and surge run --base-url
(or SURGE_BASE_URL) overrides it at run time.`,
		Args: cobra.NoArgs,
		RunE: func(_ *cobra.Command, _ []string) error {
			return runInit(o, e.stdout, e.stderr)
		},
	}
	cmd.Flags().StringVarP(&o.template, "template", "t", "", "template name (required): "+strings.Join(templates.Names(), ", ")+", endurance")
	cmd.Flags().StringVarP(&o.output, "output", "o", "", "write to `FILE` instead of stdout")
	cmd.Flags().StringVar(&o.baseURL, "base-url", "", "`URL` written as the plan's base_url (default "+templates.BaseURL+")")
	cmd.Flags().BoolVar(&o.force, "force", false, "overwrite FILE if it exists")
	return cmd
}

// runInit is `surge init`.
func runInit(o initOptions, stdout, stderr io.Writer) error {
	if o.template == "" {
		return usageErrorf("--template is required (one of: %s)", strings.Join(templates.Names(), ", "))
	}
	if err := checkBaseURLFlag(o.baseURL); err != nil {
		return err
	}
	src, err := templates.Get(o.template)
	if err != nil {
		return withExitCode(exitUsage, fmt.Errorf("init: %w", err))
	}
	if o.baseURL != "" {
		// Every template writes its base_url line as templates.BaseURL.
		src = bytes.Replace(src, []byte("base_url: "+templates.BaseURL), []byte("base_url: "+o.baseURL), 1)
	}
	if o.output == "" {
		_, err := stdout.Write(src)
		return err
	}
	flags := os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	if !o.force {
		flags |= os.O_EXCL
	}
	f, err := os.OpenFile(o.output, flags, 0o644)
	if err != nil {
		return fmt.Errorf("init: %w (--force overwrites)", err)
	}
	if _, err := f.Write(src); err != nil {
		_ = f.Close()
		return fmt.Errorf("init: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("init: %w", err)
	}
	_, err = fmt.Fprintf(stderr, "wrote %s (template %s); check it with: surge validate %s\n", o.output, o.template, o.output)
	return err
}
