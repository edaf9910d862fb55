package httpclient

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/surgeload/surge/internal/cputime"
	"github.com/surgeload/surge/plan"
)

// BenchmarkDo compares this package's HTTP/1.1 client ("own") with the
// net/http client it replaced ("nethttp"), on keep-alive connections to a
// small fixed response served by a child process (so that cpu-ns/op is the
// client's CPU alone: user+system time of this process per request):
//
//	go test -run '^$' -bench Do -benchmem ./agent/httpclient/
//
// seq is one connection, request after request; par is 16 connections
// (8 goroutines per GOMAXPROCS), each a session of its own.
func BenchmarkDo(b *testing.B) {
	url := benchServer(b)
	own := func(b *testing.B) func() func() error {
		c := newClient(b, Options{})
		req := prep(b, plan.Request{Method: "GET", URL: url})
		ctx := context.Background()
		return func() func() error {
			s := c.Session()
			return func() error {
				if r := s.Do(ctx, req, nil, time.Now); r.Failed() {
					return fmt.Errorf("%s %v", r.Status, r.Err)
				}
				return nil
			}
		}
	}
	nethttp := func(b *testing.B) func() func() error {
		tr := &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true, IdleConnTimeout: 90 * time.Second}
		b.Cleanup(tr.CloseIdleConnections)
		hc := &http.Client{Transport: tr}
		ctx := context.Background()
		return func() func() error {
			return func() error { // what the client did before: build, send, discard
				hr, err := http.NewRequestWithContext(ctx, "GET", url, nil)
				if err != nil {
					return err
				}
				hr.Header = http.Header{}
				resp, err := hc.Do(hr)
				if err != nil {
					return err
				}
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					return fmt.Errorf("status %d", resp.StatusCode)
				}
				return err
			}
		}
	}
	for _, impl := range []struct {
		name string
		mk   func(*testing.B) func() func() error
	}{{"own", own}, {"nethttp", nethttp}} {
		b.Run(impl.name+"/seq", func(b *testing.B) {
			do := impl.mk(b)()
			b.ReportAllocs()
			cpu := int64(cputime.Process())
			for b.Loop() {
				if err := do(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(int64(cputime.Process())-cpu)/float64(b.N), "cpu-ns/op")
		})
		b.Run(impl.name+"/par", func(b *testing.B) {
			mk := impl.mk(b)
			b.ReportAllocs()
			b.SetParallelism(8)
			cpu := int64(cputime.Process())
			b.RunParallel(func(pb *testing.PB) {
				do := mk()
				for pb.Next() {
					if err := do(); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(int64(cputime.Process())-cpu)/float64(b.N), "cpu-ns/op")
		})
	}
}

// benchServer starts this test binary as a child serving benchResponse on
// 127.0.0.1 (see TestMain) and returns its URL; the child ends with the
// benchmark (its stdin closes).
func benchServer(b testing.TB) string {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), benchServeEnv+"=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		stdin.Close()
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		b.Fatalf("bench server: %v", err)
	}
	return "http://" + strings.TrimSpace(line) + "/"
}

// benchServeEnv makes the test binary a bench server (TestMain).
const benchServeEnv = "SURGE_HTTPCLIENT_BENCH_SERVE"

// benchResponse is a small response with the headers nginx sends.
const benchResponse = "HTTP/1.1 200 OK\r\nServer: nginx\r\nDate: Thu, 26 Nov 2026 12:00:00 GMT\r\n" +
	"Content-Type: text/plain\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok"

// serveBench answers every request on 127.0.0.1 with benchResponse until
// stdin closes.
func serveBench() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(ln.Addr())
	var wg sync.WaitGroup
	wg.Go(func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		ln.Close()
	})
	for {
		c, err := ln.Accept()
		if err != nil {
			break
		}
		go func() { // ends when the client closes the connection or the process exits
			defer c.Close()
			buf := make([]byte, 16<<10)
			resp := []byte(benchResponse)
			var tail []byte // the last bytes read: a blank line may straddle two reads
			for {
				n, err := c.Read(buf)
				if err != nil {
					return
				}
				// Requests carry no body: one per blank line.
				in := append(tail, buf[:n]...)
				out := bytes.Repeat(resp, bytes.Count(in, []byte("\r\n\r\n")))
				if i := bytes.LastIndex(in, []byte("\r\n\r\n")); i >= 0 {
					in = in[i+4:]
				}
				tail = append([]byte(nil), in[max(0, len(in)-3):]...)
				if _, err := c.Write(out); err != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
}
