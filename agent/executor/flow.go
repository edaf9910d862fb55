package executor

import (
	"context"
	"crypto/tls"
	"fmt"
	"math/big"
	"math/rand/v2"
	"net"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/surgeload/surge/agent/httpclient"
	"github.com/surgeload/surge/agent/wsclient"
	"github.com/surgeload/surge/hist"
	"github.com/surgeload/surge/plan"
)

// IterationOptions configure PlanIteration.
type IterationOptions struct {
	// Client is the scenario's HTTP client; each VU takes a Session of it.
	Client *httpclient.Client
	// Retries says the client retries: each attempt's duration is then
	// recorded (http_req_attempt).
	Retries bool
	Rec     *ScenarioRecorder
	// Clock: nil uses RealClock.
	Clock Clock
	// Region expands {{region}}.
	Region string
	// Env looks up {{env "NAME"}} on this agent; nil: none is set.
	Env func(string) (string, bool)
	// Seed seeds flow choice, think times, {{rand_int}} and random feeder
	// rows (see Seed).
	Seed uint64
	// Data are the plan's feeders, read by {{data "NAME" "column"}}.
	Data map[string]*plan.Feeder
	// Segment is the start of this share's segment of the scenario (a
	// rational such as "1/3"; empty is 0): sequential and unique-per-vu
	// feeders start at that fraction of their rows, so agents walk
	// different rows.
	Segment string
	// WSDial opens the TCP connections of websocket steps' handshakes
	// (ws:// and wss://); it should enforce the agent's allow-list. nil
	// allows loopback IP addresses only.
	WSDial func(ctx context.Context, network, addr string) (net.Conn, error)
	// WSTLS configures wss:// connections; nil uses the system roots.
	WSTLS *tls.Config
}

type stepKind int

const (
	stepRequest stepKind = iota
	stepThink
	stepBatch
	stepWebSocket
)

type compiledStep struct {
	kind  stepKind
	reqs  []*httpclient.Request // one for stepRequest
	think *plan.Dist
	ws    *wsStep // stepWebSocket
}

type compiledFlow struct {
	name  string
	cum   float64 // cumulative weight, for choice
	steps []compiledStep
}

// feed is one feeder a scenario reads.
type feed struct {
	name   string
	f      *plan.Feeder
	cols   map[string]int
	offset int
	seq    atomic.Uint64 // sequential: the next row, counted from offset
}

// scenarioFeeds returns the feeders the scenario's templates read, each
// with its starting row for the segment.
func scenarioFeeds(sc *plan.Scenario, data map[string]*plan.Feeder, segment string) ([]*feed, error) {
	var feeds []*feed
	seen := map[string]bool{}
	from := new(big.Rat)
	if segment != "" {
		if _, ok := from.SetString(segment); !ok {
			return nil, fmt.Errorf("feeders: invalid segment %q", segment)
		}
	}
	var texts []string
	for _, r := range sc.AllRequests() {
		texts = append(texts, r.URL, r.Body)
		for _, h := range r.Headers {
			texts = append(texts, h)
		}
	}
	texts = append(texts, webSocketTemplates(sc)...)
	for _, t := range texts {
		parts, err := plan.ParseTemplate(t)
		if err != nil {
			return nil, err
		}
		for _, p := range parts {
			if p.Func != "data" || seen[p.Args[0]] {
				continue
			}
			seen[p.Args[0]] = true
			f := data[p.Args[0]]
			if f == nil || f.Inline == nil || len(f.Inline.Rows) == 0 {
				return nil, fmt.Errorf("feeder %q has no rows on this agent", p.Args[0])
			}
			fd := &feed{name: p.Args[0], f: f, cols: map[string]int{}}
			for i, c := range f.Inline.Columns {
				fd.cols[c] = i
			}
			off := new(big.Rat).Mul(from, big.NewRat(int64(len(f.Inline.Rows)), 1))
			fd.offset = int(new(big.Int).Quo(off.Num(), off.Denom()).Int64())
			feeds = append(feeds, fd)
		}
	}
	sort.Slice(feeds, func(i, j int) bool { return feeds[i].name < feeds[j].name })
	return feeds, nil
}

