package sink

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/surgeload/surge/controller/store"
	surgev1 "github.com/surgeload/surge/gen/surge/v1"
)

// DefaultRunStoreQueue is how many intervals the run store sink holds before
// it drops (and counts) new ones.
const DefaultRunStoreQueue = 4096

// RunStore records every emitted interval's merged series, scenario stats
// and WebSocket stats per region in the run store (store.PutInterval), from
// its own goroutine.
type RunStore struct {
	st      *store.Store
	log     *slog.Logger
	in      chan IntervalData
	done    chan struct{}
	mu      sync.Mutex
	closed  bool
	dropped atomic.Int64
	failed  atomic.Int64
}

var (
	_ Sink     = (*RunStore)(nil)
	_ Reporter = (*RunStore)(nil)
)

// NewRunStore starts the run store sink; queue ≤ 0 takes
// DefaultRunStoreQueue. Close ends its goroutine.
func NewRunStore(st *store.Store, queue int, log *slog.Logger) *RunStore {
	if queue <= 0 {
		queue = DefaultRunStoreQueue
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &RunStore{st: st, log: log, in: make(chan IntervalData, queue), done: make(chan struct{})}
	go s.loop()
	return s
}

func (s *RunStore) loop() {
	defer close(s.done)
	for d := range s.in {
		err := s.st.PutInterval(d.Run.ID, store.IntervalRecord{Index: d.Index, Start: d.Start, EmittedAt: d.EmittedAt,
			Regions: d.Regions, Scenarios: d.Scenarios, WebSockets: d.WebSockets})
		if err != nil {
			s.failed.Add(1)
			s.log.Error("run store sink", slog.String("run", d.Run.ID), slog.Int64("interval", d.Index), slog.Any("err", err))
		}
	}
}

// RunStarted implements Sink; the controller stores the run itself.
func (s *RunStore) RunStarted(RunInfo) {}

// RunEnded implements Sink.
func (s *RunStore) RunEnded(RunInfo, *surgev1.RunSummary) {}

// Interval implements Sink: it enqueues d, or drops and counts it when the
// queue is full.
func (s *RunStore) Interval(d IntervalData) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	select {
	case s.in <- d:
	default:
		s.dropped.Add(1)
		s.log.Warn("run store sink queue full: interval not stored", slog.String("run", d.Run.ID), slog.Int64("interval", d.Index))
	}
}

// Notes implements Reporter.
func (s *RunStore) Notes(string) []string {
	var out []string
	if n := s.dropped.Load(); n > 0 {
		out = append(out, fmt.Sprintf("%d interval records were not stored: the run store queue was full", n))
	}
	if n := s.failed.Load(); n > 0 {
		out = append(out, fmt.Sprintf("%d interval records failed to store", n))
	}
	return out
}

// Close stores what is queued and waits for the goroutine, or returns
// ctx's error if it ends first (the goroutine still finishes on its own).
func (s *RunStore) Close(ctx context.Context) error {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.in)
	}
	s.mu.Unlock()
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("run store sink: close: %w", ctx.Err())
	}
}
