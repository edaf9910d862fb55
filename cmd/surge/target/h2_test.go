package target_test

import (
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"

	"github.com/surgeload/surge/cmd/surge/target"
)

// getProto does a GET and returns the status and the response's protocol.
func getProto(t *testing.T, c *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Proto
}

// With H2C, one port serves HTTP/1.1 and h2c with prior knowledge; the
// h2c requests share one connection.
func TestH2CAlongsideHTTP1(t *testing.T) {
	s := start(t, target.Config{H2C: true})
	url := "http://" + s.Addr() + "/p"
	h2cClient := client(transport(t, s, h2c))
	for range 5 {
		if code, proto := getProto(t, h2cClient, url); code != 200 || proto != "HTTP/2.0" {
			t.Fatalf("h2c: %d %s", code, proto)
		}
	}
	h1 := client(transport(t, s, http1))
	for range 3 {
		if code, proto := getProto(t, h1, url); code != 200 || proto != "HTTP/1.1" {
			t.Fatalf("http1: %d %s", code, proto)
		}
	}
	st := s.Stats()
	if st.Requests != 8 || st.RequestsH2 != 5 || st.RequestsHTTP1 != 3 || st.RequestsTLS != 0 {
		t.Errorf("requests %d, h2 %d, http1 %d, tls %d; want 8, 5, 3, 0", st.Requests, st.RequestsH2, st.RequestsHTTP1, st.RequestsTLS)
	}
	// Go's h2c client now and then dials a spare connection it never
	// uses: H2Conns counts only those that carried a request.
	if st.ConnsAccepted < 2 || st.H2Conns != 1 || st.H2StreamsPeak != 1 {
		t.Errorf("conns %d, h2 conns %d, streams peak %d; want >= 2, 1, 1", st.ConnsAccepted, st.H2Conns, st.H2StreamsPeak)
	}
}

// Without H2C, an h2c client is refused.
func TestH2COff(t *testing.T) {
	s := start(t, target.Config{})
	if resp, err := client(transport(t, s, h2c)).Get("http://" + s.Addr() + "/p"); err == nil {
		resp.Body.Close()
		t.Fatalf("h2c request to an HTTP/1-only target: %s, want an error", resp.Status)
	}
	if st := s.Stats(); st.Requests != 0 {
		t.Errorf("requests = %d, want 0", st.Requests)
	}
}

// The advertised max concurrent streams bounds the streams in flight on a
// connection, so concurrent requests spread over more connections. (Go's
// h2c client dials a connection per concurrent request when it has none,
// and uses few of them: ConnsAccepted counts them all, H2Conns only those
// that carried a request.)
func TestH2MaxStreams(t *testing.T) {
	for _, maxStreams := range []int64{0, 2} {
		t.Run(fmt.Sprint(maxStreams), func(t *testing.T) { testH2MaxStreams(t, maxStreams) })
	}
}

func testH2MaxStreams(t *testing.T, maxStreams int64) {
	const inFlight = 8
	// Every request is held 300ms, so the client has them all in flight
	// at once.
	s := start(t, target.Config{H2C: true, H2MaxStreams: int(maxStreams)})
	c := client(transport(t, s, h2c))
	url := "http://" + s.Addr() + "/m?delay=300ms"
	var wg sync.WaitGroup
	for range inFlight {
		wg.Go(func() {
			resp, err := c.Get(url)
			if err != nil {
				t.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		})
	}
	wg.Wait()
	st := s.Stats()
	t.Logf("%d requests over %d h2 conns, streams peak %d", st.RequestsH2, st.H2Conns, st.H2StreamsPeak)
	if st.RequestsH2 != inFlight {
		t.Errorf("h2 requests = %d, want %d", st.RequestsH2, inFlight)
	}
	t.Logf("conns accepted %d", st.ConnsAccepted)
	switch {
	case maxStreams == 0 && st.H2StreamsPeak <= 2:
		t.Errorf("default limit: streams peak = %d, want the %d requests multiplexed", st.H2StreamsPeak, inFlight)
	case maxStreams > 0 && st.H2StreamsPeak > maxStreams:
		t.Errorf("streams peak on one connection = %d, want <= %d", st.H2StreamsPeak, maxStreams)
	case maxStreams > 0 && st.H2Conns < 2:
		t.Errorf("h2 conns = %d, want the requests spread over more than one", st.H2Conns)
	}
}
