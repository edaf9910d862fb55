package controller

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/surgeload/surge/internal/promapi"
	"github.com/surgeload/surge/plan"
)

// monitorSettle is how long after an interval's end its monitors are
// evaluated: the target's last scrape of the interval needs a moment to
// land in Prometheus.
const monitorSettle = 250 * time.Millisecond

// monitorClient is the Prometheus client of p's monitors.
func monitorClient(m *plan.Monitors) *promapi.Client {
	return &promapi.Client{URL: m.Prometheus, Header: m.Header(), HTTP: &http.Client{}}
}

// valueError: the query was answered, but not with one finite value.
type valueError struct{ msg string }

func (e *valueError) Error() string { return e.msg }

// monitorValue evaluates query at at: it must give exactly one finite
// value.
func monitorValue(ctx context.Context, c *promapi.Client, query string, at time.Time) (float64, error) {
	samples, err := c.Query(ctx, query, at)
	if err != nil {
		return 0, err
	}
	switch {
	case len(samples) == 0:
		return 0, &valueError{"no series (if absence means zero, add `or vector(0)`)"}
	case len(samples) > 1:
		return 0, &valueError{fmt.Sprintf("%d series, want one: aggregate them (sum, max or avg)", len(samples))}
	}
	v := samples[0].Value
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, &valueError{fmt.Sprintf("value %g, want a finite number", v)}
	}
	return v, nil
}

// checkMonitors evaluates every monitor of p once, now, so a run never
// starts with a monitor that cannot work: an unreachable Prometheus
// (FailedPrecondition), a query it refuses, or one without exactly one
// series (InvalidArgument), each named by its plan key.
func checkMonitors(ctx context.Context, file string, p *plan.Plan) error {
	if p.Monitors == nil {
		return nil
	}
	c := monitorClient(p.Monitors)
	ctx, cancel := context.WithTimeout(ctx, p.MonitorTimeout().D())
	defer cancel()
	now := time.Now()
	for _, name := range p.MonitorNames() {
		q, _ := p.MonitorQuery(name)
		_, err := monitorValue(ctx, c, q, now)
		var qe *promapi.QueryError
		var ve *valueError
		switch {
		case err == nil:
		case errors.As(err, &qe) || errors.As(err, &ve):
			return status.Errorf(codes.InvalidArgument, "%s: monitors.queries.%s: %q: %v", file, name, q, err)
		default:
			return status.Errorf(codes.FailedPrecondition, "%s: monitors.prometheus %s did not answer: %v", file, p.Monitors.Prometheus, err)
		}
	}
	return nil
}

// monitorIn is one interval's monitor values (or why each has none), from
// the run's sampler.
type monitorIn struct {
	interval int64
	values   map[string]float64
	errs     map[string]error
}

func (in monitorIn) apply(r *run, now time.Time) bool {
	for _, name := range r.plan.MonitorNames() {
		q, _ := r.plan.MonitorQuery(name)
		r.agg.SetMonitor(name, q, in.interval, in.values[name], in.errs[name])
	}
	r.monitored = max(r.monitored, in.interval+1)
	return r.checkEnd(now)
}

// sampleMonitors evaluates the run's monitors at the end of each interval
// (plus monitorSettle), from the first that ends in the future to the
// run's last, and hands each interval's values to the run. It returns when
// ctx ends (the run did) or after the last interval.
func (r *run) sampleMonitors(ctx context.Context) {
	c := monitorClient(r.plan.Monitors)
	timeout := r.plan.MonitorTimeout().D()
	first := max(int64(time.Since(r.start)/r.interval), 0)
	for i := first; i <= r.maxIdx; i++ {
		at := r.start.Add(time.Duration(i+1) * r.interval)
		t := time.NewTimer(time.Until(at.Add(monitorSettle)))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		in := monitorIn{interval: i, values: map[string]float64{}, errs: map[string]error{}}
		qctx, cancel := context.WithTimeout(ctx, timeout)
		for _, name := range r.plan.MonitorNames() {
			q, _ := r.plan.MonitorQuery(name)
			if v, err := monitorValue(qctx, c, q, at); err != nil {
				in.errs[name] = err
			} else {
				in.values[name] = v
			}
		}
		cancel()
		if ctx.Err() != nil || !r.deliver(ctx, in) {
			return
		}
	}
}

// monitorsPending: the run has monitors and the sample of an interval up to
// the last one with data is still due (its evaluation has not timed out),
// so the run waits for it before it ends.
func (r *run) monitorsPending(now time.Time) bool {
	if r.plan.Monitors == nil {
		return false
	}
	last := int64(r.agg.MeasuredDuration()/r.interval) - 1
	if last < 0 || r.monitored > last {
		return false
	}
	due := r.start.Add(time.Duration(last+1)*r.interval + monitorSettle + r.plan.MonitorTimeout().D() + time.Second)
	return now.Before(due)
}
