package main

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"runtime"
	"strings"
	"testing"
)

// --pprof-addr serves the profiles on a loopback address and refuses any
// other as a usage error.
func TestPprofAddr(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	for _, addr := range []string{":6060", "0.0.0.0:6060", "10.0.0.1:6060", "example.com:6060", "127.0.0.1"} {
		if _, stop, err := startPprof(addr, log); err == nil {
			stop()
			t.Errorf("%q accepted", addr)
		} else if exitCode(err) != exitUsage {
			t.Errorf("%q: exit code %d, want usage", addr, exitCode(err))
		}
	}
	addr, stop, err := startPprof("127.0.0.1:0", log)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get("http://" + addr + "/debug/pprof/heap?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), "heap profile") {
		t.Errorf("heap profile: %d %.100q", resp.StatusCode, b)
	}

	// The runtime's metrics, as JSON (the live heap is that of the last
	// GC: this test forces one, the endpoint does not).
	runtime.GC()
	resp, err = client.Get("http://" + addr + "/debug/runtime")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]float64
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatalf("runtime metrics: %v", err)
	}
	if live, goal := m["/gc/heap/live:bytes"], m["/gc/heap/goal:bytes"]; live <= 0 || goal < live || m["/sched/goroutines:goroutines"] < 1 {
		t.Errorf("runtime metrics: live heap %v, goal %v, goroutines %v", live, goal, m["/sched/goroutines:goroutines"])
	}
}
