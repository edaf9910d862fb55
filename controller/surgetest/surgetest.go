// Package surgetest builds real surge clusters inside a test: a controller
// with its store in t.TempDir, agents joined over real memberlist gossip and
// connected over real gRPC, and a target, all on loopback with free ports.
// Everything stops when the test ends, and every goroutine is waited for.
package surgetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/surgeload/surge/agent"
	"github.com/surgeload/surge/cluster"
	"github.com/surgeload/surge/cmd/surge/target"
	"github.com/surgeload/surge/controller"
	surgev1 "github.com/surgeload/surge/gen/surge/v1"
)

// AgentSpec is one agent of a test cluster.
type AgentSpec struct {
	ID     string
	Region string
	// Configure, if set, adjusts the agent's config before it starts.
	Configure func(*agent.Config)
}

// Options shapes a test cluster.
type Options struct {
	Agents []AgentSpec
	// Target configures the built-in target; its Listen is set to a free
	// loopback port.
	Target target.Config
	// Controller, if set, adjusts the controller's config before it starts.
	Controller func(*controller.Config)
}

// Cluster is a running test cluster.
type Cluster struct {
	Controller *controller.Controller
	Agents     []*agent.Agent
	Target     *target.Server
	// Runs and AgentsClient talk to the controller over real gRPC.
	Runs         surgev1.RunsClient
	AgentsClient surgev1.AgentsClient
	DataDir      string

	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	errs   []error
}

// TargetURL is the target's base URL, e.g. http://127.0.0.1:41234.
func (c *Cluster) TargetURL() string { return "http://" + c.Target.Addr() }

func (c *Cluster) goRun(name string, run func(context.Context) error, ctx context.Context) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		if err := run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			c.mu.Lock()
			c.errs = append(c.errs, fmt.Errorf("%s: %w", name, err))
			c.mu.Unlock()
		}
	}()
}

// Start builds and starts a cluster and waits until every agent is
// connected to the controller. It fails the test on any error.
func Start(t testing.TB, opts Options) *Cluster {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	c := &Cluster{cancel: cancel, DataDir: t.TempDir()}
	t.Cleanup(func() {
		cancel()
		c.wg.Wait()
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, err := range c.errs {
			t.Errorf("surgetest: %v", err)
		}
	})

	tcfg := opts.Target
	tcfg.Listen = "127.0.0.1:0"
	ts, err := target.New(tcfg)
	if err != nil {
		t.Fatalf("surgetest: target: %v", err)
	}
	c.Target = ts
	c.goRun("target", ts.Run, ctx)

	ccfg := controller.Config{
		Listen:  "127.0.0.1:0",
		Gossip:  cluster.Gossip{Bind: "127.0.0.1:0"},
		DataDir: c.DataDir,
		Version: "test",
	}
	if opts.Controller != nil {
		opts.Controller(&ccfg)
	}
	ctrl, err := controller.New(ccfg)
	if err != nil {
		t.Fatalf("surgetest: controller: %v", err)
	}
	c.Controller = ctrl
	c.goRun("controller", ctrl.Run, ctx)

	conn, err := grpc.NewClient(ctrl.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("surgetest: dial controller: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	c.Runs = surgev1.NewRunsClient(conn)
	c.AgentsClient = surgev1.NewAgentsClient(conn)

	gossip := waitFor(t, 15*time.Second, "controller gossip address", func() (string, error) {
		if a := ctrl.GossipAddr(); a != "" {
			return a, nil
		}
		return "", errors.New("not joined yet")
	})
	for _, spec := range opts.Agents {
		acfg := agent.Config{
			ID:      spec.ID,
			Region:  spec.Region,
			Gossip:  cluster.Gossip{Bind: "127.0.0.1:0", Join: []string{gossip}},
			Version: "test",
		}
		if spec.Configure != nil {
			spec.Configure(&acfg)
		}
		a, err := agent.New(acfg)
		if err != nil {
			t.Fatalf("surgetest: agent %s: %v", spec.ID, err)
		}
		c.Agents = append(c.Agents, a)
		c.goRun("agent "+spec.ID, a.Run, ctx)
	}
	c.WaitAgents(t, len(opts.Agents))
	return c
}

// WaitAgents waits until n agents are connected to the controller.
func (c *Cluster) WaitAgents(t testing.TB, n int) {
	t.Helper()
	waitFor(t, 20*time.Second, fmt.Sprintf("%d agents connected", n), func() (struct{}, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		resp, err := c.AgentsClient.List(ctx, &surgev1.ListAgentsRequest{})
		if err != nil {
			return struct{}{}, err
		}
		got := 0
		for _, a := range resp.GetAgents() {
			if a.GetState() == "connected" {
				got++
			}
		}
		if got != n {
			return struct{}{}, fmt.Errorf("%d connected", got)
		}
		return struct{}{}, nil
	})
}

// Run submits a plan and watches it to the end, returning the summary and
// the progress updates seen.
func (c *Cluster) Run(t testing.TB, file string, planYAML []byte) (*surgev1.RunSummary, []*surgev1.Progress) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	sub, err := c.Runs.Submit(ctx, &surgev1.SubmitRequest{PlanYaml: planYAML, FileName: file})
	if err != nil {
		t.Fatalf("surgetest: submit: %v", err)
	}
	stream, err := c.Runs.Watch(ctx, &surgev1.WatchRequest{RunId: sub.GetRunId()})
	if err != nil {
		t.Fatalf("surgetest: watch: %v", err)
	}
	var progress []*surgev1.Progress
	for {
		u, err := stream.Recv()
		if err != nil {
			t.Fatalf("surgetest: watch %s ended without a summary: %v", sub.GetRunId(), err)
		}
		if p := u.GetProgress(); p != nil {
			progress = append(progress, p)
		}
		if s := u.GetSummary(); s != nil {
			return s, progress
		}
	}
}

// waitFor polls f every 50ms until it succeeds or d passes.
func waitFor[T any](t testing.TB, d time.Duration, what string, f func() (T, error)) T {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		v, err := f()
		if err == nil {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("surgetest: %s: not within %v: %v", what, d, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
