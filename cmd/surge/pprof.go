package main

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime/metrics"
	"time"
)

// startPprof serves Go's profiling endpoints (/debug/pprof/) on addr, a
// loopback address only: profiles show a process's internals and the CPU
// profile costs CPU, so they are for an operator on the machine (or an SSH
// tunnel). It returns the bound address; stop closes the listener and waits for the server's
// goroutine. The handlers are on their own mux, never http.DefaultServeMux.
func startPprof(addr string, log *slog.Logger) (bound string, stop func(), err error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return "", nil, usageErrorf("--pprof-addr %q: %v", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return "", nil, usageErrorf("--pprof-addr %q: want a loopback address such as 127.0.0.1:6060", addr)
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, usageErrorf("--pprof-addr: %v", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/debug/runtime", serveRuntimeMetrics)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(lis); !errors.Is(err, http.ErrServerClosed) {
			log.Warn("pprof server", slog.Any("err", err))
		}
	}()
	log.Info("pprof listening", slog.String("addr", lis.Addr().String()))
	return lis.Addr().String(), func() {
		_ = srv.Close()
		<-done
	}, nil
}

// maybePprof starts the profiling server when addr is set; stop is never
// nil.
func maybePprof(addr string, log *slog.Logger) (stop func(), err error) {
	if addr == "" {
		return func() {}, nil
	}
	_, stop, err = startPprof(addr, log)
	return stop, err
}

// serveRuntimeMetrics writes every scalar Go runtime metric
// (runtime/metrics) as one JSON object, name to value: among them
// /gc/heap/live:bytes (the heap live after the last GC),
// /gc/heap/goal:bytes (the heap size that triggers the next GC) and
// /memory/classes/total:bytes. It reads them without forcing a GC, so
// sampling it does not change what it samples (the heap profile's gc=1
// would).
func serveRuntimeMetrics(w http.ResponseWriter, _ *http.Request) {
	descs := metrics.All()
	samples := make([]metrics.Sample, len(descs))
	for i, d := range descs {
		samples[i].Name = d.Name
	}
	metrics.Read(samples)
	out := make(map[string]any, len(samples))
	for _, s := range samples {
		switch s.Value.Kind() {
		case metrics.KindUint64:
			out[s.Name] = s.Value.Uint64()
		case metrics.KindFloat64:
			out[s.Name] = s.Value.Float64()
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}
