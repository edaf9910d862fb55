package sink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	influxdb2 "github.com/influxdata/influxdb-client-go/v2"
	"github.com/influxdata/influxdb-client-go/v2/api"
	influxhttp "github.com/influxdata/influxdb-client-go/v2/api/http"

	"github.com/surgeload/surge/controller/store"
	surgev1 "github.com/surgeload/surge/gen/surge/v1"
)

// Defaults for InfluxConfig fields left zero.
const (
	DefaultInfluxQueue     = 1024
	DefaultInfluxIntake    = 4096
	DefaultInfluxMaxSpill  = 1 << 20
	DefaultInfluxBatch     = 5000
	DefaultInfluxRetryMin  = 200 * time.Millisecond
	DefaultInfluxRetryMax  = 10 * time.Second
	DefaultInfluxTimeout   = 10 * time.Second
	DefaultInfluxSpillName = "influx"
)

// Spiller is a durable FIFO the InfluxDB sink spills to when its memory
// queue is full (*store.Store implements it).
type Spiller interface {
	SpillAppend(queue string, items ...[]byte) error
	SpillPeek(queue string, n int) ([]store.SpillItem, error)
	SpillDelete(queue string, upTo uint64) error
	SpillLen(queue string) (int, error)
}

var _ Spiller = (*store.Store)(nil)

// InfluxConfig configures the InfluxDB sink. URL and Bucket are required.
// For InfluxDB 1.8 (its /api/v2/write compatibility endpoint) Bucket is
// "database/retention-policy" (or just "database"), Token is "user:password"
// or empty, and Org is ignored.
type InfluxConfig struct {
	URL    string
	Bucket string
	Org    string
	Token  string
	// Queue is how many write items (one per interval, agent stat or run
	// event) wait in memory before new ones spill (DefaultInfluxQueue).
	Queue int
	// Intake bounds the hand-over channel from the merge loops; an item
	// that finds it full is dropped and counted (DefaultInfluxIntake).
	Intake int
	// MaxSpill bounds the spilled items (DefaultInfluxMaxSpill); past it,
	// items are dropped and counted.
	MaxSpill int
	// BatchLines bounds the lines of one write (DefaultInfluxBatch).
	BatchLines int
	// RetryMin and RetryMax bound the exponential backoff between failed
	// writes (DefaultInfluxRetryMin, DefaultInfluxRetryMax).
	RetryMin, RetryMax time.Duration
	// Timeout bounds one write request (DefaultInfluxTimeout).
	Timeout time.Duration
	// Spill receives items when the memory queue is full; nil drops them
	// (counted). SpillName names its queue (DefaultInfluxSpillName).
	Spill     Spiller
	SpillName string
	Logger    *slog.Logger
}

// LogValue keeps the token out of logs.
func (c InfluxConfig) LogValue() slog.Value {
	return slog.GroupValue(slog.String("url", c.URL), slog.String("bucket", c.Bucket), slog.String("org", c.Org),
		slog.Bool("token", c.Token != ""))
}

