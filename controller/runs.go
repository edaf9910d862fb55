package controller

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/big"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/surgeload/surge/cluster"
	"github.com/surgeload/surge/controller/aggregate"
	"github.com/surgeload/surge/controller/store"
	surgev1 "github.com/surgeload/surge/gen/surge/v1"
	"github.com/surgeload/surge/plan"
)

// maxPlanBytes bounds a submitted plan's YAML.
const maxPlanBytes = 4 << 20

// runsService implements the CLI's Runs service.
type runsService struct {
	surgev1.UnimplementedRunsServer
	c *Controller
}

func (c *Controller) lookupRun(id string) *run {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.runs[id]
}

// newRunID returns a sortable, unique id: UTC start time and 4 random hex
// digits, e.g. "20261126-122400-a1b2". Caller holds c.mu.
func (c *Controller) newRunID(now time.Time) (string, error) {
	for range 16 {
		var b [2]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", fmt.Errorf("run id: %w", err)
		}
		id := now.UTC().Format("20060102-150405") + "-" + hex.EncodeToString(b[:])
		if _, ok := c.runs[id]; ok {
			continue
		}
		if _, err := c.store.Get(id); err == nil {
			continue
		}
		return id, nil
	}
	return "", errors.New("run id: no unique id found")
}

// alignUp rounds t up to the next whole multiple of d since the Unix epoch.
func alignUp(t time.Time, d time.Duration) time.Time {
	ns := t.UnixNano()
	rem := ns % int64(d)
	if rem == 0 {
		return t
	}
	return time.Unix(0, ns-rem+int64(d))
}

func ratString(r *big.Rat) string {
	if r == nil {
		return ""
	}
	return r.Num().String() + "/" + r.Denom().String()
}

func shareProto(s plan.Share) *surgev1.Share {
	out := &surgev1.Share{}
	for _, sc := range s.Scenarios {
		out.Scenarios = append(out.Scenarios, &surgev1.ScenarioShare{
			Scenario:        sc.Scenario,
			SegmentFrom:     ratString(sc.From),
			SegmentTo:       ratString(sc.To),
			Arrivals:        sc.Arrivals,
			TotalArrivals:   sc.TotalArrivals,
			PreAllocatedVus: sc.PreAllocVUs,
			MaxVus:          sc.MaxVUs,
			Vus:             sc.VUs,
			StageTargets:    sc.StageTargets,
		})
	}
	out.Rps = s.RPS
	return out
}

// Submit parses and splits a plan, assigns every live agent its share, waits
// for all of them to accept and returns the run's id.
func (s *runsService) Submit(ctx context.Context, req *surgev1.SubmitRequest) (*surgev1.SubmitResponse, error) {
	c := s.c
	p, specs, planJSON, err := parseSubmission(req)
	if err != nil {
		return nil, err
	}
	shares, byID, err := c.splitLive(p)
	if err != nil {
		return nil, err
	}
	if err := checkMonitors(ctx, cmp.Or(req.GetFileName(), "plan.yaml"), p); err != nil {
		return nil, err
	}
	now := time.Now()
	r := c.newRun(p, now)
	r.planYAML, r.planJSON, r.specs = req.GetPlanYaml(), planJSON, specs
	resp := &surgev1.SubmitResponse{PlanName: p.Name, DurationMs: r.total.Milliseconds()}
	for _, sh := range shares {
		if len(sh.Scenarios) == 0 {
			continue // this agent takes part in no scenario
		}
		a := byID[sh.AgentID]
		off := a.offset()
		r.members[a.id] = &runAgent{id: a.id, region: a.region, conn: a, share: shareProto(sh), offsetNs: off,
			incarnation: a.incarnation, epoch: 1}
		r.order = append(r.order, a.id)
		resp.Agents = append(resp.Agents, &surgev1.AgentShareInfo{AgentId: a.id, Region: a.region, ClockOffsetUs: off / 1000})
	}
	if len(r.order) == 0 {
		return nil, status.Error(codes.FailedPrecondition, "the plan gives no agent any work")
	}
	if resp.RunId, err = c.startRun(r, now); err != nil {
		return nil, err
	}
	r.log.Info("run submitted", slog.String("plan", p.Name), slog.Int("agents", len(r.order)), slog.Time("start", r.start))

	select {
	case err := <-r.accepted:
		if err != nil {
			return nil, status.Error(codes.FailedPrecondition, err.Error())
		}
		return resp, nil
	case <-ctx.Done():
		return nil, status.FromContextError(ctx.Err()).Err()
	}
}

