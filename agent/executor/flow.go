package executor

import (
	"context"
	"crypto/tls"
	"fmt"
	"math/big"
	"math/rand/v2"
	"net"
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

// vuState is one VU's iteration counter and random stream; a VU runs one
// iteration at a time, so it needs no lock.
type vuState struct {
	iter int64
	rng  *rand.Rand
	vars httpclient.Vars
	rows []int // the iteration's row of each feeder in use
	// sess holds the VU's connections (reuse: per-vu) or borrows the
	// scenario's pool.
	sess *httpclient.Session
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
// not recorded.
func PlanIteration(sc *plan.Scenario, o IterationOptions) (IterFunc, error) {
	iter, _, err := planIteration(sc, o)
	return iter, err
}

// WarmFunc opens a VU's connections ahead of its first iteration (see
// Scenario.Warm).
type WarmFunc func(ctx context.Context, vu int64)

// planIteration is PlanIteration, with the scenario's WarmFunc: it opens
// the VU's connection for the first request of every flow.
func planIteration(sc *plan.Scenario, o IterationOptions) (IterFunc, WarmFunc, error) {
	if o.Clock == nil {
		o.Clock = RealClock{}
	}
	compiled, total, err := compileFlows(sc, &o)
	if err != nil {
		return nil, nil, err
	}
	feeds, err := scenarioFeeds(sc, o.Data, o.Segment)
	if err != nil {
		return nil, nil, fmt.Errorf("data: %w", err)
	}
	state := vuStates(o, feeds)
	it := &iteration{o: o, now: o.Clock.Now}
	firsts := firstRequests(compiled)
	warm := func(ctx context.Context, vu int64) {
		st := state(vu)
		if st.sess == nil {
			return
		}
		for _, r := range firsts {
			_ = st.sess.Warm(ctx, r) // a failure shows on the first send
		}
	}
	return func(ctx context.Context, vu int64, intended time.Time) bool {
		st := state(vu)
		st.iter++
		st.vars.Iter = st.iter
		pickRows(st, feeds, vu)
		f := &compiled[0]
		if len(compiled) > 1 {
			x := st.rng.Float64() * total
			i := sort.Search(len(compiled), func(i int) bool { return compiled[i].cum > x })
			f = &compiled[min(i, len(compiled)-1)]
		}
		return it.flow(ctx, st, f, intended)
	}, warm, nil
}

// compileFlows prepares the scenario's flows, sorted by name, each with its
// cumulative weight, and returns them with the total weight.
func compileFlows(sc *plan.Scenario, o *IterationOptions) ([]compiledFlow, float64, error) {
	flows := sc.FlowList()
	names := make([]string, 0, len(flows))
	for n := range flows {
		names = append(names, n)
	}
	sort.Strings(names)
	var compiled []compiledFlow
	var total float64
	var wsc *wsclient.Client // made by the first websocket step
	for _, name := range names {
		f := flows[name]
		steps, err := compileSteps(o, name, f.Steps, &wsc)
		if err != nil {
			return nil, 0, fmt.Errorf("flow %s: %w", name, err)
		}
		w := f.Weight
		if w <= 0 {
			w = 1
		}
		total += w
		compiled = append(compiled, compiledFlow{name: name, steps: steps, cum: total})
	}
	return compiled, total, nil
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

// vuStates returns the state of a VU by id, made on its first use.
func vuStates(o IterationOptions, feeds []*feed) func(vu int64) *vuState {
	var vus sync.Map // VU id → *vuState
	return func(vu int64) *vuState {
		if v, ok := vus.Load(vu); ok {
			return v.(*vuState)
		}
		seed := o.Seed ^ uint64(vu)*0x9e3779b97f4a7c15
		st := &vuState{rng: rand.New(rand.NewPCG(seed, uint64(vu)))}
		st.vars = httpclient.Vars{VU: vu, Region: o.Region, Now: o.Clock.Now, Rand: st.rng, Env: o.Env}
		if o.Client != nil {
			st.sess = o.Client.Session()
		}
		if len(feeds) > 0 {
			st.rows = make([]int, len(feeds))
			st.vars.Data = feedLookup(st, feeds)
		}
		v, loaded := vus.LoadOrStore(vu, st)
		if loaded && st.sess != nil {
			st.sess.Close()
		}
		return v.(*vuState)
	}
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

// firstRequests are the first request(s) of each flow.
func firstRequests(compiled []compiledFlow) []*httpclient.Request {
	var firsts []*httpclient.Request
	for _, f := range compiled {
		for _, st := range f.steps {
			if st.kind == stepRequest || st.kind == stepBatch {
				firsts = append(firsts, st.reqs...)
				break
			}
		}
	}
	return firsts
}

// flow runs the steps of f; the first request's latency counts from
// intended. It is false when ctx interrupted a step.
func (it *iteration) flow(ctx context.Context, st *vuState, f *compiledFlow, intended time.Time) bool {
	first := true
	for _, step := range f.steps {
		from := time.Time{}
		if first {
			from = intended
		}
		switch step.kind {
		case stepRequest:
			first = false
			if !it.send(ctx, st.sess, f.name, step.reqs[0], &st.vars, from) {
				return false
			}
		case stepBatch:
			first = false
			if !it.batch(ctx, st.sess, f.name, step.reqs, &st.vars, from) {
				return false
			}
		case stepThink:
			if !it.think(ctx, step.think, st.rng) {
				return false
			}
		case stepWebSocket:
			first = false
			if !it.websocket(ctx, f.name, step.ws, &st.vars, from) {
				return false
			}
		}
	}
	return true
}

type iteration struct {
	o IterationOptions
	// now is o.Clock.Now, made once: a method value of an interface
	// allocates each time it is made.
	now func() time.Time
}

// send sends one request on the VU's session and records it; false when
// ctx interrupted it.
func (it *iteration) send(ctx context.Context, sess *httpclient.Session, flow string, r *httpclient.Request, v *httpclient.Vars, intended time.Time) bool {
	res := sess.Do(ctx, r, v, it.now)
	if res.Err != nil && ctx.Err() != nil {
		return false
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
	var buf [8]httpclient.CheckResult
	it.o.Rec.Result(flow, r.Name, latency, &res, cn, it.o.Retries, r.Check(&res, latency, buf[:0]))
	return true
}

// batch sends reqs in parallel on the VU's session and waits for all of
// them.
func (it *iteration) batch(ctx context.Context, sess *httpclient.Session, flow string, reqs []*httpclient.Request, v *httpclient.Vars, intended time.Time) bool {
	var wg sync.WaitGroup
	ok := make([]bool, len(reqs))
	for i, r := range reqs {
		vc := *v // each request expands from its own copy; Rand is shared
		vc.Rand = rand.New(rand.NewPCG(v.Rand.Uint64(), uint64(i)))
		wg.Go(func() { ok[i] = it.send(ctx, sess, flow, r, &vc, intended) })
	}
	wg.Wait()
	for _, x := range ok {
		if !x {
			return false
		}
	}
	return true
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
