package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/surgeload/surge/controller/report"
	surgev1 "github.com/surgeload/surge/gen/surge/v1"
	"github.com/surgeload/surge/plan"
)

// Watch retry backoff bounds, for when the stream breaks (controller restart).
const (
	watchBackoffMin = 100 * time.Millisecond
	watchBackoffMax = 5 * time.Second
)

// stopTimeout bounds the Stop sent when the user interrupts a run, and
// summaryTimeout the wait for the stopped run's summary after it.
const (
	stopTimeout    = 5 * time.Second
	summaryTimeout = 15 * time.Second
)

type runOptions struct {
	file       string
	controller string
	auth       *clientAuth // --tls-*, --token
	jsonFile   string
	junitFile  string   // --junit
	baseURL    string   // --base-url
	tags       []string // --tag KEY=VALUE
	over       overrideFlags
	quiet      bool
	tty        bool
}

func newRunCmd(e env) *cobra.Command {
	o := runOptions{tty: e.tty}
	cmd := &cobra.Command{
		Use:   "run PLAN.yaml",
		Short: "Run a plan on the cluster: live progress, then the summary",
		Long: `Run validates the plan locally, submits it to the controller, shows live
progress and prints the summary. Exit status: 0 when the run passed, 99 when
thresholds failed, 1 on any other error.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.file = args[0]
			return runRun(cmd.Context(), o, e.stdout, e.stderr)
		},
	}
	o.auth = controllerFlag(cmd, e, &o.controller)
	cmd.Flags().StringVar(&o.jsonFile, "json", "", "also write the JSON summary to `FILE`")
	junitFlag(cmd, &o.junitFile)
	cmd.Flags().BoolVarP(&o.quiet, "quiet", "q", false, "no live progress (the summary is still printed)")
	baseURLFlag(cmd, e, &o.baseURL)
	tagFlag(cmd, &o.tags, "tag the run `KEY=VALUE` (repeatable; over the plan's tags:), e.g. environment=staging")
	addOverrideFlags(cmd, &o.over)
	return cmd
}

// writeReport writes what encode makes to path, unless path is empty
// (its flag was not given); what names it in errors.
func writeReport(path, what string, encode func() ([]byte, error)) error {
	if path == "" {
		return nil
	}
	b, err := encode()
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", what, err)
	}
	return nil
}

// junitFlag adds --junit FILE: the verdict as a JUnit XML report for CI.
func junitFlag(cmd *cobra.Command, into *string) {
	cmd.Flags().StringVar(into, "junit", "", "also write the verdict as a JUnit XML report to `FILE` (the run's status and each threshold a test case)")
}

// runRun is `surge run`.
func runRun(ctx context.Context, o runOptions, stdout, stderr io.Writer) error {
	if err := checkBaseURLFlag(o.baseURL); err != nil {
		return err
	}
	src, err := os.ReadFile(o.file)
	if err != nil {
		return fmt.Errorf("read plan: %w", err)
	}
	overrides, err := o.over.overrides(src)
	if err != nil {
		return err
	}
	// Data files are read here, relative to the plan file, and shipped
	// inline: the controller cannot read them. So are --base-url and the
	// overrides.
	_, src, err = plan.ParseFile(o.file, src, plan.Options{BaseDir: filepath.Dir(o.file), BaseURL: o.baseURL, Overrides: overrides})
	if err != nil {
		return reportPlanErrors(stderr, err)
	}
	conn, err := dialAuth(o.controller, o.auth)
	if err != nil {
		return err
	}
	defer conn.Close()
	return submitAndWatch(ctx, runsClient{surgev1.NewRunsClient(conn), o.controller}, o.file, src, o, stdout, stderr)
}

// reportPlanErrors prints a plan's errors, one per line, and returns the
// exit error for them.
func reportPlanErrors(stderr io.Writer, err error) error {
	fmt.Fprintln(stderr, err)
	return &exitError{code: exitFailure, err: fmt.Errorf("invalid plan: %w", err), reported: true}
}

// runsClient is the Runs service of one controller, with its address for
// error messages.
type runsClient struct {
	surgev1.RunsClient
	addr string
}

// submitAndWatch submits a plan, shows live progress until the run's
// summary arrives, prints the summary and maps the verdict to an error with
// an exit code. `surge run` and `surge demo` share it.
func submitAndWatch(ctx context.Context, c runsClient, file string, src []byte, o runOptions, stdout, stderr io.Writer) error {
	tags, err := tagFlags(o.tags)
	if err != nil {
		return err
	}
	sctx, cancel := context.WithTimeout(ctx, rpcTimeout)
	resp, err := c.Submit(sctx, &surgev1.SubmitRequest{PlanYaml: src, FileName: file, Tags: tags})
	cancel()
	if err != nil {
		return rpcErr("submit", c.addr, err)
	}
	fmt.Fprintln(stdout, acceptedLine(resp))
	return follow(ctx, c, resp.GetRunId(), o, true, stdout, stderr)
}

// follow shows a run's live progress until its summary arrives, prints
// the summary and maps the verdict to an error with an exit code. On an
// interrupt, stopRun stops the run and prints its partial summary (`surge
// run`); otherwise follow detaches and leaves it running (`surge watch`).
func follow(ctx context.Context, c runsClient, runID string, o runOptions, stopRun bool, stdout, stderr io.Writer) error {
	pp := newProgressPrinter(stdout, o.tty)
	onProgress := pp.print
	if o.quiet {
		onProgress = func(*surgev1.Progress) {}
	}
	sum, err := watch(ctx, c, runID, onProgress, stderr)
	if err != nil {
		if ctx.Err() == nil {
			return err
		}
		if !stopRun {
			fmt.Fprintf(stderr, "surge: interrupted; run %s goes on: `surge watch %s` follows it again, `surge stop %s` stops it\n", runID, runID, runID)
			return &exitError{code: exitFailure, err: fmt.Errorf("watch %s: %w", runID, context.Cause(ctx)), reported: true}
		}
		if sum = stopInterrupted(ctx, c, runID, stderr); sum == nil {
			return &exitError{code: exitFailure, err: fmt.Errorf("run %s: %w", runID, context.Cause(ctx)), reported: true}
		}
	}
	if pp.printed() {
		fmt.Fprintln(stdout)
	}
	if err := report.Text(stdout, sum); err != nil {
		return fmt.Errorf("print summary: %w", err)
	}
	if err := writeReport(o.jsonFile, "json summary", func() ([]byte, error) { return report.JSON(sum) }); err != nil {
		return err
	}
	if err := writeReport(o.junitFile, "junit report", func() ([]byte, error) { return report.JUnit(sum) }); err != nil {
		return err
	}
	if ctx.Err() != nil {
		fmt.Fprintf(stderr, "surge: interrupted; run %s stopped: `surge report %s` shows this summary again\n", runID, runID)
	}
	return verdictError(sum)
}

func acceptedLine(r *surgev1.SubmitResponse) string {
	var regions []string
	for _, a := range r.GetAgents() {
		if !slices.Contains(regions, a.GetRegion()) {
			regions = append(regions, a.GetRegion())
		}
	}
	slices.Sort(regions)
	agents := "agents"
	if len(r.GetAgents()) == 1 {
		agents = "agent"
	}
	line := fmt.Sprintf("run %s accepted: %d %s", r.GetRunId(), len(r.GetAgents()), agents)
	if len(regions) > 0 {
		in := "regions"
		if len(regions) == 1 {
			in = "region"
		}
		line += fmt.Sprintf(" in %s %s", in, strings.Join(regions, ", "))
	}
	if r.GetPlanName() != "" || r.GetDurationMs() > 0 {
		line += fmt.Sprintf(" (plan %s, %s)", r.GetPlanName(), time.Duration(r.GetDurationMs())*time.Millisecond)
	}
	return line
}

// stopInterrupted stops a run whose watcher was interrupted (Ctrl-C) and
// waits, at most summaryTimeout, for its partial summary; nil if it could
// not stop the run or the summary did not come.
func stopInterrupted(ctx context.Context, c runsClient, runID string, stderr io.Writer) *surgev1.RunSummary {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopTimeout)
	defer cancel()
	if _, err := c.Stop(sctx, &surgev1.StopRunRequest{RunId: runID}); err != nil {
		fmt.Fprintf(stderr, "surge: interrupted; could not stop run %s: %v\n", runID, rpcErr("stop", c.addr, err))
		return nil
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), summaryTimeout)
	defer cancel()
	sum, err := watch(wctx, c, runID, func(*surgev1.Progress) {}, io.Discard)
	if err != nil {
		fmt.Fprintf(stderr, "surge: interrupted; run %s stopped, its summary did not come in %s: `surge report %s` shows it\n", runID, summaryTimeout, runID)
		return nil
	}
	return sum
}

