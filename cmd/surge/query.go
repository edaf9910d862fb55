package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
)

// --- queries against the controller ---

type queryOptions struct {
	controller string
	auth       *clientAuth
	json       bool
	runID      string
	tags       []string // surge runs --tag: only runs with these tags
}

// withController dials the controller for one command.
func withController(addr string, auth *clientAuth, fn func(*grpcClients) error) error {
	conn, err := dialAuth(addr, auth)
	if err != nil {
		return err
	}
	defer conn.Close()
	return fn(&grpcClients{
		runs:   runsClient{surgev1.NewRunsClient(conn), addr},
		agents: surgev1.NewAgentsClient(conn),
	})
}

type grpcClients struct {
	runs   runsClient
	agents surgev1.AgentsClient
}

// newQueryCmd is a command that queries the controller; flags, if set,
// adds the command's own flags.
func newQueryCmd(e env, use, short string, args cobra.PositionalArgs, jsonFlag bool,
	run func(context.Context, queryOptions, io.Writer) error, flags ...func(*cobra.Command, *queryOptions)) *cobra.Command {
	var o queryOptions
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  args,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				o.runID = args[0]
			}
			return run(cmd.Context(), o, e.stdout)
		},
	}
	o.auth = controllerFlag(cmd, e, &o.controller)
	if jsonFlag {
		cmd.Flags().BoolVar(&o.json, "json", false, "print JSON")
	}
	for _, f := range flags {
		f(cmd, &o)
	}
	return cmd
}

func newAgentsCmd(e env) *cobra.Command {
	return newQueryCmd(e, "agents", "List the controller's agents", cobra.NoArgs, true, runAgents)
}

func newRunsCmd(e env) *cobra.Command {
	return newQueryCmd(e, "runs", "List runs, newest first", cobra.NoArgs, true, runRuns, func(cmd *cobra.Command, o *queryOptions) {
		tagFlag(cmd, &o.tags, "list only runs tagged `KEY=VALUE` (repeatable: every one must match)")
	})
}

func newStopCmd(e env) *cobra.Command {
	return newQueryCmd(e, "stop RUN_ID", "Stop a run", cobra.ExactArgs(1), false, runStop)
}

// runAgents is `surge agents`.
func runAgents(ctx context.Context, o queryOptions, stdout io.Writer) error {
	return withController(o.controller, o.auth, func(c *grpcClients) error {
		ctx, cancel := context.WithTimeout(ctx, rpcTimeout)
		defer cancel()
		resp, err := c.agents.List(ctx, &surgev1.ListAgentsRequest{})
		if err != nil {
			return rpcErr("list agents", o.controller, err)
		}
		agents := slices.Clone(resp.GetAgents())
		slices.SortFunc(agents, func(a, b *surgev1.AgentInfo) int {
			return cmp.Or(cmp.Compare(a.GetRegion(), b.GetRegion()), cmp.Compare(a.GetId(), b.GetId()))
		})
		if o.json {
			return writeAgentsJSON(stdout, agents)
		}
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprint(tw, "ID\tREGION\tZONE\tSTATE\tOFFSET\tCPU\tRUNS\n")
		for _, a := range agents {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%.0f%%\t%s\n", a.GetId(), a.GetRegion(), dash(a.GetZone()), a.GetState(),
				time.Duration(a.GetClockOffsetUs())*time.Microsecond, a.GetCpuPercent(), dash(strings.Join(a.GetRuns(), ",")))
		}
		return tw.Flush()
	})
}

