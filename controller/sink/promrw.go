package sink

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/klauspost/compress/snappy"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
)

// Defaults for PromConfig fields left zero.
const (
	DefaultPromSpillName = "prometheus"
	DefaultPromBatch     = 2000
	// DefaultPromHold is how many emitted intervals the sink holds back
	// for late snapshots: the aggregate's default retain, after which an
	// interval is never rewritten.
	DefaultPromHold = 5
)

// PromConfig configures the Prometheus remote-write sink. URL is required
// (Prometheus: http://HOST:9090/api/v1/write, with
// --web.enable-remote-write-receiver).
type PromConfig struct {
	URL string
	// Token is sent as "Authorization: Bearer TOKEN"; Headers are sent as
	// given (a tenant header, basic auth).
	Token   string
	Headers map[string]string
	// TLS configures https; nil uses the system roots.
	TLS *tls.Config
	// ClassicBuckets, when set, adds classic _bucket/_sum/_count series of
	// the latency with these upper bounds in seconds (for receivers
	// without native histograms).
	ClassicBuckets []float64
	// Schema of the native histograms (DefaultNativeSchema).
	Schema int32
	// Hold: see DefaultPromHold; zero is the default, negative holds none.
	Hold int
	// The write queue's bounds, as InfluxConfig's; Batch counts series.
	Queue, Intake, MaxSpill, Batch int
	RetryMin, RetryMax             time.Duration
	Timeout                        time.Duration
	Spill                          Spiller
	SpillName                      string
	Logger                         *slog.Logger
}

// LogValue keeps the token and headers out of logs.
func (c PromConfig) LogValue() slog.Value {
	return slog.GroupValue(slog.String("url", c.URL), slog.Bool("token", c.Token != ""),
		slog.Int("headers", len(c.Headers)), slog.Int("classic_buckets", len(c.ClassicBuckets)))
}

// Validate checks the URL, schema and buckets.
func (c PromConfig) Validate() error {
	u, err := url.Parse(c.URL)
	switch {
	case err != nil:
		return fmt.Errorf("prometheus remote-write url: %w", err)
	case u.Scheme != "http" && u.Scheme != "https" || u.Host == "":
		return fmt.Errorf("prometheus remote-write url %q: want http(s)://host:port/path, e.g. http://127.0.0.1:9090/api/v1/write", c.URL)
	case u.User != nil:
		return errors.New("prometheus remote-write url: put credentials in a header or the token, not the url")
	case c.Schema < -4 || c.Schema > 8:
		return fmt.Errorf("prometheus native histogram schema %d: want -4 to 8", c.Schema)
	}
	for i, b := range c.ClassicBuckets {
		if !(b > 0) || i > 0 && b <= c.ClassicBuckets[i-1] {
			return fmt.Errorf("prometheus classic buckets %v: want increasing bounds > 0 (seconds)", c.ClassicBuckets)
		}
	}
	return nil
}

// PromRW writes results to a Prometheus remote-write receiver through its
// write queue (queue.go): bounded memory, spill to the run store, backfill
// in order. See promenc.go for the series.
type PromRW struct {
	q *writeQueue
}

var (
	_ Sink     = (*PromRW)(nil)
	_ Reporter = (*PromRW)(nil)
)

// NewPromRW validates cfg and starts the sink's goroutine; Close ends it.
func NewPromRW(cfg PromConfig) (*PromRW, error) {
	if cfg.Schema == 0 {
		cfg.Schema = DefaultNativeSchema
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("prometheus sink: %w", err)
	}
	qc := queueConfig{
		Name: "prometheus", Server: "Prometheus",
		Queue: cmp.Or(max(cfg.Queue, 0), DefaultInfluxQueue), Intake: cmp.Or(max(cfg.Intake, 0), DefaultInfluxIntake),
		MaxSpill: cmp.Or(max(cfg.MaxSpill, 0), DefaultInfluxMaxSpill), Batch: cmp.Or(max(cfg.Batch, 0), DefaultPromBatch),
		RetryMin: cmp.Or(max(cfg.RetryMin, 0), DefaultInfluxRetryMin), Timeout: cmp.Or(max(cfg.Timeout, 0), DefaultInfluxTimeout),
		Spill: cfg.Spill, SpillName: cmp.Or(cfg.SpillName, DefaultPromSpillName), Logger: cfg.Logger,
	}
	qc.RetryMax = max(cfg.RetryMax, qc.RetryMin)
	if cfg.RetryMax <= 0 {
		qc.RetryMax = max(DefaultInfluxRetryMax, qc.RetryMin)
	}
	if qc.Logger == nil {
		qc.Logger = slog.New(slog.DiscardHandler)
	}
	w := &promWriter{url: cfg.URL, token: cfg.Token, headers: cfg.Headers,
		client: &http.Client{Transport: &http.Transport{TLSClientConfig: cfg.TLS, Proxy: http.ProxyFromEnvironment}}}
	hold := cmp.Or(cfg.Hold, DefaultPromHold)
	enc := newPromEncoder(cfg.Schema, slices.Clone(cfg.ClassicBuckets), max(hold, 0))
	q, err := newWriteQueue(qc, w, enc.encode)
	if err != nil {
		return nil, err
	}
	return &PromRW{q: q}, nil
}

// Stats returns the sink's counters; points are samples and histograms.
func (s *PromRW) Stats() QueueStats { return s.q.Stats() }

// RunStarted implements Sink.
func (s *PromRW) RunStarted(r RunInfo) { s.q.enqueue(event{run: r.ID, runInfo: &r}) }

// Interval implements Sink.
func (s *PromRW) Interval(d IntervalData) { s.q.enqueue(event{run: d.Run.ID, interval: &d}) }

// RunEnded implements Sink.
func (s *PromRW) RunEnded(r RunInfo, sum *surgev1.RunSummary) {
	s.q.enqueue(event{run: r.ID, runInfo: &r, summary: sum})
}

// Notes implements Reporter.
func (s *PromRW) Notes(runID string) []string { return s.q.notes(runID) }

// Close implements Sink.
func (s *PromRW) Close(ctx context.Context) error { return s.q.close(ctx) }

// promWriter posts snappy-compressed WriteRequests.
type promWriter struct {
	url, token string
	headers    map[string]string
	client     *http.Client
}

// statusError is a receiver's answer other than 2xx.
type statusError struct {
	code int
	body string
}

func (e *statusError) Error() string { return fmt.Sprintf("remote write: %d %s", e.code, e.body) }

func (w *promWriter) write(ctx context.Context, data []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(snappy.Encode(nil, data)))
	if err != nil {
		return fmt.Errorf("remote write: %w", err)
	}
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("User-Agent", "surge")
	req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	for k, v := range w.headers {
		req.Header.Set(k, v)
	}
	if w.token != "" {
		req.Header.Set("Authorization", "Bearer "+w.token)
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return fmt.Errorf("remote write: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 != 2 {
		return &statusError{code: resp.StatusCode, body: string(bytes.TrimSpace(body))}
	}
	return nil
}

// permanent: the receiver refused the data itself (4xx but 408, 429 and
// the auth codes, which a fixed configuration or a later try may pass).
func (w *promWriter) permanent(err error) bool {
	var se *statusError
	if !errors.As(err, &se) {
		return false
	}
	switch se.code {
	case 401, 403, 404, 408, 429:
		return false
	}
	return se.code >= 400 && se.code < 500
}

func (w *promWriter) points(data []byte) int { return countSeries(data) }
