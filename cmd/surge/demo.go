package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/surgeload/surge/agent"
	"github.com/surgeload/surge/cluster"
	"github.com/surgeload/surge/cmd/surge/target"
	"github.com/surgeload/surge/controller"
	"github.com/surgeload/surge/examples"
	surgev1 "github.com/surgeload/surge/gen/surge/v1"
	"github.com/surgeload/surge/plan"
)

// demoAgentsTimeout bounds the wait for the demo's agents to connect.
const demoAgentsTimeout = 20 * time.Second

type demoOptions struct {
	duration  time.Duration
	dataDir   string
	latency   string
	errorRate float64
	logLevel  string
	run       runOptions
}

func newDemoCmd(e env) *cobra.Command {
	o := demoOptions{run: runOptions{tty: e.tty}}
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the demo: a controller, three agents and a target in one process",
		Long: `Demo starts a controller, three agents labelled us-east, eu-west and ap-south,
and the built-in target, all on loopback, then runs examples/demo.yaml against
the target: live progress, then the summary. Exit status as for surge run.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDemo(cmd.Context(), o, e.stdout, e.stderr)
		},
	}
	f := cmd.Flags()
	f.DurationVar(&o.duration, "duration", 0, "scale the plan to this total duration (default: the plan's own, 30s)")
	f.StringVar(&o.dataDir, "data-dir", "", "`DIR` of the controller's run store (default: a new temporary directory, kept)")
	f.StringVar(&o.latency, "latency", "normal(10ms,3ms)", "the target's response delay (see surge target)")
	f.Float64Var(&o.errorRate, "error-rate", 0.002, "fraction of requests the target answers 500")
	f.StringVar(&o.run.jsonFile, "json", "", "also write the JSON summary to `FILE`")
	f.BoolVarP(&o.run.quiet, "quiet", "q", false, "no live progress (the summary is still printed)")
	f.StringVar(&o.logLevel, "log-level", "error", "log level of the cluster's components: debug, info, warn, error")
	return cmd
}

// runDemo is `surge demo`.
func runDemo(ctx context.Context, o demoOptions, stdout, stderr io.Writer) (err error) {
	if o.duration < 0 {
		return usageErrorf("--duration %s: must be > 0", o.duration)
	}
	log, err := newLogger(stderr, o.logLevel)
	if err != nil {
		return err
	}
	dataDir := o.dataDir
	if dataDir == "" {
		if dataDir, err = os.MkdirTemp("", "surge-demo-"); err != nil {
			return fmt.Errorf("demo: data dir: %w", err)
		}
	}

	// The cluster outlives an interrupt of the run, so the run can be
	// stopped cleanly; it ends when runDemo returns.
	clusterCtx, stopCluster := context.WithCancel(context.WithoutCancel(ctx))
	// A component that fails ends the run too.
	runCtx, cancelRun := context.WithCancelCause(ctx)
	defer cancelRun(nil)
	g := &group{ctx: clusterCtx, fail: cancelRun}
	defer func() {
		stopCluster()
		err = errors.Join(err, g.wait())
	}()

	c, agents, err := startDemoNodes(runCtx, g, log, dataDir)
	if err != nil {
		return err
	}
	tgt, err := target.New(target.Config{Listen: "127.0.0.1:0", Latency: o.latency, ErrorRate: o.errorRate, Logger: log})
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	g.start("target", tgt.Run)

	fmt.Fprintf(stdout, "demo: controller %s, target http://%s, data dir %s\n", c.Addr(), tgt.Addr(), dataDir)

	src, err := demoPlan(tgt.Addr(), o.duration)
	if err != nil {
		return err
	}

	conn, err := dial(c.Addr())
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := waitForAgents(runCtx, surgev1.NewAgentsClient(conn), agents); err != nil {
		return err
	}
	runErr := submitAndWatch(runCtx, runsClient{surgev1.NewRunsClient(conn), c.Addr()},
		examples.DemoFile, src, o.run, stdout, stderr)
	fmt.Fprintf(stdout, "\nresults are kept in %s: `surge controller --data-dir %s` serves them to `surge runs` and `surge report`\n",
		dataDir, dataDir)
	return runErr
}

// startDemoNodes starts the controller, then three agents in three regions
// joined to its gossip, in g; it returns the controller and the number of
// agents.
func startDemoNodes(ctx context.Context, g *group, log *slog.Logger, dataDir string) (*controller.Controller, int, error) {
	c, err := controller.New(controller.Config{
		Listen:  "127.0.0.1:0",
		Gossip:  cluster.Gossip{Bind: "127.0.0.1:0", Profile: "local"},
		DataDir: dataDir,
		Logger:  log,
		Version: versionString(),
	})
	if err != nil {
		return nil, 0, fmt.Errorf("demo: %w", err)
	}
	g.start("controller", c.Run)
	if !pollUntil(ctx, demoAgentsTimeout, func() bool { return c.GossipAddr() != "" }) {
		return nil, 0, fmt.Errorf("demo: controller did not join gossip: %w", causeOrTimeout(ctx))
	}
	demoAgents := []struct{ id, region string }{
		{"agent-us-east", "us-east"},
		{"agent-eu-west", "eu-west"},
		{"agent-ap-south", "ap-south"},
	}
	for _, d := range demoAgents {
		a, err := agent.New(agent.Config{
			ID:         d.id,
			Region:     d.region,
			Controller: c.Addr(),
			Gossip:     cluster.Gossip{Bind: "127.0.0.1:0", Join: []string{c.GossipAddr()}, Profile: "local"},
			Logger:     log,
			Version:    versionString(),
		})
		if err != nil {
			return nil, 0, fmt.Errorf("demo: %w", err)
		}
		g.start(d.id, a.Run)
	}
	return c, len(demoAgents), nil
}

// demoPlan is the embedded demo plan aimed at target and, if total > 0,
// scaled to last total.
func demoPlan(targetAddr string, total time.Duration) ([]byte, error) {
	src, err := plan.SetBaseURL(examples.Demo(), "http://"+targetAddr)
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	if total > 0 {
		if src, err = scalePlan(examples.DemoFile, src, total); err != nil {
			return nil, fmt.Errorf("demo: %w", err)
		}
	}
	if _, err := plan.Parse(examples.DemoFile, src); err != nil {
		return nil, fmt.Errorf("demo: embedded plan: %w", err)
	}
	return src, nil
}

// scalePlan rewrites a plan's scenario durations, start times and stage
// durations proportionally so the plan lasts total. It edits the YAML tree,
// so everything else in the source (comments, defaults left out) stays as
// written.
func scalePlan(file string, src []byte, total time.Duration) ([]byte, error) {
	p, err := plan.Parse(file, src)
	if err != nil {
		return nil, fmt.Errorf("scale plan: %w", err)
	}
	cur := p.TotalDuration()
	if cur <= 0 {
		return nil, fmt.Errorf("scale plan: %s has no duration to scale", file)
	}
	factor := float64(total) / float64(cur)

	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, fmt.Errorf("scale plan: %w", err)
	}
	seen := map[*yaml.Node]bool{}
	scale := func(n *yaml.Node) error {
		n = deref(n)
		if n == nil || seen[n] || n.Kind != yaml.ScalarNode {
			return nil
		}
		seen[n] = true
		d, err := time.ParseDuration(n.Value)
		if err != nil {
			return fmt.Errorf("scale plan: line %d: %w", n.Line, err)
		}
		scaled := time.Duration(float64(d) * factor).Round(time.Millisecond)
		if d > 0 && scaled < time.Millisecond {
			scaled = time.Millisecond
		}
		n.Value, n.Tag, n.Style = scaled.String(), "!!str", 0
		return nil
	}
	var root *yaml.Node
	if len(doc.Content) > 0 {
		root = deref(doc.Content[0])
	}
	for _, sc := range mappingValues(mappingValue(root, "scenarios")) {
		for _, key := range []string{"duration", "start_time"} {
			if err := scale(mappingValue(sc, key)); err != nil {
				return nil, err
			}
		}
		if stages := deref(mappingValue(sc, "stages")); stages != nil && stages.Kind == yaml.SequenceNode {
			for _, st := range stages.Content {
				if err := scale(mappingValue(st, "duration")); err != nil {
					return nil, err
				}
			}
		}
	}
	out, err := yaml.Marshal(&doc)
	if err != nil {
		return nil, fmt.Errorf("scale plan: %w", err)
	}
	if _, err := plan.Parse(file, out); err != nil {
		return nil, fmt.Errorf("scale plan: scaled plan: %w", err)
	}
	return out, nil
}

func deref(n *yaml.Node) *yaml.Node {
	if n != nil && n.Kind == yaml.AliasNode {
		return n.Alias
	}
	return n
}

// mappingValue is the value of key in mapping n, or nil.
func mappingValue(n *yaml.Node, key string) *yaml.Node {
	n = deref(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// mappingValues are the values of mapping n.
func mappingValues(n *yaml.Node) []*yaml.Node {
	n = deref(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	var vs []*yaml.Node
	for i := 1; i < len(n.Content); i += 2 {
		vs = append(vs, n.Content[i])
	}
	return vs
}

// waitForAgents polls the controller until want agents are connected.
func waitForAgents(ctx context.Context, c surgev1.AgentsClient, want int) error {
	var last []string
	ok := pollUntil(ctx, demoAgentsTimeout, func() bool {
		lctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		resp, err := c.List(lctx, &surgev1.ListAgentsRequest{})
		if err != nil {
			return false
		}
		last = last[:0]
		for _, a := range resp.GetAgents() {
			if a.GetState() == "connected" {
				last = append(last, a.GetId())
			}
		}
		return len(last) >= want
	})
	if !ok {
		if ctx.Err() != nil {
			return fmt.Errorf("demo: waiting for agents: %w", context.Cause(ctx))
		}
		return fmt.Errorf("demo: %d of %d agents connected within %s (connected: %v)", len(last), want, demoAgentsTimeout, last)
	}
	return nil
}

// pollUntil checks cond every 20ms until it holds (true), or the timeout
// passes or ctx ends (false).
func pollUntil(ctx context.Context, timeout time.Duration, cond func() bool) bool {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
	}
	return true
}

func causeOrTimeout(ctx context.Context) error {
	if err := context.Cause(ctx); err != nil {
		return err
	}
	return errors.New("timed out")
}

// group runs the demo's components until its context ends. A component
// that returns early — with or without an error — fails the demo.
type group struct {
	ctx  context.Context
	fail context.CancelCauseFunc
	wg   sync.WaitGroup
	mu   sync.Mutex
	errs []error
}

func (g *group) start(name string, run func(context.Context) error) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		err := run(g.ctx)
		if err == nil && g.ctx.Err() == nil {
			err = errors.New("stopped early")
		}
		if err != nil {
			err = fmt.Errorf("demo: %s: %w", name, err)
			g.mu.Lock()
			g.errs = append(g.errs, err)
			g.mu.Unlock()
			g.fail(err)
		}
	}()
}

func (g *group) wait() error {
	g.wg.Wait()
	g.mu.Lock()
	defer g.mu.Unlock()
	return errors.Join(g.errs...)
}
