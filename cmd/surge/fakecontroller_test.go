package main

import (
	"context"
	"net"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
)

type fakeController struct {
	surgev1.UnimplementedRunsServer
	surgev1.UnimplementedAgentsServer

	submitErr error
	progress  []*surgev1.Progress
	summary   *surgev1.RunSummary
	// breakWatches: this many Watch calls send the progress, then fail
	// with Unavailable before the summary.
	breakWatches int
	agents       []*surgev1.AgentInfo
	runs         []*surgev1.RunInfo

	mu        sync.Mutex
	submitted []*surgev1.SubmitRequest
	watches   int
	stopped   []string
}

func (f *fakeController) Submit(_ context.Context, req *surgev1.SubmitRequest) (*surgev1.SubmitResponse, error) {
	f.mu.Lock()
	f.submitted = append(f.submitted, req)
	f.mu.Unlock()
	if f.submitErr != nil {
		return nil, f.submitErr
	}
	return &surgev1.SubmitResponse{
		RunId:      "r-1",
		PlanName:   "smoke",
		DurationMs: 2000,
		Agents: []*surgev1.AgentShareInfo{
			{AgentId: "a1", Region: "us-east"},
			{AgentId: "a2", Region: "eu-west"},
			{AgentId: "a3", Region: "us-east"},
		},
	}, nil
}

func (f *fakeController) Watch(req *surgev1.WatchRequest, stream grpc.ServerStreamingServer[surgev1.RunUpdate]) error {
	if req.GetRunId() != "r-1" {
		return status.Errorf(codes.NotFound, "run %q not found", req.GetRunId())
	}
	f.mu.Lock()
	f.watches++
	broken := f.watches <= f.breakWatches
	f.mu.Unlock()
	for _, p := range f.progress {
		if err := stream.Send(&surgev1.RunUpdate{Update: &surgev1.RunUpdate_Progress{Progress: p}}); err != nil {
			return err
		}
	}
	if broken {
		return status.Error(codes.Unavailable, "controller shutting down")
	}
	return stream.Send(&surgev1.RunUpdate{Update: &surgev1.RunUpdate_Summary{Summary: f.summary}})
}

func (f *fakeController) Report(_ context.Context, req *surgev1.ReportRequest) (*surgev1.RunSummary, error) {
	if req.GetRunId() != f.summary.GetRunId() {
		return nil, status.Errorf(codes.NotFound, "run %q not found", req.GetRunId())
	}
	return f.summary, nil
}

func (f *fakeController) Stop(_ context.Context, req *surgev1.StopRunRequest) (*surgev1.StopRunResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stopped = append(f.stopped, req.GetRunId())
	return &surgev1.StopRunResponse{}, nil
}

func (f *fakeController) List(context.Context, *surgev1.ListRunsRequest) (*surgev1.ListRunsResponse, error) {
	return &surgev1.ListRunsResponse{Runs: f.runs}, nil
}

// agentsServer adapts the fake to AgentsServer, whose List clashes with
// RunsServer's.
type agentsServer struct {
	surgev1.UnimplementedAgentsServer
	f *fakeController
}

func (a agentsServer) List(context.Context, *surgev1.ListAgentsRequest) (*surgev1.ListAgentsResponse, error) {
	return &surgev1.ListAgentsResponse{Agents: a.f.agents}, nil
}

// start serves f on 127.0.0.1:0 until the test ends and returns its address.
func (f *fakeController) start(t *testing.T) string {
	t.Helper()
	srv := grpc.NewServer()
	surgev1.RegisterRunsServer(srv, f)
	surgev1.RegisterAgentsServer(srv, agentsServer{f: f})
	return serveGRPC(t, srv)
}

// serveGRPC runs srv on 127.0.0.1:0 until the test ends and returns its
// address.
func serveGRPC(t *testing.T, srv *grpc.Server) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(lis)
	}()
	t.Cleanup(func() {
		srv.Stop()
		<-done
	})
	return lis.Addr().String()
}

func progress(elapsedMs int64) *surgev1.Progress {
	return &surgev1.Progress{
		RunId: "r-1", Status: "running", ElapsedMs: elapsedMs, TotalMs: 2000,
		All: &surgev1.RegionProgress{Agents: 3, TargetRps: 10, AchievedRps: 9.5, ArrivalRps: 9.5, P50Us: 1234, P95Us: 5678, P99Us: 9012, Requests: 19, Failures: 1,
			ConnsOpen: 12, WsOpen: 40, SendLatenessP99Us: 870},
		Regions: []*surgev1.RegionProgress{
			{Region: "eu-west", Agents: 1, TargetRps: 4, AchievedRps: 4, P50Us: 1500, Requests: 8, ConnsOpen: 4, WsOpen: 40},
			{Region: "us-east", Agents: 2, TargetRps: 6, AchievedRps: 5.5, ArrivalRps: 5.5, P50Us: 1000, Requests: 11, Failures: 1,
				ConnsOpen: 8, SendLatenessP99Us: 870},
		},
		Thresholds: []*surgev1.ThresholdResult{{Metric: "http_req_duration", Expr: "p(95)<500", Ok: true, Value: 5.678}},
	}
}

func summary(status, verdict string, ok bool) *surgev1.RunSummary {
	return &surgev1.RunSummary{
		RunId: "r-1", PlanName: "smoke", Status: status, Verdict: verdict, DurationS: 2,
		StartedAtUnixMs: 1767225600000,
		All: &surgev1.Stats{Requests: 20, Failures: 1, Rps: 10,
			LatencyUs: &surgev1.LatencyStats{P50: 1234, P99: 9012}, Errors: map[string]int64{"5xx": 1}},
		Regions:      map[string]*surgev1.Stats{"us-east": {Requests: 12}, "eu-west": {Requests: 8}},
		RegionAgents: map[string]int64{"us-east": 2, "eu-west": 1},
		Thresholds:   []*surgev1.ThresholdResult{{Metric: "http_req_duration", Expr: "p(95)<500", Ok: ok, Value: 612}},
	}
}

// blockingWatch holds Watch open until block is closed or the client goes.
type blockingWatch struct {
	fakeController
	block chan struct{}
	on    sync.Once
	onc   chan struct{}
}

func (b *blockingWatch) start(t *testing.T) string {
	b.onc = make(chan struct{})
	srv := grpc.NewServer()
	surgev1.RegisterRunsServer(srv, b)
	return serveGRPC(t, srv)
}

func (b *blockingWatch) watching() bool {
	select {
	case <-b.onc:
		return true
	default:
		return false
	}
}

func (b *blockingWatch) Watch(_ *surgev1.WatchRequest, stream grpc.ServerStreamingServer[surgev1.RunUpdate]) error {
	b.on.Do(func() { close(b.onc) })
	select {
	case <-b.block:
	case <-stream.Context().Done():
	}
	return stream.Context().Err()
}