// parseSubmission reads a submitted plan: parsed, its thresholds, and its
// canonical JSON, or an InvalidArgument status naming what is wrong.
func parseSubmission(req *surgev1.SubmitRequest) (*plan.Plan, []plan.ThresholdSpec, []byte, error) {
	file := req.GetFileName()
	if file == "" {
		file = "plan.yaml"
	}
	if n := len(req.GetPlanYaml()); n > maxPlanBytes {
		return nil, nil, nil, status.Errorf(codes.InvalidArgument, "%s: plan is %d bytes, at most %d", file, n, maxPlanBytes)
	}
	p, err := plan.Parse(file, req.GetPlanYaml())
	if err != nil {
		return nil, nil, nil, status.Error(codes.InvalidArgument, err.Error())
	}
	for _, k := range slices.Sorted(maps.Keys(req.GetTags())) {
		if err := plan.CheckTag(k, req.GetTags()[k]); err != nil {
			return nil, nil, nil, status.Errorf(codes.InvalidArgument, "--tag %s=%s: %v", k, req.GetTags()[k], err)
		}
	}
	if p.Tags, err = plan.MergeTags(p.Tags, req.GetTags()); err != nil {
		return nil, nil, nil, status.Errorf(codes.InvalidArgument, "%s: tags with --tag: %v", file, err)
	}
	specs, err := p.ThresholdSpecs()
	if err != nil {
		return nil, nil, nil, status.Error(codes.InvalidArgument, err.Error())
	}
	planJSON, err := plan.MarshalCanonical(p)
	if err != nil {
		return nil, nil, nil, status.Errorf(codes.Internal, "submit: %v", err)
	}
	return p, specs, planJSON, nil
}

// splitLive splits p across the live agents, returning the shares and the
// agents by id; a FailedPrecondition status names the regions that have
// agents when the split fails.
func (c *Controller) splitLive(p *plan.Plan) ([]plan.Share, map[string]*agentConn, error) {
	live := c.liveAgents()
	infos := make([]plan.AgentInfo, len(live))
	byID := make(map[string]*agentConn, len(live))
	for i, a := range live {
		infos[i] = plan.AgentInfo{ID: a.id, Region: a.region, MaxRate: a.maxRate, MaxVUs: a.maxVUs}
		byID[a.id] = a
	}
	shares, err := plan.Split(p, infos)
	if err != nil {
		msg := err.Error()
		if len(live) > 0 {
			msg += fmt.Sprintf(" (regions with agents: %s)", strings.Join(regionsOf(live), ", "))
		}
		return nil, nil, status.Error(codes.FailedPrecondition, msg)
	}
	return shares, byID, nil
}

// newRun is a pending run of p submitted at now, without members: it
// starts on the first interval boundary after the start lead.
func (c *Controller) newRun(p *plan.Plan, now time.Time) *run {
	interval := p.Interval.D()
	if interval <= 0 {
		interval = plan.DefaultInterval.D()
	}
	var maxGraceful time.Duration
	for _, sc := range p.Scenarios {
		if sc != nil {
			maxGraceful = max(maxGraceful, sc.GracefulStop.D())
		}
	}
	total := p.TotalDuration()
	start := alignUp(now.Add(c.cfg.StartLead), interval)
	return &run{
		c:          c,
		planName:   p.Name,
		start:      start,
		interval:   interval,
		total:      total,
		deadline:   start.Add(total + maxGraceful + deadlineSlack),
		maxIdx:     int64((total+maxGraceful)/interval) + 1 + int64(deadlineSlack/interval),
		epoch:      1,
		members:    map[string]*runAgent{},
		plan:       p,
		onLoss:     p.OnAgentLoss,
		fencedLate: map[string]int64{},
		in:         make(chan runInput, 256),
		done:       make(chan struct{}),
		accepted:   make(chan error, 1),
		watchers:   map[chan *surgev1.Progress]struct{}{},
		phase:      phasePending,
	}
}