// watch follows a run until its summary arrives. If the stream breaks (the
// controller restarts, the network blips) it watches again with backoff,
// until the summary arrives or ctx ends; errors that retrying cannot fix
// (unknown run, bad request) end it.
func watch(ctx context.Context, c runsClient, runID string, onProgress func(*surgev1.Progress), stderr io.Writer) (*surgev1.RunSummary, error) {
	backoff := watchBackoffMin
	for {
		sum, progressed, err := watchOnce(ctx, c, runID, onProgress)
		if sum != nil {
			return sum, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("watch %s: %w", runID, context.Cause(ctx))
		}
		switch status.Code(err) {
		case codes.NotFound, codes.InvalidArgument, codes.Unimplemented, codes.PermissionDenied,
			codes.Unauthenticated, codes.FailedPrecondition:
			return nil, rpcErr("watch "+runID, c.addr, err)
		}
		if progressed {
			backoff = watchBackoffMin
		}
		fmt.Fprintf(stderr, "surge: watch %s: %v; retrying in %s\n", runID, rpcErr("stream", c.addr, err), backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("watch %s: %w", runID, context.Cause(ctx))
		case <-t.C:
		}
		backoff = min(2*backoff, watchBackoffMax)
	}
}

// watchOnce reads one Watch stream. It returns the summary if it arrived,
// whether any progress did, and the error that ended the stream.
func watchOnce(ctx context.Context, c runsClient, runID string, onProgress func(*surgev1.Progress)) (*surgev1.RunSummary, bool, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.Watch(ctx, &surgev1.WatchRequest{RunId: runID})
	if err != nil {
		return nil, false, err
	}
	progressed := false
	for {
		u, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil, progressed, status.Error(codes.Unavailable, "stream ended without the run's summary")
		}
		if err != nil {
			return nil, progressed, err
		}
		switch {
		case u.GetSummary() != nil:
			return u.GetSummary(), progressed, nil
		case u.GetProgress() != nil:
			progressed = true
			onProgress(u.GetProgress())
		}
	}
}

// verdictError maps a finished run to the command's result: nil when it
// passed, exit 99 when thresholds failed, exit 1 when the run itself failed.
func verdictError(s *surgev1.RunSummary) error {
	id := s.GetRunId()
	switch {
	case s.GetStatus() == "failed":
		msg := s.GetError()
		if msg == "" {
			msg = "no reason given"
		}
		return withExitCode(exitFailure, fmt.Errorf("run %s failed: %s", id, msg))
	case s.GetVerdict() == "pass":
		return nil
	case s.GetVerdict() == "fail" && (s.GetStatus() == "finished" || s.GetStatus() == "aborted"):
		var failed []string
		for _, t := range s.GetThresholds() {
			if !t.GetOk() {
				failed = append(failed, t.GetMetric()+" "+t.GetExpr())
			}
		}
		msg := "thresholds failed"
		if len(failed) > 0 {
			msg += ": " + strings.Join(failed, ", ")
		}
		return withExitCode(exitThresholds, fmt.Errorf("run %s: %s", id, msg))
	}
	return withExitCode(exitFailure, fmt.Errorf("run %s ended with status %q and verdict %q", id, s.GetStatus(), s.GetVerdict()))
}