// runRuns is `surge runs`.
func runRuns(ctx context.Context, o queryOptions, stdout io.Writer) error {
	want, err := tagFlags(o.tags)
	if err != nil {
		return err
	}
	return withController(o.controller, o.auth, func(c *grpcClients) error {
		ctx, cancel := context.WithTimeout(ctx, rpcTimeout)
		defer cancel()
		resp, err := c.runs.List(ctx, &surgev1.ListRunsRequest{})
		if err != nil {
			return rpcErr("list runs", o.controller, err)
		}
		runs := slices.DeleteFunc(slices.Clone(resp.GetRuns()), func(r *surgev1.RunInfo) bool { return !hasTags(r.GetTags(), want) })
		slices.SortStableFunc(runs, func(a, b *surgev1.RunInfo) int {
			return cmp.Or(cmp.Compare(b.GetStartedAtUnixMs(), a.GetStartedAtUnixMs()), cmp.Compare(b.GetRunId(), a.GetRunId()))
		})
		if o.json {
			return writeRunsJSON(stdout, runs)
		}
		if len(runs) == 0 && len(want) > 0 {
			_, err := fmt.Fprintf(stdout, "no run is tagged %s (surge runs lists every run)\n", tagText(want))
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprint(tw, "RUN_ID\tPLAN\tSTATUS\tVERDICT\tSTARTED\tTAGS\n")
		for _, r := range runs {
			started := "-"
			if ms := r.GetStartedAtUnixMs(); ms != 0 {
				started = time.UnixMilli(ms).UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.GetRunId(), r.GetPlanName(), r.GetStatus(), dash(r.GetVerdict()), started,
				tagText(r.GetTags()))
		}
		return tw.Flush()
	})
}

// runStop is `surge stop`.
func runStop(ctx context.Context, o queryOptions, stdout io.Writer) error {
	return withController(o.controller, o.auth, func(c *grpcClients) error {
		if err := resolveRuns(ctx, c.runs, &o.runID); err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(ctx, rpcTimeout)
		defer cancel()
		if _, err := c.runs.Stop(ctx, &surgev1.StopRunRequest{RunId: o.runID}); err != nil {
			return rpcErr("stop "+o.runID, o.controller, err)
		}
		_, err := fmt.Fprintf(stdout, "run %s stopping\n", o.runID)
		return err
	})
}

// runJSON is one run of `surge runs --json`: the proto field names, with
// the start as a number (proto JSON writes int64 as a string).
type runJSON struct {
	RunID           string `json:"run_id"`
	PlanName        string `json:"plan_name"`
	Status          string `json:"status"`
	StartedAtUnixMs int64  `json:"started_at_unix_ms"`
	Verdict         string `json:"verdict"`
	// Tags are {} without any.
	Tags map[string]string `json:"tags"`
}

// writeRunsJSON writes `{"runs": [...]}`.
func writeRunsJSON(w io.Writer, runs []*surgev1.RunInfo) error {
	out := struct {
		Runs []runJSON `json:"runs"`
	}{Runs: make([]runJSON, 0, len(runs))}
	for _, r := range runs {
		out.Runs = append(out.Runs, runJSON{RunID: r.GetRunId(), PlanName: r.GetPlanName(), Status: r.GetStatus(),
			StartedAtUnixMs: r.GetStartedAtUnixMs(), Verdict: r.GetVerdict(), Tags: nonNil(r.GetTags())})
	}
	return writeJSON(w, out)
}

// agentJSON is one agent of `surge agents --json`: every field of
// AgentInfo by its proto name, int64 ones as numbers (proto JSON writes
// them as strings).
type agentJSON struct {
	ID                string   `json:"id"`
	Region            string   `json:"region"`
	Zone              string   `json:"zone"`
	Version           string   `json:"version"`
	Address           string   `json:"address"`
	State             string   `json:"state"`
	ClockOffsetUs     int64    `json:"clock_offset_us"`
	CPUPercent        float64  `json:"cpu_percent"`
	Runs              []string `json:"runs"`
	ConnectedAtUnixMs int64    `json:"connected_at_unix_ms"`
}

// writeAgentsJSON writes `{"agents": [...]}`.
func writeAgentsJSON(w io.Writer, agents []*surgev1.AgentInfo) error {
	out := struct {
		Agents []agentJSON `json:"agents"`
	}{Agents: make([]agentJSON, 0, len(agents))}
	for _, a := range agents {
		out.Agents = append(out.Agents, agentJSON{ID: a.GetId(), Region: a.GetRegion(), Zone: a.GetZone(),
			Version: a.GetVersion(), Address: a.GetAddress(), State: a.GetState(), ClockOffsetUs: a.GetClockOffsetUs(),
			CPUPercent: a.GetCpuPercent(), Runs: append([]string{}, a.GetRuns()...), ConnectedAtUnixMs: a.GetConnectedAtUnixMs()})
	}
	return writeJSON(w, out)
}

// writeJSON writes v indented, ending in a newline.
func writeJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode json: %w", err)
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
