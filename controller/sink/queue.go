package sink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
)

// queueConfig bounds the write queue of a sink that writes over the
// network (InfluxDB, Prometheus remote write); zero fields are errors the
// sinks fill in with their defaults first.
type queueConfig struct {
	// Name prefixes notes and logs ("influxdb"); Server names the
	// receiver in them ("InfluxDB").
	Name, Server string
	// Queue items wait in memory before new ones spill; Intake bounds the
	// hand-over from the merge loops (an item that finds it full is
	// dropped, counted); MaxSpill bounds the spilled items; Batch bounds
	// the points of one write.
	Queue, Intake, MaxSpill, Batch int
	// RetryMin and RetryMax bound the backoff between failed writes;
	// Timeout bounds one write.
	RetryMin, RetryMax, Timeout time.Duration
	// Spill receives items when memory is full (nil: dropped, counted),
	// under SpillName.
	Spill     Spiller
	SpillName string
	Logger    *slog.Logger
}

// batchWriter is how a write queue sends.
type batchWriter interface {
	// write sends one batch: the data of its items, concatenated.
	write(ctx context.Context, data []byte) error
	// permanent reports an error that retrying cannot fix: the batch is
	// dropped and counted.
	permanent(err error) bool
	// points counts the points in the data of an item read back from
	// the spill.
	points(data []byte) int
}

// event is one Sink call, queued.
type event struct {
	run      string
	interval *IntervalData
	agent    *AgentData
	runInfo  *RunInfo
	summary  *surgev1.RunSummary
}

// item is encoded data, how many points it holds and of which run.
type item struct {
	data   []byte
	points int
	run    string
}

// QueueStats are a write queue's counters.
type QueueStats struct {
	Written      int64 // points written
	Dropped      int64 // points dropped (intake full, spill full or failing, rejected by the receiver)
	Spilled      int64 // items spilled to the store so far
	SpillPending int64 // items waiting in the spill queue now
	Queued       int64 // items waiting in memory now
	Failures     int64 // failed write attempts
}

// writeQueue takes a sink's events from the merge loops without blocking,
// encodes them in its own goroutine, keeps the items in order in memory
// and then in the spill, and writes one batch at a time, retrying with
// backoff; items spilled by an earlier process are written first.
type writeQueue struct {
	cfg    queueConfig
	log    *slog.Logger
	w      batchWriter
	encode func(event) ([]item, error)

	in      chan event
	ctx     context.Context
	cancel  context.CancelFunc
	drain   chan struct{}
	done    chan struct{}
	mu      sync.Mutex
	closed  bool
	dropRun map[string]int64
	// active are the runs started and not ended; failRun counts the
	// failed writes while each was active, first and last.
	active  map[string]bool
	failRun map[string]*failSpan

	written, dropped, spilled, spillPending, queued, failures atomic.Int64
}

// newWriteQueue starts the queue's goroutine; close ends it.
func newWriteQueue(cfg queueConfig, w batchWriter, encode func(event) ([]item, error)) (*writeQueue, error) {
	pending := 0
	if cfg.Spill != nil {
		n, err := cfg.Spill.SpillLen(cfg.SpillName)
		if err != nil {
			return nil, fmt.Errorf("%s sink: %w", cfg.Name, err)
		}
		pending = n
	}
	q := &writeQueue{
		cfg: cfg, log: cfg.Logger.With(slog.String("component", cfg.Name+"-sink")), w: w, encode: encode,
		in: make(chan event, cfg.Intake), drain: make(chan struct{}), done: make(chan struct{}), dropRun: map[string]int64{},
		active: map[string]bool{}, failRun: map[string]*failSpan{},
	}
	q.spillPending.Store(int64(pending))
	q.ctx, q.cancel = context.WithCancel(context.Background())
	if pending > 0 {
		q.log.Info("backfilling data spilled by a previous controller", slog.Int("items", pending))
	}
	go q.loop()
	return q, nil
}

// Stats returns the queue's counters.
func (q *writeQueue) Stats() QueueStats {
	return QueueStats{
		Written: q.written.Load(), Dropped: q.dropped.Load(), Spilled: q.spilled.Load(),
		SpillPending: q.spillPending.Load(), Queued: q.queued.Load(), Failures: q.failures.Load(),
	}
}

// enqueue hands ev to the queue's goroutine, or drops it (counted) when
// the intake is full; it never blocks.
func (q *writeQueue) enqueue(ev event) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return
	}
	switch {
	case ev.summary != nil: // its notes were read: the summary is made first
		delete(q.active, ev.run)
		delete(q.failRun, ev.run)
		delete(q.dropRun, ev.run)
	case ev.runInfo != nil:
		q.active[ev.run] = true
	}
	select {
	case q.in <- ev:
	default:
		q.dropped.Add(1)
		q.dropRun[ev.run]++
		q.log.Warn(q.cfg.Name+" sink intake full: dropped an item", slog.String("run", ev.run))
	}
}

