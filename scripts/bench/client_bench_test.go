package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/surgeload/surge/agent/httpclient"
	"github.com/surgeload/surge/plan"
)

// BenchmarkClientDo is the agent's request path (httpclient.Client.Do) on
// keep-alive connections, for profiling:
//
//	go test -run '^$' -bench ClientDo -cpuprofile cpu.out ./scripts/bench/
//
// The target is SURGE_BENCH_URL (e.g. the nginx of make bench) when set,
// else an in-process httptest server (whose cost then shows in the
// profile too: focus on httpclient and net/http.(*Transport)).
func BenchmarkClientDo(b *testing.B) {
	url := os.Getenv("SURGE_BENCH_URL")
	if url == "" {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte("ok"))
		}))
		defer srv.Close()
		url = srv.URL + "/"
	}
	c := httpclient.New(httpclient.Options{MaxIdleConnsPerHost: 64})
	defer c.Close()
	req, err := httpclient.Prepare(plan.Request{Method: "GET", URL: url})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if r := c.Do(ctx, req, time.Now); r.Failed() {
				b.Errorf("request failed: %v %d", r.Err, r.Code)
				return
			}
		}
	})
}
