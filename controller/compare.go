package controller

import (
	"context"
	"errors"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/surgeload/surge/controller/report"
	"github.com/surgeload/surge/controller/store"
	surgev1 "github.com/surgeload/surge/gen/surge/v1"
	"github.com/surgeload/surge/plan"
)

// maxBaselineRows bounds a Compare request's production figures.
const maxBaselineRows = 10000

// runData loads a stored run for comparison and HDR logs. A run still in
// progress has nothing stored to compare yet.
func (c *Controller) runData(id string) (*report.RunData, error) {
	if id == "" {
		return nil, status.Error(codes.InvalidArgument, "run id is required")
	}
	sr, err := c.store.Get(id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, status.Errorf(codes.NotFound, "run %q not found", id)
	}
	if err != nil {
		return nil, status.Errorf(codes.Internal, "%v", err)
	}
	if sr.Status == store.StatusRunning || sr.Summary == nil {
		return nil, status.Errorf(codes.FailedPrecondition, "run %q has not ended yet", id)
	}
	d := &report.RunData{
		ID:        sr.ID,
		Start:     sr.StartedAt,
		Duration:  time.Duration(sr.Summary.GetDurationS() * float64(time.Second)),
		Interval:  plan.DefaultInterval.D(),
		Whole:     sr.Series,
		Scenarios: sr.Scenarios,
		Monitors:  sr.Summary.GetMonitors(),
	}
	if p, err := plan.Parse("plan.yaml", sr.PlanYAML); err == nil && p.Interval > 0 {
		d.Interval = p.Interval.D()
	}
	if d.Intervals, err = c.storedIntervals(id); err != nil {
		return nil, status.Errorf(codes.Internal, "%v", err)
	}
	return d, nil
}

// storedIntervals returns a run's per-interval merged series from the store;
// nil for a run stored without them.
func (c *Controller) storedIntervals(id string) ([]report.Interval, error) {
	recs, err := c.store.Intervals(id)
	if err != nil {
		return nil, err
	}
	out := make([]report.Interval, 0, len(recs))
	for _, r := range recs {
		out = append(out, report.Interval{Index: r.Index, Start: r.Start, Regions: r.Regions, Scenarios: r.Scenarios})
	}
	return out, nil
}

// Compare compares two stored runs, or a stored run with production
// figures, from their stored histograms.
func (s *runsService) Compare(ctx context.Context, req *surgev1.CompareRequest) (*surgev1.CompareResponse, error) {
	opts := report.CompareOptions{
		Tolerance: req.GetTolerance(),
		By:        req.GetBy(),
		Window:    time.Duration(req.GetWindowMs()) * time.Millisecond,
	}
	if n := len(req.GetBaseline()); n > maxBaselineRows {
		return nil, status.Errorf(codes.InvalidArgument, "baseline has %d rows, at most %d", n, maxBaselineRows)
	}
	b, err := s.c.runData(req.GetRunB())
	if err != nil {
		return nil, err
	}
	if req.GetJudge() != nil && req.GetRunA() == "" {
		return nil, status.Error(codes.InvalidArgument, "compare: the judge needs two runs' distributions; a baseline has only figures")
	}
	var resp *surgev1.CompareResponse
	monitorsA := req.GetBaselineMonitors()
	if req.GetRunA() == "" && len(req.GetBaseline()) > 0 {
		resp, err = report.CompareBaseline(req.GetBaseline(), b, opts)
	} else {
		var a *report.RunData
		if a, err = s.c.runData(req.GetRunA()); err != nil {
			return nil, err
		}
		monitorsA = a.Monitors
		if resp, err = report.Compare(a, b, opts); err == nil && req.GetJudge() != nil {
			resp.Judgement, err = report.Judge(a, b, opts.By, req.GetJudge())
		}
	}
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "compare: %v", err)
	}
	resp.Metrics = append(resp.Metrics, report.MonitorDiffs(monitorsA, b.Monitors)...)
	return resp, nil
}

// Histograms streams a stored run's latency (or service, or HTTP phase)
// histograms, one frame per interval (and region), in the standard V2
// encoding.
func (s *runsService) Histograms(req *surgev1.HistogramsRequest, stream surgev1.Runs_HistogramsServer) error {
	d, err := s.c.runData(req.GetRunId())
	if err != nil {
		return err
	}
	frames, err := report.Frames(d, req.GetByRegion(), req.GetMetric())
	if err != nil {
		return status.Errorf(codes.InvalidArgument, "histograms: %v", err)
	}
	for _, f := range frames {
		if err := stream.Send(f); err != nil {
			return err
		}
	}
	return nil
}
