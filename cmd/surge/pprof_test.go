package main

import (
	"io"
	"log/slog"
	"net/http"
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
}
