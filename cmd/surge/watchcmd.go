package main

import (
	"context"
	"io"

	"github.com/spf13/cobra"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
)

func newWatchCmd(e env) *cobra.Command {
	o := runOptions{tty: e.tty}
	cmd := &cobra.Command{
		Use:   "watch RUN_ID",
		Short: "Follow a run's live progress, then print its summary",
		Long: `Watch re-attaches to a run: its live progress, as surge run shows it, then
the summary when it ends (at once for a run that has ended). Use it after the
surge run that started the run was killed, or from another terminal.
Interrupting watch leaves the run running. Exit status as for surge run.

A run is its id, or latest (the newest run), or latest:KEY=VALUE[,KEY=VALUE]
(the newest run with those tags, e.g. latest:environment=staging).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runWatch(cmd.Context(), args[0], o, e.stdout, e.stderr)
		},
	}
	o.auth = controllerFlag(cmd, e, &o.controller)
	cmd.Flags().StringVar(&o.jsonFile, "json", "", "also write the JSON summary to `FILE`")
	junitFlag(cmd, &o.junitFile)
	cmd.Flags().BoolVarP(&o.quiet, "quiet", "q", false, "no live progress (the summary is still printed)")
	return cmd
}

// runWatch is `surge watch`.
func runWatch(ctx context.Context, runID string, o runOptions, stdout, stderr io.Writer) error {
	conn, err := dialAuth(o.controller, o.auth)
	if err != nil {
		return err
	}
	defer conn.Close()
	c := runsClient{surgev1.NewRunsClient(conn), o.controller}
	if err := resolveRuns(ctx, c, &runID); err != nil {
		return err
	}
	return follow(ctx, c, runID, o, false, stdout, stderr)
}
