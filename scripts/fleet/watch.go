package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
)

// runWatch follows one run's Runs.Watch stream: when each interval's
// progress first reached this client, and the run's summary.
type runWatch struct {
	started chan struct{}            // closed at the first progress
	summary chan *surgev1.RunSummary // the summary, once
	err     chan error               // why the stream ended before a summary
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	mu       sync.Mutex
	arrivals map[int64]time.Time
	last     time.Time // the latest progress
}

// watchRun opens the watch of run id; stop ends it.
func watchRun(ctx context.Context, runs surgev1.RunsClient, id string) (*runWatch, error) {
	wctx, cancel := context.WithCancel(ctx)
	stream, err := runs.Watch(wctx, &surgev1.WatchRequest{RunId: id})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("watch: %w", err)
	}
	w := &runWatch{started: make(chan struct{}), summary: make(chan *surgev1.RunSummary, 1), err: make(chan error, 1),
		cancel: cancel, arrivals: map[int64]time.Time{}}
	w.wg.Go(func() { // ends with the stream: summary, error or stop
		first := true
		for {
			u, err := stream.Recv()
			if err != nil {
				w.err <- fmt.Errorf("watch: %w", err)
				return
			}
			switch m := u.GetUpdate().(type) {
			case *surgev1.RunUpdate_Progress:
				w.progress(m.Progress.GetInterval(), time.Now())
				if first {
					close(w.started)
					first = false
				}
			case *surgev1.RunUpdate_Summary:
				w.summary <- m.Summary
				return
			}
		}
	})
	return w, nil
}

func (w *runWatch) progress(interval int64, at time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, dup := w.arrivals[interval]; !dup {
		w.arrivals[interval] = at
	}
	w.last = at
}

// seen returns when each interval's progress first arrived, and the
// latest progress.
func (w *runWatch) seen() (map[int64]time.Time, time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[int64]time.Time, len(w.arrivals))
	for k, v := range w.arrivals {
		out[k] = v
	}
	return out, w.last
}

// stop ends the watch and waits for its goroutine.
func (w *runWatch) stop() {
	w.cancel()
	w.wg.Wait()
}