// Validate checks the URL and bucket.
func (c InfluxConfig) Validate() error {
	u, err := url.Parse(c.URL)
	if err != nil {
		return fmt.Errorf("influx url: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("influx url %q: want http(s)://host:port", c.URL)
	}
	if u.User != nil {
		return errors.New("influx url: put credentials in the token (user:password for InfluxDB 1.8), not the url")
	}
	if c.Bucket == "" {
		return errors.New("influx bucket is required (InfluxDB 1.8: database/retention-policy)")
	}
	return nil
}

// InfluxStats are the sink's counters.
type InfluxStats struct {
	Written      int64 // lines written
	Dropped      int64 // lines dropped (intake full, spill full or failing, rejected by InfluxDB)
	Spilled      int64 // items spilled to the store so far
	SpillPending int64 // items waiting in the spill queue now
	Queued       int64 // items waiting in memory now
	Failures     int64 // failed write attempts
}

type influxEvent struct {
	run      string
	interval *IntervalData
	agent    *AgentData
	runInfo  *RunInfo
	summary  *surgev1.RunSummary
}

type item struct {
	data  []byte
	lines int
}

// Influx writes results to InfluxDB from a dedicated goroutine behind its
// own bounded queue, spilling to the run store when the queue is full and
// backfilling in order when InfluxDB answers again. Its Sink methods never
// block.
type Influx struct {
	cfg    InfluxConfig
	log    *slog.Logger
	client influxdb2.Client
	write  api.WriteAPIBlocking

	in      chan influxEvent
	ctx     context.Context
	cancel  context.CancelFunc
	drain   chan struct{}
	done    chan struct{}
	mu      sync.Mutex
	closed  bool
	dropRun map[string]int64

	written, dropped, spilled, spillPending, queued, failures atomic.Int64
}

var (
	_ Sink      = (*Influx)(nil)
	_ AgentSink = (*Influx)(nil)
	_ Reporter  = (*Influx)(nil)
)

// NewInflux validates cfg and starts the sink's goroutine; Close ends it.
// Items spilled by a previous process are backfilled first.
func NewInflux(cfg InfluxConfig) (*Influx, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("influx sink: %w", err)
	}
	if cfg.Queue <= 0 {
		cfg.Queue = DefaultInfluxQueue
	}
	if cfg.Intake <= 0 {
		cfg.Intake = DefaultInfluxIntake
	}
	if cfg.MaxSpill <= 0 {
		cfg.MaxSpill = DefaultInfluxMaxSpill
	}
	if cfg.BatchLines <= 0 {
		cfg.BatchLines = DefaultInfluxBatch
	}
	if cfg.RetryMin <= 0 {
		cfg.RetryMin = DefaultInfluxRetryMin
	}
	if cfg.RetryMax < cfg.RetryMin {
		cfg.RetryMax = max(DefaultInfluxRetryMax, cfg.RetryMin)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultInfluxTimeout
	}
	if cfg.SpillName == "" {
		cfg.SpillName = DefaultInfluxSpillName
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	pending := 0
	if cfg.Spill != nil {
		n, err := cfg.Spill.SpillLen(cfg.SpillName)
		if err != nil {
			return nil, fmt.Errorf("influx sink: %w", err)
		}
		pending = n
	}
	opts := influxdb2.DefaultOptions().SetLogLevel(0).SetPrecision(time.Nanosecond).
		SetHTTPRequestTimeout(uint(max(cfg.Timeout/time.Second, 1)))
	client := influxdb2.NewClientWithOptions(strings.TrimRight(cfg.URL, "/"), cfg.Token, opts)
	s := &Influx{
		cfg:     cfg,
		log:     cfg.Logger.With(slog.String("component", "influx-sink")),
		client:  client,
		write:   client.WriteAPIBlocking(cfg.Org, cfg.Bucket),
		in:      make(chan influxEvent, cfg.Intake),
		drain:   make(chan struct{}),
		done:    make(chan struct{}),
		dropRun: map[string]int64{},
	}
	s.spillPending.Store(int64(pending))
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if pending > 0 {
		s.log.Info("backfilling points spilled by a previous controller", slog.Int("items", pending))
	}
	go s.loop()
	return s, nil
}

// Stats returns the sink's counters.
func (s *Influx) Stats() InfluxStats {
	return InfluxStats{
		Written: s.written.Load(), Dropped: s.dropped.Load(), Spilled: s.spilled.Load(),
		SpillPending: s.spillPending.Load(), Queued: s.queued.Load(), Failures: s.failures.Load(),
	}
}

func (s *Influx) enqueue(ev influxEvent) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	select {
	case s.in <- ev:
	default:
		s.dropped.Add(1)
		s.dropRun[ev.run]++
		s.log.Warn("influx sink intake full: dropped an item", slog.String("run", ev.run))
	}
}

// RunStarted implements Sink.
func (s *Influx) RunStarted(r RunInfo) { s.enqueue(influxEvent{run: r.ID, runInfo: &r}) }

// Interval implements Sink.
func (s *Influx) Interval(d IntervalData) { s.enqueue(influxEvent{run: d.Run.ID, interval: &d}) }

// Agent implements AgentSink.
func (s *Influx) Agent(d AgentData) { s.enqueue(influxEvent{run: d.Run.ID, agent: &d}) }

// RunEnded implements Sink.
func (s *Influx) RunEnded(r RunInfo, sum *surgev1.RunSummary) {
	s.enqueue(influxEvent{run: r.ID, runInfo: &r, summary: sum})
}

// Notes implements Reporter.
func (s *Influx) Notes(runID string) []string {
	s.mu.Lock()
	d := s.dropRun[runID]
	s.mu.Unlock()
	var out []string
	if d > 0 {
		out = append(out, fmt.Sprintf("influxdb: %d points or items of this run were dropped (queue and spill full, or rejected by InfluxDB); see the controller log", d))
	}
	if n := s.spillPending.Load(); n > 0 {
		out = append(out, fmt.Sprintf("influxdb: %d write batches are spilled to the run store, waiting for InfluxDB; they are backfilled in order", n))
	}
	return out
}