// notes says what of the run was dropped and what is still spilled.
func (q *writeQueue) notes(runID string) []string {
	q.mu.Lock()
	d := q.dropRun[runID]
	q.mu.Unlock()
	var out []string
	if d > 0 {
		out = append(out, fmt.Sprintf("%s: %d points or items of this run were dropped (queue and spill full, or rejected by %s); see the controller log",
			q.cfg.Name, d, q.cfg.Server))
	}
	if f := q.failRun[runID]; f != nil {
		out = append(out, fmt.Sprintf("%s: %d writes to %s failed during this run, from %s to %s; its points waited in the queue (or the run store) and were written late, in order",
			q.cfg.Name, f.n, q.cfg.Server, f.first.UTC().Format(time.TimeOnly), f.last.UTC().Format(time.TimeOnly)))
	}
	if n := q.spillPending.Load(); n > 0 {
		out = append(out, fmt.Sprintf("%s: %d write batches are spilled to the run store, waiting for %s; they are backfilled in order",
			q.cfg.Name, n, q.cfg.Server))
	}
	return out
}

// failSpan counts failed writes and when they happened.
type failSpan struct {
	n           int64
	first, last time.Time
}

// failed records a failed write against every active run.
func (q *writeQueue) failed(now time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for run := range q.active {
		f := q.failRun[run]
		if f == nil {
			f = &failSpan{first: now}
			q.failRun[run] = f
		}
		f.n++
		f.last = now
	}
}

// close stops intake, writes what is queued until ctx is done, then
// spills what is left in memory (so a later controller backfills it).
func (q *writeQueue) close(ctx context.Context) error {
	q.mu.Lock()
	first := !q.closed
	q.closed = true
	q.mu.Unlock()
	if first {
		close(q.drain)
	}
	var err error
	select {
	case <-q.done:
	case <-ctx.Done():
		q.cancel()
		<-q.done
		err = fmt.Errorf("%s sink: close: %w", q.cfg.Name, ctx.Err())
	}
	q.cancel()
	if st := q.Stats(); st.Dropped > 0 || st.SpillPending > 0 {
		q.log.Warn(q.cfg.Name+" sink closed with data not written", slog.Int64("dropped", st.Dropped), slog.Int64("spill_pending", st.SpillPending))
	}
	return err
}

// batch is what one write attempt sends.
type batch struct {
	data       []byte
	points     int
	memItems   int    // taken from the head of mem
	spillItems int    // taken from the spill queue...
	spillUpTo  uint64 // ...up to this seq
	// runs counts the points of each run (memory items only: the spill
	// keeps no run).
	runs map[string]int
}

// loop owns the queue: it encodes intake, keeps memory and spill in order
// (memory items are always older than spilled ones), and runs one write at
// a time in a goroutine it waits for.
func (q *writeQueue) loop() {
	defer close(q.done)
	st := &loopState{q: q, backoff: q.cfg.RetryMin}
	defer st.wg.Wait()
	draining, drain := false, q.drain
	for {
		if st.inflight == nil && st.retry == nil && !(draining && q.ctx.Err() != nil) {
			st.startWrite()
		}
		if draining && st.inflight == nil && len(st.mem) == 0 && q.spillPending.Load() == 0 && len(q.in) == 0 {
			return
		}
		select {
		case ev := <-q.in:
			st.add(ev)
		case err := <-st.inflight:
			st.written(err)
		case <-st.retry:
			st.retry = nil
		case <-drain:
			draining, drain = true, nil
		case <-q.ctx.Done():
			st.stop()
			return
		}
	}
}

// loopState is loop's own: the items in memory, the write in flight (one
// at a time, in a goroutine wg waits for) and the retry after a failed one.
type loopState struct {
	q        *writeQueue
	mem      []item
	inflight chan error
	cur      batch
	retry    <-chan time.Time
	timer    *time.Timer
	backoff  time.Duration
	wg       sync.WaitGroup
}

// add encodes ev into memory, or into the spill once memory is full or
// anything is spilled (so that order holds).
func (st *loopState) add(ev event) {
	q := st.q
	items, err := q.encode(ev)
	if err != nil {
		q.log.Error(q.cfg.Name+" sink: encode", slog.String("run", ev.run), slog.Any("err", err))
		q.countDrop(ev.run, 1)
		return
	}
	for _, it := range items {
		it.run = ev.run
		if q.spillPending.Load() == 0 && len(st.mem) < q.cfg.Queue {
			st.mem = append(st.mem, it)
			continue
		}
		q.toSpill(ev.run, it)
	}
	q.queued.Store(int64(len(st.mem)))
}

// startWrite starts writing the next batch, if there is one.
func (st *loopState) startWrite() {
	q := st.q
	b, ok := q.next(st.mem)
	if !ok {
		return
	}
	st.cur = b
	inflight := make(chan error, 1)
	st.inflight = inflight
	st.wg.Go(func() {
		ctx, cancel := context.WithTimeout(q.ctx, q.cfg.Timeout)
		defer cancel()
		inflight <- q.w.write(ctx, b.data)
	})
}

