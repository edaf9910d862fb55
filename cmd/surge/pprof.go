package main

import (
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
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