// Close stops intake, writes what is queued until ctx is done, then spills
// what is left in memory (so a later controller backfills it) and stops.
func (s *Influx) Close(ctx context.Context) error {
	s.mu.Lock()
	first := !s.closed
	s.closed = true
	s.mu.Unlock()
	if first {
		close(s.drain)
	}
	var err error
	select {
	case <-s.done:
	case <-ctx.Done():
		s.cancel()
		<-s.done
		err = fmt.Errorf("influx sink: close: %w", ctx.Err())
	}
	s.cancel()
	s.client.Close()
	st := s.Stats()
	if st.Dropped > 0 || st.SpillPending > 0 {
		s.log.Warn("influx sink closed with data not written", slog.Int64("dropped", st.Dropped), slog.Int64("spill_pending", st.SpillPending))
	}
	return err
}

// batch is what one write attempt sends.
type batch struct {
	data       []byte
	lines      int
	memItems   int    // taken from the head of mem
	spillItems int    // taken from the spill queue...
	spillUpTo  uint64 // ...up to this seq
}

// loop owns the queue: it encodes intake, keeps memory and spill in order
// (memory items are always older than spilled ones), and runs one write at
// a time in a goroutine it waits for.
func (s *Influx) loop() {
	defer close(s.done)
	q := &queue{s: s, backoff: s.cfg.RetryMin}
	defer q.wg.Wait()
	draining, drain := false, s.drain
	for {
		if q.inflight == nil && q.retry == nil && !(draining && s.ctx.Err() != nil) {
			q.startWrite()
		}
		if draining && q.inflight == nil && len(q.mem) == 0 && s.spillPending.Load() == 0 && len(s.in) == 0 {
			return
		}
		select {
		case ev := <-s.in:
			q.add(ev)
		case err := <-q.inflight:
			q.written(err)
		case <-q.retry:
			q.retry = nil
		case <-drain:
			draining, drain = true, nil
		case <-s.ctx.Done():
			q.stop()
			return
		}
	}
}

