package executor

import (
	"math/rand/v2"
	"sync"

	"github.com/surgeload/surge/agent/httpclient"
	"github.com/surgeload/surge/plan"
)

// vuState is one VU's iteration counter, random stream, connections and
// values; a VU runs one iteration at a time, so it needs no lock.
type vuState struct {
	iter int64
	rng  *rand.Rand
	vars httpclient.Vars
	rows []int // the iteration's row of each feeder in use
	// sess holds the VU's connections (reuse: per-vu) or borrows the
	// scenario's pool, and its cookie jar.
	sess *httpclient.Session
	// vals are the values its steps extracted; nil when none extracts.
	vals *values
	// started: its on_start ran to its end (or it has none).
	started bool
}

// vuTable holds the scenario's VUs by id: each made on its first use and
// dropped, with its connections, cookies and values, when it ends.
type vuTable struct {
	o       IterationOptions
	feeds   []*feed
	extract bool // a step extracts values
	vus     sync.Map
}

// get returns the VU's state, made on its first use.
func (t *vuTable) get(vu int64) *vuState {
	if v, ok := t.vus.Load(vu); ok {
		return v.(*vuState)
	}
	o := t.o
	seed := o.Seed ^ uint64(vu)*0x9e3779b97f4a7c15
	st := &vuState{rng: rand.New(rand.NewPCG(seed, uint64(vu)))}
	st.vars = httpclient.Vars{VU: vu, Region: o.Region, Now: o.Clock.Now, Rand: st.rng, Env: o.Env}
	if o.Client != nil {
		st.sess = o.Client.Session()
	}
	if len(t.feeds) > 0 {
		st.rows = make([]int, len(t.feeds))
		st.vars.Data = feedLookup(st, t.feeds)
	}
	if t.extract {
		st.vals = &values{}
		st.vars.Var = st.vals.get
	}
	v, loaded := t.vus.LoadOrStore(vu, st)
	if loaded && st.sess != nil {
		st.sess.Close()
	}
	return v.(*vuState)
}

// take removes the VU's state and returns it; nil if it never ran.
func (t *vuTable) take(vu int64) *vuState {
	v, ok := t.vus.LoadAndDelete(vu)
	if !ok {
		return nil
	}
	return v.(*vuState)
}

// values are a VU's extracted values: its iteration's and those that last
// its life. A batch's requests set them in parallel, hence the lock.
type values struct {
	mu   sync.Mutex
	iter map[string]string
	vu   map[string]string
}

// get returns the named value: the iteration's, else the VU's.
func (v *values) get(name string) (string, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if x, ok := v.iter[name]; ok {
		return x, true
	}
	x, ok := v.vu[name]
	return x, ok
}

// set stores what a request of the step sequence flow extracted, each in
// its scope.
func (v *values) set(xs []httpclient.Extracted, flow string) {
	if len(xs) == 0 {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, x := range xs {
		e := plan.Extract{Scope: x.Scope}
		if e.ScopeOf(flow) == plan.ScopeVU {
			if v.vu == nil {
				v.vu = map[string]string{}
			}
			v.vu[x.Name] = x.Value
			delete(v.iter, x.Name)
			continue
		}
		if v.iter == nil {
			v.iter = map[string]string{}
		}
		v.iter[x.Name] = x.Value
	}
}

// endIteration drops the iteration's values.
func (v *values) endIteration() {
	v.mu.Lock()
	clear(v.iter)
	v.mu.Unlock()
}