// PlanIteration returns the IterFunc of a scenario: each iteration picks a
// flow by weight and runs its steps: requests in order, think times, and
// batches sent in parallel. Templates are compiled here, once. The first
// request of an iteration (every request of a leading batch) is measured
// from the intended time when there is one (open model: no coordinated
// omission). Series carry the flow's name; requests interrupted by ctx are
// not recorded. A VU runs the scenario's on_start before its first
// iteration (see vuFuncs).
func PlanIteration(sc *plan.Scenario, o IterationOptions) (IterFunc, error) {
	fns, err := planIteration(sc, o)
	return fns.iterate, err
}

// WarmFunc opens a VU's connections ahead of its first iteration (see
// Scenario.Warm).
type WarmFunc func(ctx context.Context, vu int64)

// RetireFunc ends a VU (see Scenario.Retire).
type RetireFunc func(ctx context.Context, vu int64)

// vuFuncs are what a scenario's executor calls for its VUs.
type vuFuncs struct {
	iterate IterFunc
	// warm runs the VU's on_start, or opens its connection for the first
	// request of every flow.
	warm WarmFunc
	// retire runs the VU's on_stop and drops its connections, cookies and
	// values.
	retire RetireFunc
}

// planIteration is PlanIteration, with the scenario's other VU functions.
func planIteration(sc *plan.Scenario, o IterationOptions) (vuFuncs, error) {
	if o.Clock == nil {
		o.Clock = RealClock{}
	}
	c, err := compileFlows(sc, &o)
	if err != nil {
		return vuFuncs{}, err
	}
	feeds, err := scenarioFeeds(sc, o.Data, o.Segment)
	if err != nil {
		return vuFuncs{}, fmt.Errorf("data: %w", err)
	}
	vus := &vuTable{o: o, feeds: feeds, extract: c.extract}
	it := &iteration{o: o, now: o.Clock.Now}
	return vuFuncs{
		iterate: func(ctx context.Context, vu int64, intended time.Time) bool {
			st := vus.get(vu)
			if !st.started {
				switch it.lifecycle(ctx, st, c.start, intended) {
				case stepCut:
					return false
				case stepStop:
					return true // the VU tries on_start again at its next iteration
				}
				intended = time.Time{} // on_start answered for the arrival's lateness
			}
			st.iter++
			st.vars.Iter = st.iter
			if st.vals != nil {
				st.vals.endIteration()
			}
			pickRows(st, feeds, vu)
			return it.flow(ctx, st, c.pick(st.rng), intended) != stepCut
		},
		warm: func(ctx context.Context, vu int64) {
			st := vus.get(vu)
			if c.start != nil {
				it.lifecycle(ctx, st, c.start, time.Time{})
				return
			}
			if st.sess == nil {
				return
			}
			for _, r := range c.firsts() {
				_ = st.sess.Warm(ctx, r) // a failure shows on the first send
			}
		},
		retire: func(ctx context.Context, vu int64) {
			st := vus.take(vu)
			if st == nil {
				return
			}
			if c.stop != nil && st.started {
				it.flow(ctx, st, c.stop, time.Time{})
			}
			if st.sess != nil {
				st.sess.Close()
			}
		},
	}, nil
}

// lifecycle runs on_start (f, nil when the scenario has none) for the VU
// and marks it started when it ran to its end.
func (it *iteration) lifecycle(ctx context.Context, st *vuState, f *compiledFlow, intended time.Time) stepResult {
	if f == nil {
		st.started = true
		return stepDone
	}
	r := it.flow(ctx, st, f, intended)
	st.started = r == stepDone
	return r
}

// compiled are a scenario's flows, compiled.
type compiled struct {
	flows       []compiledFlow // sorted by name
	total       float64        // the flows' total weight
	start, stop *compiledFlow  // on_start and on_stop; nil without
	extract     bool           // a request extracts values
}

