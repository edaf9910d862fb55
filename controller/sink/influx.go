package sink

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
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

// Influx writes results to InfluxDB through its write queue (queue.go):
// a bounded memory queue, spilled to the run store when full and
// backfilled in order when InfluxDB answers again. Its Sink methods never
// block.
type Influx struct {
	client influxdb2.Client
	q      *writeQueue
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
	qc := queueConfig{
		Name: "influxdb", Server: "InfluxDB",
		Queue: cmp.Or(max(cfg.Queue, 0), DefaultInfluxQueue), Intake: cmp.Or(max(cfg.Intake, 0), DefaultInfluxIntake),
		MaxSpill: cmp.Or(max(cfg.MaxSpill, 0), DefaultInfluxMaxSpill), Batch: cmp.Or(max(cfg.BatchLines, 0), DefaultInfluxBatch),
		RetryMin: cmp.Or(max(cfg.RetryMin, 0), DefaultInfluxRetryMin), Timeout: cmp.Or(max(cfg.Timeout, 0), DefaultInfluxTimeout),
		Spill: cfg.Spill, SpillName: cmp.Or(cfg.SpillName, DefaultInfluxSpillName), Logger: cfg.Logger,
	}
	qc.RetryMax = cfg.RetryMax
	if qc.RetryMax < qc.RetryMin {
		qc.RetryMax = max(DefaultInfluxRetryMax, qc.RetryMin)
	}
	if qc.Logger == nil {
		qc.Logger = slog.New(slog.DiscardHandler)
	}
	opts := influxdb2.DefaultOptions().SetLogLevel(0).SetPrecision(time.Nanosecond).
		SetHTTPRequestTimeout(uint(max(qc.Timeout/time.Second, 1)))
	client := influxdb2.NewClientWithOptions(strings.TrimRight(cfg.URL, "/"), cfg.Token, opts)
	q, err := newWriteQueue(qc, influxWriter{client.WriteAPIBlocking(cfg.Org, cfg.Bucket)}, influxEncode)
	if err != nil {
		client.Close()
		return nil, err
	}
	return &Influx{client: client, q: q}, nil
}

// Stats returns the sink's counters; points are lines.
func (s *Influx) Stats() QueueStats { return s.q.Stats() }

// RunStarted implements Sink.
func (s *Influx) RunStarted(r RunInfo) { s.q.enqueue(event{run: r.ID, runInfo: &r}) }

// Interval implements Sink.
func (s *Influx) Interval(d IntervalData) { s.q.enqueue(event{run: d.Run.ID, interval: &d}) }

// Agent implements AgentSink.
func (s *Influx) Agent(d AgentData) { s.q.enqueue(event{run: d.Run.ID, agent: &d}) }

// RunEnded implements Sink.
func (s *Influx) RunEnded(r RunInfo, sum *surgev1.RunSummary) {
	s.q.enqueue(event{run: r.ID, runInfo: &r, summary: sum})
}

// Notes implements Reporter.
func (s *Influx) Notes(runID string) []string { return s.q.notes(runID) }

// Close stops intake, writes what is queued until ctx is done, then spills
// what is left in memory (so a later controller backfills it) and stops.
func (s *Influx) Close(ctx context.Context) error {
	err := s.q.close(ctx)
	s.client.Close()
	return err
}

// influxWriter writes line protocol.
type influxWriter struct{ api api.WriteAPIBlocking }

func (w influxWriter) write(ctx context.Context, data []byte) error {
	return w.api.WriteRecord(ctx, string(data))
}

func (influxWriter) points(data []byte) int { return bytes.Count(data, []byte("\n")) }

// influxEncode encodes an event as line protocol.
func influxEncode(ev event) ([]item, error) {
	var (
		b   []byte
		n   int
		err error
	)
	switch {
	case ev.interval != nil:
		b, n, err = intervalLines(*ev.interval)
	case ev.agent != nil:
		b, n = agentLines(*ev.agent)
	case ev.runInfo != nil:
		b, n = runLines(*ev.runInfo, ev.summary)
	default:
		return nil, errEmptyEvent
	}
	if err != nil {
		return nil, err
	}
	return []item{{data: b, points: n}}, nil
}

// permanent reports an error retrying cannot fix: InfluxDB refused the data
// itself (4xx other than 408 and 429).
func (influxWriter) permanent(err error) bool {
	var he *influxhttp.Error
	if errors.As(err, &he) {
		return he.StatusCode >= 400 && he.StatusCode < 500 && he.StatusCode != 408 && he.StatusCode != 429 && he.StatusCode != 401 && he.StatusCode != 403 && he.StatusCode != 404
	}
	return false
}
