package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Exit codes.
const (
	exitOK         = 0
	exitFailure    = 1
	exitUsage      = 2
	exitThresholds = 99
)

// defaultController is the controller address when neither --controller nor
// SURGE_CONTROLLER is given.
const defaultController = "127.0.0.1:7070"

// rpcTimeout bounds the CLI's unary calls.
const rpcTimeout = 15 * time.Second

// env is what a command may touch of the process: its output streams,
// environment and terminal. main fills it from the process; tests fake it.
type env struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	// tty reports whether stdout is a terminal, for progress redrawn in place.
	tty bool
}

func newEnv() env {
	return env{stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv, tty: isTerminal(os.Stdout)}
}

// isTerminal reports whether f is a character device (a terminal).
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// exitError attaches a process exit code to an error. reported means the
// command already showed the problem, so main prints nothing more.
type exitError struct {
	code     int
	err      error
	reported bool
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func withExitCode(code int, err error) error { return &exitError{code: code, err: err} }

func usageErrorf(format string, args ...any) error {
	return withExitCode(exitUsage, fmt.Errorf(format, args...))
}

// exitCode maps an error to the process exit status: the code attached by
// exitError, else 1; nil is 0.
func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	if e, ok := errors.AsType[*exitError](err); ok {
		return e.code
	}
	return exitFailure
}

// rpcError is a failed call to the controller: the status message without
// gRPC's "rpc error: code = ... desc = ..." framing, the code kept for
// callers (status.Code works on it).
type rpcError struct {
	op   string
	addr string
	st   *status.Status
}

func (e *rpcError) Error() string {
	msg := e.st.Message()
	switch e.st.Code() {
	case codes.Unavailable:
		return fmt.Sprintf("%s: controller at %s unavailable (is it running? set --controller or SURGE_CONTROLLER): %s", e.op, e.addr, msg)
	case codes.DeadlineExceeded:
		return fmt.Sprintf("%s: controller at %s did not answer in time: %s", e.op, e.addr, msg)
	}
	return fmt.Sprintf("%s: %s", e.op, msg)
}

// GRPCStatus lets status.FromError and status.Code see the original status.
func (e *rpcError) GRPCStatus() *status.Status { return e.st }

// rpcErr wraps an error returned by a gRPC call; other errors (context
// cancellation) are wrapped plainly.
func rpcErr(op, addr string, err error) error {
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("%s: %w", op, err)
	}
	st, ok := status.FromError(err)
	if !ok {
		return fmt.Errorf("%s: %w", op, err)
	}
	if st.Code() == codes.Canceled {
		return fmt.Errorf("%s: %w", op, context.Canceled)
	}
	return &rpcError{op: op, addr: addr, st: st}
}

// dial opens a client connection without credentials, for a controller
// this process started itself (surge demo).
func dial(addr string) (*grpc.ClientConn, error) {
	return dialAuth(addr, nil)
}

// dialAuth opens a client connection to the controller with auth's
// credentials (nil: none); it connects lazily, so errors show on the first
// call.
func dialAuth(addr string, auth *clientAuth) (*grpc.ClientConn, error) {
	opts, err := auth.dialOptions()
	if err != nil {
		return nil, withExitCode(exitUsage, err)
	}
	conn, err := grpc.NewClient(addr, opts...)
	if err != nil {
		return nil, withExitCode(exitUsage, fmt.Errorf("controller address %q: %w", addr, err))
	}
	return conn, nil
}

// versionString is the build's version: the -ldflags value, else the module
// version from the build info, else "devel".
func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}

// execute runs the command line args and returns the exit code, after
// printing any error to e.stderr.
func execute(ctx context.Context, args []string, e env) int {
	root, ran := newRootCmd(e)
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	if !*ran {
		// Cobra failed before any command ran: a flag, argument or
		// command-name problem.
		err = withExitCode(exitUsage, err)
	}
	if x, ok := errors.AsType[*exitError](err); !ok || !x.reported {
		fmt.Fprintf(e.stderr, "surge: %v\n", err)
		if exitCode(err) == exitUsage {
			// The help of the command that failed (root's for an unknown
			// command).
			path := root.CommandPath()
			if cmd != nil {
				path = cmd.CommandPath()
			}
			fmt.Fprintf(e.stderr, "Run '%s --help' for usage.\n", path)
		}
	}
	return exitCode(err)
}

// newRootCmd builds the command tree. *ran is set once a command's own code
// starts, so execute can tell usage errors from command failures.
func newRootCmd(e env) (*cobra.Command, *bool) {
	ran := new(bool)
	root := &cobra.Command{
		Use:           "surge",
		Short:         "surge is a distributed load-testing cluster",
		Long:          "surge runs load-test plans across agents in several regions and merges what they measure into one exact result.",
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.SetOut(e.stdout)
	root.SetErr(e.stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return withExitCode(exitUsage, err)
	})
	root.AddCommand(
		newControllerCmd(e),
		newAgentCmd(e),
		newRunCmd(e),
		newWatchCmd(e),
		newValidateCmd(e),
		newAgentsCmd(e),
		newRunsCmd(e),
		newReportCmd(e),
		newCompareCmd(e),
		newPlanCmd(e),
		newInitCmd(e),
		newStopCmd(e),
		newTargetCmd(e),
		newDemoCmd(e),
		newVersionCmd(e),
		newCertsCmd(e),
		newCanaryCmd(e),
	)
	// Cobra validates arguments and flags before RunE: mark the start of
	// each command's own code, subcommands' (plan from-log) included.
	markRun(root, ran)
	return root, ran
}

// markRun wraps the RunE of c's subcommands, at every depth, to set *ran.
func markRun(c *cobra.Command, ran *bool) {
	for _, sub := range c.Commands() {
		if run := sub.RunE; run != nil {
			sub.RunE = func(cmd *cobra.Command, args []string) error {
				*ran = true
				return run(cmd, args)
			}
		}
		markRun(sub, ran)
	}
}

// controllerFlag adds --controller, defaulting to $SURGE_CONTROLLER, and
// the credential flags (clientAuthFlags) of a command that calls the
// controller; dial with what it returns.
func controllerFlag(cmd *cobra.Command, e env, p *string) *clientAuth {
	def := e.getenv("SURGE_CONTROLLER")
	if def == "" {
		def = defaultController
	}
	cmd.PersistentFlags().StringVar(p, "controller", def, "controller gRPC address (env SURGE_CONTROLLER)")
	return clientAuthFlags(cmd, e)
}

func newVersionCmd(e env) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print surge's version",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			_, err := fmt.Fprintf(e.stdout, "surge %s\n", versionString())
			return err
		},
	}
}