// pick chooses a flow by weight.
func (c *compiled) pick(rng *rand.Rand) *compiledFlow {
	if len(c.flows) == 1 {
		return &c.flows[0]
	}
	x := rng.Float64() * c.total
	i := sort.Search(len(c.flows), func(i int) bool { return c.flows[i].cum > x })
	return &c.flows[min(i, len(c.flows)-1)]
}

// firsts are the first request(s) of each flow.
func (c *compiled) firsts() []*httpclient.Request {
	var firsts []*httpclient.Request
	for _, f := range c.flows {
		for _, st := range f.steps {
			if st.kind == stepRequest || st.kind == stepBatch {
				firsts = append(firsts, st.reqs...)
				break
			}
		}
	}
	return firsts
}

// compileFlows prepares the scenario's flows, sorted by name, each with its
// cumulative weight, and its on_start and on_stop.
func compileFlows(sc *plan.Scenario, o *IterationOptions) (*compiled, error) {
	flows := sc.FlowList()
	names := make([]string, 0, len(flows))
	for n := range flows {
		names = append(names, n)
	}
	sort.Strings(names)
	c := &compiled{}
	var wsc *wsclient.Client // made by the first websocket step
	for _, name := range names {
		f := flows[name]
		steps, err := compileSteps(o, name, f.Steps, &wsc)
		if err != nil {
			return nil, fmt.Errorf("flow %s: %w", name, err)
		}
		w := f.Weight
		if w <= 0 {
			w = 1
		}
		c.total += w
		c.flows = append(c.flows, compiledFlow{name: name, steps: steps, cum: c.total})
	}
	for _, lf := range []struct {
		name string
		f    *plan.Flow
		into **compiledFlow
	}{{plan.OnStartFlow, sc.OnStart, &c.start}, {plan.OnStopFlow, sc.OnStop, &c.stop}} {
		if lf.f == nil {
			continue
		}
		steps, err := compileSteps(o, lf.name, lf.f.Steps, &wsc)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", lf.name, err)
		}
		*lf.into = &compiledFlow{name: lf.name, steps: steps}
	}
	for _, r := range sc.AllRequests() {
		c.extract = c.extract || len(r.Extract) > 0
	}
	return c, nil
}

// compileSteps prepares the steps of the flow name.
func compileSteps(o *IterationOptions, name string, steps []plan.Step, wsc **wsclient.Client) ([]compiledStep, error) {
	var out []compiledStep
	for _, st := range steps {
		switch {
		case st.Request != nil:
			r, err := httpclient.Prepare(*st.Request)
			if err != nil {
				return nil, err
			}
			out = append(out, compiledStep{kind: stepRequest, reqs: []*httpclient.Request{r}})
		case st.Think != nil:
			out = append(out, compiledStep{kind: stepThink, think: st.Think})
		case len(st.Batch) > 0:
			cs := compiledStep{kind: stepBatch}
			for _, br := range st.Batch {
				r, err := httpclient.Prepare(br)
				if err != nil {
					return nil, fmt.Errorf("batch: %w", err)
				}
				cs.reqs = append(cs.reqs, r)
			}
			out = append(out, cs)
		case st.WebSocket != nil:
			cs, err := compileWebSocket(o, name, st.WebSocket, wsc)
			if err != nil {
				return nil, err
			}
			out = append(out, cs)
		}
	}
	return out, nil
}

// feedLookup reads a column of the VU's current row of a feeder.
func feedLookup(st *vuState, feeds []*feed) func(name, column string) (string, bool) {
	return func(name, column string) (string, bool) {
		for i, fd := range feeds {
			if fd.name == name {
				c, ok := fd.cols[column]
				if !ok {
					return "", false
				}
				return fd.f.Inline.Rows[st.rows[i]][c], true
			}
		}
		return "", false
	}
}