// startRun gives r its id and aggregation, registers it and starts its
// goroutine, returning the id.
func (c *Controller) startRun(r *run, now time.Time) (string, error) {
	agentRegions := make(map[string]string, len(r.members))
	for id, m := range r.members {
		agentRegions[id] = m.region
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopping || c.runsCtx == nil {
		return "", status.Error(codes.Unavailable, "controller is not running")
	}
	id, err := c.newRunID(now)
	if err != nil {
		return "", status.Errorf(codes.Internal, "submit: %v", err)
	}
	r.id = id
	r.log = c.log.With(slog.String("run", id))
	r.agg = aggregate.New(aggregate.Config{
		RunID:       id,
		Start:       r.start,
		Interval:    r.interval,
		MaxInterval: r.maxIdx,
		Epoch:       aggEpoch,
		Agents:      agentRegions,
		Thresholds:  r.specs,
		Saturation:  r.plan.Saturation,
	})
	c.runs[id] = r
	runsCtx := c.runsCtx
	c.runWG.Go(func() {
		defer c.removeRun(r)
		r.loop(runsCtx)
	})
	return id, nil
}

func (c *Controller) removeRun(r *run) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.runs[r.id] == r {
		delete(c.runs, r.id)
	}
}

// storedSummary returns a finished run's summary from the store.
func (c *Controller) storedSummary(id string) (*surgev1.RunSummary, error) {
	sr, err := c.store.Get(id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, status.Errorf(codes.NotFound, "run %q not found", id)
	}
	if err != nil {
		return nil, status.Errorf(codes.Internal, "%v", err)
	}
	if sr.Summary == nil {
		return &surgev1.RunSummary{RunId: sr.ID, PlanName: sr.PlanName, Status: sr.Status, Verdict: sr.Verdict,
			StartedAtUnixMs: sr.StartedAt.UnixMilli(), Tags: sr.Tags}, nil
	}
	return sr.Summary, nil
}

