package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/surgeload/surge/hist"
)

// httpGet fetches url's body (the harness's own small requests).
func httpGet(ctx context.Context, url string) ([]byte, error) {
	return httpGetWithin(ctx, url, 10*time.Second)
}

// httpGetWithin is httpGet with a timeout of its own.
func httpGetWithin(ctx context.Context, url string, timeout time.Duration) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("%s: %s", url, resp.Status)
	}
	return b, err
}

// serveDelay is `bench serve-delay -listen ADDR -delay D`: an HTTP/1.1
// keep-alive target that answers "ok" after D (held on a timerfd, see
// hold; -sleep: time.Sleep), measuring how long it held
// each request (from the handler's start to its answer); GET /__stats
// returns those hold times since the last /__stats as delayStats.
func serveDelay(args []string) error {
	fs := flag.NewFlagSet("serve-delay", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "address")
	delay := fs.Duration("delay", 10*time.Millisecond, "delay of every answer")
	sleep := fs.Bool("sleep", false, "hold with time.Sleep (a Go timer, up to 1 ms late on an idle process) instead of a timerfd")
	if err := fs.Parse(args); err != nil {
		return err
	}
	wait := hold
	if *sleep {
		wait = func(d time.Duration) error { time.Sleep(d); return nil }
	}
	var (
		mu   sync.Mutex
		held = hist.New()
	)
	mux := http.NewServeMux()
	mux.HandleFunc("/__stats", func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		d := delayStats{Count: held.TotalCount(), P50: held.ValueAtQuantile(50), P99: held.ValueAtQuantile(99)}
		held.Reset()
		mu.Unlock()
		_ = json.NewEncoder(w).Encode(d)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		t0 := time.Now()
		if err := wait(*delay); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		us := time.Since(t0).Microseconds()
		mu.Lock()
		_ = held.RecordValue(hist.Clamp(us))
		mu.Unlock()
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("ok"))
	})
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv := &http.Server{Addr: *listen, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		<-errc
		return nil
	}
}

// startDelayTarget starts `bench serve-delay` on the target's core and
// returns its URL once it listens.
func (e *env) startDelayTarget(ctx context.Context, delay time.Duration) (string, error) {
	port, err := freePort()
	if err != nil {
		return "", err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	targetArgs := []string{"serve-delay", "-listen", addr, "-delay", delay.String()}
	if e.o.fidelitySleep {
		targetArgs = append(targetArgs, "-sleep")
	}
	name, args := e.cmd(e.pinTarget, self, targetArgs...)
	if _, err := e.ps.start(name, args, e.log); err != nil {
		return "", err
	}
	if err := waitTCP(ctx, addr, 10*time.Second); err != nil {
		return "", err
	}
	return "http://" + addr + "/", nil
}
