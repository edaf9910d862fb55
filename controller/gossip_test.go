package controller

import (
	"context"
	"testing"
	"time"

	"github.com/surgeload/surge/cluster"
	surgev1 "github.com/surgeload/surge/gen/surge/v1"
)

func TestGossipOnlyAgents(t *testing.T) {
	c, err := New(Config{Listen: "127.0.0.1:0", Gossip: cluster.Gossip{Bind: "127.0.0.1:0"}, DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	deadline := time.Now().Add(waitFor)
	for c.GossipAddr() == "" {
		if time.Now().After(deadline) {
			t.Fatal("no gossip address")
		}
		time.Sleep(10 * time.Millisecond)
	}
	node, err := cluster.Join(ctx, cluster.Config{
		BindAddr: "127.0.0.1:0",
		Join:     []string{c.GossipAddr()},
		Meta:     cluster.Meta{Role: cluster.RoleAgent, ID: "g1", Region: "ap-south"},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close(context.Background())
	// The agent sees the controller's gRPC address through gossip.
	m, err := cluster.WaitForMember(ctx, node, func(m cluster.Member) bool { return m.Meta.Role == cluster.RoleController })
	if err != nil || m.Meta.GRPCAddr != c.Addr() {
		t.Fatalf("controller member %+v, %v", m, err)
	}
	svc := &agentsService{c: c}
	for {
		resp, err := svc.List(ctx, &surgev1.ListAgentsRequest{})
		if err == nil && len(resp.GetAgents()) == 1 && resp.GetAgents()[0].GetState() == "gossip-only" &&
			resp.GetAgents()[0].GetRegion() == "ap-south" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("agents %v, %v", resp, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