// queue is loop's state: the items in memory, the write in flight (one at
// a time, in a goroutine wg waits for) and the retry after a failed one.
type queue struct {
	s        *Influx
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
func (q *queue) add(ev influxEvent) {
	s := q.s
	data, lines, err := s.encode(ev)
	if err != nil {
		s.log.Error("influx sink: encode", slog.String("run", ev.run), slog.Any("err", err))
		s.countDrop(ev.run, 1)
		return
	}
	it := item{data: data, lines: lines}
	if s.spillPending.Load() == 0 && len(q.mem) < s.cfg.Queue {
		q.mem = append(q.mem, it)
		s.queued.Store(int64(len(q.mem)))
		return
	}
	s.toSpill(ev.run, it)
}

// startWrite starts writing the next batch, if there is one.
func (q *queue) startWrite() {
	s := q.s
	b, ok := s.next(q.mem)
	if !ok {
		return
	}
	q.cur = b
	inflight := make(chan error, 1)
	q.inflight = inflight
	q.wg.Go(func() {
		ctx, cancel := context.WithTimeout(s.ctx, s.cfg.Timeout)
		defer cancel()
		inflight <- s.write.WriteRecord(ctx, string(b.data))
	})
}

// written takes the end of the write in flight: committed when it
// succeeded or can never succeed (counted as dropped), else retried after
// a backoff that doubles up to RetryMax.
func (q *queue) written(err error) {
	s := q.s
	q.inflight = nil
	if err == nil || permanent(err) {
		if err != nil {
			s.log.Error("influxdb rejected a batch; dropped", slog.Int("lines", q.cur.lines), slog.Any("err", err))
			s.dropped.Add(int64(q.cur.lines))
		} else {
			s.written.Add(int64(q.cur.lines))
		}
		q.mem = s.commit(q.mem, q.cur)
		q.backoff = s.cfg.RetryMin
		return
	}
	s.failures.Add(1)
	if s.ctx.Err() != nil {
		return
	}
	s.log.Warn("influxdb write failed; retrying", slog.Duration("in", q.backoff), slog.Any("err", err),
		slog.Int("queued", len(q.mem)), slog.Int64("spilled", s.spillPending.Load()))
	q.timer = time.NewTimer(q.backoff)
	q.retry = q.timer.C
	q.backoff = min(q.backoff*2, s.cfg.RetryMax)
}

// stop ends the queue at shutdown: it waits for the write in flight and
// spills what is left, in order, for the next controller.
func (q *queue) stop() {
	s := q.s
	if q.inflight != nil {
		<-q.inflight
		q.inflight = nil
	}
	if q.timer != nil {
		q.timer.Stop()
	}
	for len(s.in) > 0 {
		q.add(<-s.in)
	}
	for _, it := range q.mem {
		s.toSpill("", it)
	}
	s.queued.Store(0)
}

func (s *Influx) countDrop(run string, n int64) {
	s.dropped.Add(n)
	s.mu.Lock()
	s.dropRun[run] += n
	s.mu.Unlock()
}

func (s *Influx) toSpill(run string, it item) {
	if s.cfg.Spill == nil || s.spillPending.Load() >= int64(s.cfg.MaxSpill) {
		s.countDrop(run, int64(it.lines))
		s.log.Warn("influx sink queue full and nothing to spill to: dropped", slog.String("run", run), slog.Int("lines", it.lines))
		return
	}
	if err := s.cfg.Spill.SpillAppend(s.cfg.SpillName, it.data); err != nil {
		s.countDrop(run, int64(it.lines))
		s.log.Error("influx sink: spill", slog.String("run", run), slog.Any("err", err))
		return
	}
	if s.spillPending.Add(1) == 1 {
		s.log.Warn("influx sink queue full: spilling to the run store")
	}
	s.spilled.Add(1)
}

// next picks the oldest data: the head of mem, else the spill queue.
func (s *Influx) next(mem []item) (batch, bool) {
	var b batch
	if len(mem) > 0 {
		var sb []byte
		for _, it := range mem {
			if b.memItems > 0 && b.lines+it.lines > s.cfg.BatchLines {
				break
			}
			sb = append(sb, it.data...)
			b.lines += it.lines
			b.memItems++
		}
		b.data = sb
		return b, true
	}
	if s.spillPending.Load() == 0 || s.cfg.Spill == nil {
		return b, false
	}
	items, err := s.cfg.Spill.SpillPeek(s.cfg.SpillName, 64)
	if err != nil {
		s.log.Error("influx sink: read spill", slog.Any("err", err))
		return b, false
	}
	if len(items) == 0 {
		s.spillPending.Store(0)
		return b, false
	}
	for _, it := range items {
		n := strings.Count(string(it.Data), "\n")
		if b.spillUpTo > 0 && b.lines+n > s.cfg.BatchLines {
			break
		}
		b.data = append(b.data, it.Data...)
		b.lines += n
		b.spillUpTo = it.Seq
		b.spillItems++
	}
	return b, true
}

// commit removes a written (or rejected) batch from where it came from.
func (s *Influx) commit(mem []item, b batch) []item {
	if b.spillUpTo > 0 {
		if err := s.cfg.Spill.SpillDelete(s.cfg.SpillName, b.spillUpTo); err != nil {
			s.log.Error("influx sink: delete spilled items", slog.Any("err", err))
			return mem
		}
		if n := s.spillPending.Add(-int64(b.spillItems)); n <= 0 {
			s.spillPending.Store(0)
			s.log.Info("influx sink backlog written")
		}
		return mem
	}
	mem = mem[b.memItems:]
	s.queued.Store(int64(len(mem)))
	return mem
}

func (s *Influx) encode(ev influxEvent) ([]byte, int, error) {
	switch {
	case ev.interval != nil:
		return intervalLines(*ev.interval)
	case ev.agent != nil:
		b, n := agentLines(*ev.agent)
		return b, n, nil
	case ev.runInfo != nil:
		b, n := runLines(*ev.runInfo, ev.summary)
		return b, n, nil
	}
	return nil, 0, errors.New("empty event")
}

// permanent reports an error retrying cannot fix: InfluxDB refused the data
// itself (4xx other than 408 and 429).
func permanent(err error) bool {
	var he *influxhttp.Error
	if errors.As(err, &he) {
		return he.StatusCode >= 400 && he.StatusCode < 500 && he.StatusCode != 408 && he.StatusCode != 429 && he.StatusCode != 401 && he.StatusCode != 403 && he.StatusCode != 404
	}
	return false
}