// pickRows chooses the VU's row of every feeder for its next iteration.
func pickRows(st *vuState, feeds []*feed, vu int64) {
	for i, fd := range feeds {
		n := len(fd.f.Inline.Rows)
		rnd := 0
		if fd.f.Mode == plan.FeedRandom {
			rnd = st.rng.IntN(n)
		}
		var seq uint64
		if fd.f.Mode == plan.FeedSequential || fd.f.Mode == "" {
			seq = fd.seq.Add(1) - 1
		}
		st.rows[i] = plan.FeederRow(fd.f.Mode, n, seq, vu, fd.offset, rnd)
	}
}

// stepResult is how a step ended.
type stepResult int

const (
	stepDone stepResult = iota
	// stepStop: an extraction found nothing; the iteration ends here.
	stepStop
	// stepCut: ctx interrupted the step.
	stepCut
)

// flow runs the steps of f; the first request's latency counts from
// intended. It ends early when a step does not end stepDone.
func (it *iteration) flow(ctx context.Context, st *vuState, f *compiledFlow, intended time.Time) stepResult {
	first := true
	for _, step := range f.steps {
		from := time.Time{}
		if first {
			from = intended
		}
		r := stepDone
		switch step.kind {
		case stepRequest:
			first = false
			r = it.send(ctx, st.sess, st.vals, f.name, step.reqs[0], &st.vars, from)
		case stepBatch:
			first = false
			r = it.batch(ctx, st, f.name, step.reqs, from)
		case stepThink:
			if !it.think(ctx, step.think, st.rng) {
				r = stepCut
			}
		case stepWebSocket:
			first = false
			if !it.websocket(ctx, f.name, step.ws, &st.vars, from) {
				r = stepCut
			}
		}
		if r != stepDone {
			return r
		}
	}
	return stepDone
}

type iteration struct {
	o IterationOptions
	// now is o.Clock.Now, made once: a method value of an interface
	// allocates each time it is made.
	now func() time.Time
}

// send sends one request on the VU's session, records it and stores what
// it extracted in vals (nil when nothing extracts).
func (it *iteration) send(ctx context.Context, sess *httpclient.Session, vals *values, flow string, r *httpclient.Request, v *httpclient.Vars, intended time.Time) stepResult {
	res := sess.Do(ctx, r, v, it.now)
	if res.Err != nil && ctx.Err() != nil {
		return stepCut
	}
	from := res.Sent
	if !intended.IsZero() {
		from = intended
	}
	latency := res.End.Sub(from)
	cn := hist.Counters{Requests: 1, Retries: int64(res.Retries), BytesIn: res.BytesIn, BytesOut: res.BytesOut}
	if res.Failed() {
		cn.Failures = 1
	}
	out := stepDone
	if r.Extracts() {
		var xbuf [4]httpclient.Extracted
		xs, ok := r.Extract(&res, xbuf[:0])
		vals.set(xs, flow)
		if !ok {
			cn.ExtractFailed, out = 1, stepStop
		}
	}
	var buf [8]httpclient.CheckResult
	it.o.Rec.Result(flow, r.Name, latency, &res, cn, it.o.Retries, r.Check(&res, latency, v, buf[:0]))
	return out
}

// batch sends reqs in parallel on the VU's session and waits for all of
// them; it ends as the worst of them did.
func (it *iteration) batch(ctx context.Context, st *vuState, flow string, reqs []*httpclient.Request, intended time.Time) stepResult {
	var wg sync.WaitGroup
	results := make([]stepResult, len(reqs))
	for i, r := range reqs {
		vc := st.vars // each request expands from its own copy; Rand is shared
		vc.Rand = rand.New(rand.NewPCG(st.vars.Rand.Uint64(), uint64(i)))
		wg.Go(func() { results[i] = it.send(ctx, st.sess, st.vals, flow, r, &vc, intended) })
	}
	wg.Wait()
	return slices.Max(results)
}

// think waits a duration drawn from d; false when ctx ended first.
func (it *iteration) think(ctx context.Context, d *plan.Dist, rng *rand.Rand) bool {
	w := d.Sample(rng)
	if w <= 0 {
		return ctx.Err() == nil
	}
	tm := it.o.Clock.NewTimer(w)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-tm.C():
		return true
	}
}