// summaryOf returns the final summary of an ended run, a live partial one
// of a running run, or the stored one.
func (c *Controller) summaryOf(ctx context.Context, id string) (*surgev1.RunSummary, error) {
	if id == "" {
		return nil, status.Error(codes.InvalidArgument, "run_id is required")
	}
	if r := c.lookupRun(id); r != nil {
		reply := make(chan *surgev1.RunSummary, 1)
		if r.deliver(ctx, summaryRequest{reply: reply}) {
			select {
			case sum := <-reply:
				return sum, nil
			case <-r.done: // ended before it read the request
			case <-ctx.Done():
				return nil, status.FromContextError(ctx.Err()).Err()
			}
		}
		if err := ctx.Err(); err != nil {
			return nil, status.FromContextError(err).Err()
		}
		select {
		case <-r.done:
		case <-ctx.Done():
			return nil, status.FromContextError(ctx.Err()).Err()
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		return proto.CloneOf(r.final), nil
	}
	return c.storedSummary(id)
}

// Get returns a run's summary (live and partial while it runs).
func (s *runsService) Get(ctx context.Context, req *surgev1.GetRunRequest) (*surgev1.RunSummary, error) {
	return s.c.summaryOf(ctx, req.GetRunId())
}

// Report returns a run's summary (live and partial while it runs).
func (s *runsService) Report(ctx context.Context, req *surgev1.ReportRequest) (*surgev1.RunSummary, error) {
	return s.c.summaryOf(ctx, req.GetRunId())
}

// List returns every stored run, newest first.
func (s *runsService) List(ctx context.Context, _ *surgev1.ListRunsRequest) (*surgev1.ListRunsResponse, error) {
	infos, err := s.c.store.List()
	if err != nil {
		return nil, status.Errorf(codes.Internal, "%v", err)
	}
	out := &surgev1.ListRunsResponse{}
	for _, in := range infos {
		out.Runs = append(out.Runs, &surgev1.RunInfo{
			RunId:           in.ID,
			PlanName:        in.PlanName,
			Status:          in.Status,
			StartedAtUnixMs: in.StartedAt.UnixMilli(),
			Verdict:         in.Verdict,
			Tags:            in.Tags,
		})
	}
	return out, nil
}

// Stop asks a run's agents to stop; the run is finalized as stopped.
func (s *runsService) Stop(ctx context.Context, req *surgev1.StopRunRequest) (*surgev1.StopRunResponse, error) {
	id := req.GetRunId()
	if id == "" {
		return nil, status.Error(codes.InvalidArgument, "run_id is required")
	}
	if r := s.c.lookupRun(id); r != nil {
		r.deliver(ctx, stopRequest{})
		return &surgev1.StopRunResponse{}, nil
	}
	if _, err := s.c.storedSummary(id); err != nil {
		return nil, err
	}
	return &surgev1.StopRunResponse{}, nil // already ended
}

// Watch streams a run's progress and then its summary.
func (s *runsService) Watch(req *surgev1.WatchRequest, stream surgev1.Runs_WatchServer) error {
	c := s.c
	id := req.GetRunId()
	if id == "" {
		return status.Error(codes.InvalidArgument, "run_id is required")
	}
	sendSummary := func(sum *surgev1.RunSummary) error {
		return stream.Send(&surgev1.RunUpdate{Update: &surgev1.RunUpdate_Summary{Summary: sum}})
	}
	r := c.lookupRun(id)
	if r == nil {
		sum, err := c.storedSummary(id)
		if err != nil {
			return err
		}
		return sendSummary(sum)
	}
	ch, unsubscribe := r.subscribe()
	defer unsubscribe()
	sendProgress := func(p *surgev1.Progress) error {
		return stream.Send(&surgev1.RunUpdate{Update: &surgev1.RunUpdate_Progress{Progress: p}})
	}
	for {
		select {
		case p := <-ch:
			if err := sendProgress(p); err != nil {
				return err
			}
		case <-r.done:
			for {
				select {
				case p := <-ch:
					if err := sendProgress(p); err != nil {
						return err
					}
					continue
				default:
				}
				break
			}
			r.mu.Lock()
			sum := r.final
			r.mu.Unlock()
			return sendSummary(sum)
		case <-stream.Context().Done():
			return status.FromContextError(stream.Context().Err()).Err()
		case <-c.handlersCtx.Done():
			return status.Error(codes.Unavailable, "controller is shutting down")
		}
	}
}

// agentsService implements Agents.
type agentsService struct {
	surgev1.UnimplementedAgentsServer
	c *Controller
}

// List returns connected agents and gossip members with the agent role that
// have no stream.
func (s *agentsService) List(ctx context.Context, _ *surgev1.ListAgentsRequest) (*surgev1.ListAgentsResponse, error) {
	c := s.c
	out := &surgev1.ListAgentsResponse{}
	seen := map[string]bool{}
	for _, a := range c.liveAgents() {
		a.mu.Lock()
		out.Agents = append(out.Agents, &surgev1.AgentInfo{
			Id:                a.id,
			Region:            a.region,
			Zone:              a.zone,
			Version:           a.version,
			Address:           a.addr,
			State:             "connected",
			ClockOffsetUs:     a.offsetNs / 1000,
			CpuPercent:        a.cpu,
			Runs:              append([]string(nil), a.runs...),
			ConnectedAtUnixMs: a.connectedAt.UnixMilli(),
		})
		a.mu.Unlock()
		seen[a.id] = true
	}
	c.mu.Lock()
	node := c.node
	c.mu.Unlock()
	if node != nil {
		for _, m := range node.Members() {
			if m.Meta.Role != cluster.RoleAgent || seen[m.Meta.ID] {
				continue
			}
			seen[m.Meta.ID] = true
			out.Agents = append(out.Agents, &surgev1.AgentInfo{
				Id:      m.Meta.ID,
				Region:  m.Meta.Region,
				Zone:    m.Meta.Zone,
				Version: m.Meta.Version,
				Address: m.Addr,
				State:   "gossip-only",
			})
		}
	}
	return out, nil
}
