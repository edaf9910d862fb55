package executor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/surgeload/surge/agent/httpclient"
	"github.com/surgeload/surge/plan"
)

// ShareOptions configure RunShare.
type ShareOptions struct {
	Plan  *plan.Plan
	Share plan.Share
	// Client is the base of each scenario's HTTP client (allow-list,
	// resolver, the agent's connection gauge); BuildScenarios adds the
	// scenario's connection, retry, peak VUs, seed and counters.
	Client   httpclient.Options
	Recorder *Recorder
	// Clock: nil uses RealClock.
	Clock  Clock
	Logger *slog.Logger
	// PacingSpin is every scenario's PacingSpin.
	PacingSpin time.Duration
	// RunID seeds the random processes (see Seed); Region expands
	// {{region}}; Env looks up {{env "NAME"}}.
	RunID  string
	Region string
	Env    func(string) (string, bool)
	// Adjust, if set, sees each scenario after it is built and before it
	// runs: the agent wraps iterations in its pause gate and sets pacers for
	// takeover parts there.
	Adjust func(*Scenario)
}

// RunShare runs every scenario of the share in parallel from start and
// returns when all have ended (or ctx ended and they stopped).
func RunShare(ctx context.Context, start time.Time, o ShareOptions) error {
	scens, err := BuildScenarios(o)
	if err != nil {
		return err
	}
	return RunScenarios(ctx, start, scens)
}

// BuildScenarios builds the runnable scenarios of a share: one per
// scenario share, with its iteration function, seed and recorder.
func BuildScenarios(o ShareOptions) ([]*Scenario, error) {
	if o.Clock == nil {
		o.Clock = RealClock{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	var scens []*Scenario
	fail := func(err error) ([]*Scenario, error) {
		for _, s := range scens {
			s.client.Close()
		}
		return nil, err
	}
	for _, ss := range o.Share.Scenarios {
		sc := o.Plan.Scenarios[ss.Scenario]
		if sc == nil {
			return fail(fmt.Errorf("run share: scenario %q is not in the plan", ss.Scenario))
		}
		rec := o.Recorder.Scenario(ss.Scenario)
		seed := Seed(o.RunID, ss.Scenario, ss.SegmentFrom())
		co := o.Client
		co.Conn, co.Retry, co.Seed = sc.Connection, sc.Retry, seed
		co.PeakVUs = int(min(PeakVUs(o.Plan, plan.Share{Scenarios: []plan.ScenarioShare{ss}}), 1<<20))
		co.Stats = &httpclient.ConnStats{}
		client, err := httpclient.New(co)
		if err != nil {
			return fail(fmt.Errorf("run share: scenario %s: %w", ss.Scenario, err))
		}
		rec.SetConnStats(co.Stats)
		fns, err := planIteration(sc, IterationOptions{
			Client: client, Retries: sc.Retry != nil && sc.Retry.Attempts > 1,
			Rec: rec, Clock: o.Clock, Region: o.Region, Env: o.Env, Seed: seed,
			Data: o.Plan.Data, Segment: ss.SegmentFrom(),
			WSDial: client.DialContext, WSTLS: client.TLSConfig(),
		})
		if err != nil {
			client.Close()
			return fail(fmt.Errorf("run share: scenario %s: %w", ss.Scenario, err))
		}
		s := &Scenario{
			Name:       ss.Scenario,
			Plan:       sc,
			Share:      ss,
			Seed:       seed,
			Iterate:    fns.iterate,
			Warm:       fns.warm,
			Retire:     fns.retire,
			Rec:        rec,
			Clock:      o.Clock,
			PacingSpin: o.PacingSpin,
			Logger:     o.Logger.With("scenario", ss.Scenario),
			client:     client,
		}
		if o.Adjust != nil {
			o.Adjust(s)
		}
		scens = append(scens, s)
	}
	return scens, nil
}

// RunScenarios runs scenarios in parallel from start and returns when all
// have ended (or ctx ended and they stopped), with their errors joined.
func RunScenarios(ctx context.Context, start time.Time, scens []*Scenario) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, s := range scens {
		wg.Go(func() {
			if err := s.Run(ctx, start); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}