// written takes the end of the write in flight: committed when it
// succeeded or can never succeed (counted as dropped), else retried after
// a backoff that doubles up to RetryMax.
func (st *loopState) written(err error) {
	q := st.q
	st.inflight = nil
	if err == nil || q.w.permanent(err) {
		if err != nil {
			q.log.Error(q.cfg.Server+" rejected a batch; dropped", slog.Int("points", st.cur.points), slog.Any("err", err))
			rest := st.cur.points
			for run, n := range st.cur.runs {
				q.countDrop(run, int64(n))
				rest -= n
			}
			q.countDrop("", int64(rest))
		} else {
			q.written.Add(int64(st.cur.points))
		}
		st.mem = q.commit(st.mem, st.cur)
		st.backoff = q.cfg.RetryMin
		return
	}
	q.failures.Add(1)
	q.failed(time.Now())
	if q.ctx.Err() != nil {
		return
	}
	q.log.Warn(q.cfg.Server+" write failed; retrying", slog.Duration("in", st.backoff), slog.Any("err", err),
		slog.Int("queued", len(st.mem)), slog.Int64("spilled", q.spillPending.Load()))
	st.timer = time.NewTimer(st.backoff)
	st.retry = st.timer.C
	st.backoff = min(st.backoff*2, q.cfg.RetryMax)
}

// stop ends the queue at shutdown: it waits for the write in flight and
// spills what is left, in order, for the next controller.
func (st *loopState) stop() {
	q := st.q
	if st.inflight != nil {
		<-st.inflight
		st.inflight = nil
	}
	if st.timer != nil {
		st.timer.Stop()
	}
	for len(q.in) > 0 {
		st.add(<-q.in)
	}
	for _, it := range st.mem {
		q.toSpill("", it)
	}
	q.queued.Store(0)
}

func (q *writeQueue) countDrop(run string, n int64) {
	q.dropped.Add(n)
	q.mu.Lock()
	q.dropRun[run] += n
	q.mu.Unlock()
}

func (q *writeQueue) toSpill(run string, it item) {
	if q.cfg.Spill == nil || q.spillPending.Load() >= int64(q.cfg.MaxSpill) {
		q.countDrop(run, int64(it.points))
		q.log.Warn(q.cfg.Name+" sink queue full and nothing to spill to: dropped", slog.String("run", run), slog.Int("points", it.points))
		return
	}
	if err := q.cfg.Spill.SpillAppend(q.cfg.SpillName, it.data); err != nil {
		q.countDrop(run, int64(it.points))
		q.log.Error(q.cfg.Name+" sink: spill", slog.String("run", run), slog.Any("err", err))
		return
	}
	if q.spillPending.Add(1) == 1 {
		q.log.Warn(q.cfg.Name + " sink queue full: spilling to the run store")
	}
	q.spilled.Add(1)
}

// next picks the oldest data: the head of mem, else the spill queue.
func (q *writeQueue) next(mem []item) (batch, bool) {
	var b batch
	if len(mem) > 0 {
		for _, it := range mem {
			if b.memItems > 0 && b.points+it.points > q.cfg.Batch {
				break
			}
			b.data = append(b.data, it.data...)
			b.points += it.points
			b.memItems++
			if b.runs == nil {
				b.runs = map[string]int{}
			}
			b.runs[it.run] += it.points
		}
		return b, true
	}
	if q.spillPending.Load() == 0 || q.cfg.Spill == nil {
		return b, false
	}
	items, err := q.cfg.Spill.SpillPeek(q.cfg.SpillName, 64)
	if err != nil {
		q.log.Error(q.cfg.Name+" sink: read spill", slog.Any("err", err))
		return b, false
	}
	if len(items) == 0 {
		q.spillPending.Store(0)
		return b, false
	}
	for _, it := range items {
		n := q.w.points(it.Data)
		if b.spillUpTo > 0 && b.points+n > q.cfg.Batch {
			break
		}
		b.data = append(b.data, it.Data...)
		b.points += n
		b.spillUpTo = it.Seq
		b.spillItems++
	}
	return b, true
}

// commit removes a written (or rejected) batch from where it came from.
func (q *writeQueue) commit(mem []item, b batch) []item {
	if b.spillUpTo > 0 {
		if err := q.cfg.Spill.SpillDelete(q.cfg.SpillName, b.spillUpTo); err != nil {
			q.log.Error(q.cfg.Name+" sink: delete spilled items", slog.Any("err", err))
			return mem
		}
		if n := q.spillPending.Add(-int64(b.spillItems)); n <= 0 {
			q.spillPending.Store(0)
			q.log.Info(q.cfg.Name + " sink backlog written")
		}
		return mem
	}
	mem = mem[b.memItems:]
	q.queued.Store(int64(len(mem)))
	return mem
}

// errEmptyEvent is an event with nothing in it.
var errEmptyEvent = errors.New("empty event")
