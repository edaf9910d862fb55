package target_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/surgeload/surge/cmd/surge/target"
	"github.com/surgeload/surge/internal/poll"
)

// 50 clients with a keep-alive connection each, 4 requests apiece, open
// exactly 50 connections, all at once by the end.
func TestConnsExactPerClient(t *testing.T) {
	const vus, iters = 50, 4
	s := start(t, target.Config{Latency: "uniform(0s,2ms)"})
	url := "http://" + s.Addr() + "/vu"
	var wg sync.WaitGroup
	errs := make(chan error, vus)
	for range vus {
		c := client(transport(t, s, http1))
		wg.Go(func() {
			for range iters {
				resp, err := c.Get(url)
				if err != nil {
					errs <- err
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	st := s.Stats()
	t.Logf("requests %d, conns accepted %d, peak %d, active %d", st.Requests, st.ConnsAccepted, st.ConnsPeak, st.ConnsActive)
	if st.Requests != vus*iters || st.RequestsHTTP1 != vus*iters || st.ByStatus[200] != vus*iters {
		t.Errorf("requests = %d (http1 %d, 200s %d), want %d", st.Requests, st.RequestsHTTP1, st.ByStatus[200], vus*iters)
	}
	if st.ConnsAccepted != vus || st.ConnsPeak != vus || st.ConnsActive != vus || st.ConnsRejected != 0 {
		t.Errorf("conns accepted/peak/active/rejected = %d/%d/%d/%d, want %d/%d/%d/0",
			st.ConnsAccepted, st.ConnsPeak, st.ConnsActive, st.ConnsRejected, vus, vus, vus)
	}

	// Reset keeps the open connections as the new peak.
	s.Reset()
	if st := s.Stats(); st.ConnsAccepted != 0 || st.ConnsPeak != vus || st.ConnsActive != vus {
		t.Errorf("after reset: accepted/peak/active = %d/%d/%d, want 0/%d/%d", st.ConnsAccepted, st.ConnsPeak, st.ConnsActive, vus, vus)
	}
}

// A client without keep-alive opens one connection per request.
func TestConnsOnePerRequest(t *testing.T) {
	const n = 20
	s := start(t, target.Config{})
	tr := transport(t, s, http1)
	tr.DisableKeepAlives = true
	c := client(tr)
	for range n {
		if code, _ := get(t, c, "http://"+s.Addr()+"/never"); code != http.StatusOK {
			t.Fatalf("status %d", code)
		}
	}
	poll.Eventually(t, 10*time.Second, "connections closed", func() bool { return s.Stats().ConnsActive == 0 })
	if st := s.Stats(); st.ConnsAccepted != n || st.Requests != n {
		t.Errorf("conns accepted %d for %d requests, want one each", st.ConnsAccepted, st.Requests)
	}
}

// rawGet sends one HTTP/1.1 request on c and reads the status line.
func rawGet(c net.Conn, br *bufio.Reader) (string, error) {
	if _, err := fmt.Fprintf(c, "GET /raw HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		return "", err
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return "", err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.Status, nil
}

// Connections beyond MaxConns are reset at once and counted; when one
// closes, a new one is served.
func TestMaxConns(t *testing.T) {
	const maxConns = 3
	s := start(t, target.Config{MaxConns: maxConns})
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	dial := func() (net.Conn, *bufio.Reader) {
		c, err := net.Dial("tcp", s.Addr())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		return c, bufio.NewReader(c)
	}
	for range maxConns {
		c, br := dial()
		if status, err := rawGet(c, br); err != nil || status != "200 OK" {
			t.Fatalf("connection within the bound: %q, %v", status, err)
		}
	}
	// The reset can beat the client's connect to completion on loopback:
	// then the dial itself fails with ECONNRESET.
	c, err := net.Dial("tcp", s.Addr())
	if err == nil {
		conns = append(conns, c)
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		_, err = rawGet(c, bufio.NewReader(c))
	}
	if !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE) {
		t.Fatalf("connection beyond the bound: err = %v, want connection reset", err)
	}
	st := s.Stats()
	if st.ConnsAccepted != maxConns || st.ConnsRejected != 1 || st.ConnsPeak != maxConns {
		t.Errorf("accepted/rejected/peak = %d/%d/%d, want %d/1/%d", st.ConnsAccepted, st.ConnsRejected, st.ConnsPeak, maxConns, maxConns)
	}

	conns[0].Close()
	poll.Eventually(t, 10*time.Second, "a connection to close", func() bool { return s.Stats().ConnsActive == maxConns-1 })
	c, br := dial()
	if status, err := rawGet(c, br); err != nil || status != "200 OK" {
		t.Fatalf("after one closed: %q, %v", status, err)
	}
	if st := s.Stats(); st.ConnsAccepted != maxConns+1 || st.ConnsRejected != 1 {
		t.Errorf("accepted/rejected = %d/%d, want %d/1", st.ConnsAccepted, st.ConnsRejected, maxConns+1)
	}
}
