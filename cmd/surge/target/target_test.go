package target_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/surgeload/surge/cmd/surge/target"
	"github.com/surgeload/surge/internal/poll"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestParseLatency(t *testing.T) {
	tests := []struct {
		in      string
		want    string // String() of the result
		wantErr string
	}{
		{in: "", want: "0s"},
		{in: "0", want: "0s"},
		{in: "10ms", want: "10ms"},
		{in: " 1.5s ", want: "1.5s"},
		{in: "uniform(5ms,20ms)", want: "uniform(5ms,20ms)"},
		{in: "uniform( 5ms , 20ms )", want: "uniform(5ms,20ms)"},
		{in: "normal(20ms,5ms)", want: "normal(20ms,5ms)"},
		{in: "exp(10ms)", want: "exp(10ms)"},
		{in: "exponential(1s)", want: "exp(1s)"},
		{in: "foo", wantErr: "want a duration or uniform(a,b), normal(mean,sd), exp(mean)"},
		{in: "10", wantErr: "want a duration"},
		{in: "-5ms", wantErr: "negative duration -5ms"},
		{in: "uniform(5ms)", wantErr: "want a duration"},
		{in: "uniform(20ms,5ms)", wantErr: "a (20ms) is greater than b (5ms)"},
		{in: "normal(20ms,5ms", wantErr: "want a duration"},
		{in: "exp(1ms,2ms)", wantErr: "want a duration"},
		{in: "gamma(1ms)", wantErr: "want a duration"},
		{in: "uniform(a,b)", wantErr: "want a duration"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			l, err := target.ParseLatency(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseLatency(%q) error = %v, want it to contain %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseLatency(%q): %v", tt.in, err)
			}
			if got := l.String(); got != tt.want {
				t.Errorf("ParseLatency(%q) = %s, want %s", tt.in, got, tt.want)
			}
		})
	}
}

func TestLatencyDraw(t *testing.T) {
	for _, tt := range []struct {
		in       string
		min, max time.Duration
	}{
		{"7ms", 7 * time.Millisecond, 7 * time.Millisecond},
		{"uniform(5ms,20ms)", 5 * time.Millisecond, 20 * time.Millisecond},
		{"normal(1ms,10ms)", 0, time.Hour},
		{"exp(1ms)", 0, time.Hour},
	} {
		l, err := target.ParseLatency(tt.in)
		if err != nil {
			t.Fatal(err)
		}
		for range 1000 {
			if d := l.Draw(); d < tt.min || d > tt.max {
				t.Fatalf("%s: Draw() = %s, want in [%s, %s]", tt.in, d, tt.min, tt.max)
			}
		}
	}
}

func TestNewErrors(t *testing.T) {
	_, err := target.New(target.Config{Listen: "127.0.0.1:0", Latency: "foo"})
	const want = `target: --latency "foo": want a duration or uniform(a,b), normal(mean,sd), exp(mean)`
	if err == nil || err.Error() != want {
		t.Errorf("bad latency: got %v, want %s", err, want)
	}
	for _, tt := range []struct {
		name string
		cfg  target.Config
		want string
	}{
		{"error rate", target.Config{ErrorRate: 1.5}, "--error-rate 1.5: want a fraction"},
		{"error status", target.Config{ErrorStatus: 99}, "--error-status 99: want an HTTP status 200-599"},
		{"retry after", target.Config{RetryAfter: -1}, "--retry-after -1"},
		{"reset rate", target.Config{ResetRate: -0.1}, "--reset-rate -0.1"},
		{"body size", target.Config{BodySize: -1}, "--body-size -1"},
		{"slow body", target.Config{SlowBody: -time.Second}, "--slow-body -1s"},
		{"max conns", target.Config{MaxConns: -1}, "--max-conns -1"},
		{"h2 streams", target.Config{H2MaxStreams: -1}, "--h2-max-streams -1"},
		{"ws drop", target.Config{WSDropAfter: -time.Second}, "--ws-drop-after -1s"},
		{"ws latency", target.Config{WSEchoLatency: "x"}, `--ws-echo-latency "x"`},
		{"tls without port", target.Config{TLSSelfSigned: true}, "give --tls-listen ADDR"},
		{"ca out without port", target.Config{TLSCAOut: "x.pem"}, "--tls-ca-out/--tls-host: give --tls-listen"},
		{"tls without cert", target.Config{TLSListen: "127.0.0.1:0"}, "give --tls-cert and --tls-key, or --tls-self-signed"},
		{"cert and self-signed", target.Config{TLSListen: "127.0.0.1:0", TLSCert: "c", TLSKey: "k", TLSSelfSigned: true}, "not both"},
		{"cert without key", target.Config{TLSListen: "127.0.0.1:0", TLSCert: "c"}, "give both"},
		{"ca out with files", target.Config{TLSListen: "127.0.0.1:0", TLSCert: "c", TLSKey: "k", TLSCAOut: "x"}, "only with --tls-self-signed"},
		{"missing cert", target.Config{TLSListen: "127.0.0.1:0", TLSCert: "/nonexistent/c", TLSKey: "/nonexistent/k"}, "--tls-cert/--tls-key: open /nonexistent/c"},
		{"ca out unwritable", target.Config{TLSListen: "127.0.0.1:0", TLSSelfSigned: true, TLSCAOut: "/nonexistent/ca.pem"}, "--tls-ca-out: open /nonexistent/ca.pem"},
		{"bad listen", target.Config{Listen: "256.0.0.1:0"}, "target: listen:"},
		{"bad tls listen", target.Config{TLSListen: "256.0.0.1:0", TLSSelfSigned: true}, "target: listen:"},
	} {
		if tt.cfg.Listen == "" {
			tt.cfg.Listen = "127.0.0.1:0"
		}
		s, err := target.New(tt.cfg)
		if err == nil {
			s.Close()
			t.Errorf("%s: no error, want %q", tt.name, tt.want)
		} else if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %q, want it to contain %q", tt.name, err, tt.want)
		}
	}
}

// start runs a target until the test ends.
func start(t *testing.T, cfg target.Config) *target.Server {
	t.Helper()
	cfg.Listen = "127.0.0.1:0"
	s, err := target.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return s
}

func get(t *testing.T, c *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func newClient(t *testing.T) *http.Client {
	tr := &http.Transport{MaxIdleConnsPerHost: 4}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

func TestServerCounts(t *testing.T) {
	s := start(t, target.Config{Latency: "uniform(0s,1ms)"})
	c := newClient(t)
	base := "http://" + s.Addr()
	for i := range 10 {
		path := "/a"
		if i%2 == 1 {
			path = "/b"
		}
		code, body := get(t, c, base+path)
		if code != http.StatusOK || body != "ok\n" {
			t.Fatalf("GET %s = %d %q", path, code, body)
		}
	}
	st := s.Stats()
	if st.Requests != 10 || st.Errors != 0 || st.ByPath["/a"] != 5 || st.ByPath["/b"] != 5 {
		t.Errorf("stats = %+v, want 10 requests, 5 per path", st)
	}
	// Sequential requests on a keep-alive client reuse one connection.
	if st.ConnsAccepted != 1 || st.ConnsActive != 1 {
		t.Errorf("conns accepted/active = %d/%d, want 1/1", st.ConnsAccepted, st.ConnsActive)
	}

	// The stats endpoint reports the same and is not counted itself.
	code, body := get(t, c, base+target.StatsPath)
	if code != http.StatusOK {
		t.Fatalf("GET stats = %d", code)
	}
	var remote target.Stats
	if err := json.Unmarshal([]byte(body), &remote); err != nil {
		t.Fatalf("stats JSON %q: %v", body, err)
	}
	if remote.Requests != 10 || remote.ByPath["/a"] != 5 || remote.ConnsAccepted != 1 {
		t.Errorf("remote stats = %+v", remote)
	}
	if got := s.Stats().Requests; got != 10 {
		t.Errorf("after stats request: requests = %d, want 10", got)
	}

	resp, err := c.Post(base+target.ResetPath, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Errorf("reset = %d", resp.StatusCode)
	}
	st = s.Stats()
	if st.Requests != 0 || st.ConnsAccepted != 0 || len(st.ByPath) != 0 || st.ConnsActive != 1 {
		t.Errorf("after reset: %+v, want zeros but one active conn", st)
	}

	// Closing the client's connection is seen by the server.
	c.CloseIdleConnections()
	poll.Eventually(t, 5*time.Second, "no active conn after the client closed", func() bool { return s.Stats().ConnsActive == 0 })
}

func TestServerErrorRate(t *testing.T) {
	s := start(t, target.Config{ErrorRate: 1})
	c := newClient(t)
	for range 5 {
		if code, body := get(t, c, "http://"+s.Addr()+"/x"); code != http.StatusInternalServerError || body != "error\n" {
			t.Fatalf("got %d %q, want 500", code, body)
		}
	}
	if st := s.Stats(); st.Requests != 5 || st.Errors != 5 {
		t.Errorf("stats = %+v, want 5 requests, 5 errors", st)
	}
}

func TestServerShutdownCutsDelays(t *testing.T) {
	s, err := target.New(target.Config{Listen: "127.0.0.1:0", Latency: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()

	c := newClient(t)
	reqErr := make(chan error, 1)
	go func() {
		resp, err := c.Get("http://" + s.Addr() + "/slow")
		if err == nil {
			resp.Body.Close()
		}
		reqErr <- err
	}()
	poll.Eventually(t, 5*time.Second, "the request arrived", func() bool { return s.Stats().Requests != 0 })
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(4 * time.Second):
		t.Fatal("Run did not return promptly with a delayed request in flight")
	}
	<-reqErr
}

func TestCloseWithoutRun(t *testing.T) {
	s, err := target.New(target.Config{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if c, err := net.Dial("tcp", s.Addr()); err == nil {
		c.Close()
		t.Error("listener still accepts after Close")
	}
}

func TestServerRedirectAndBySecond(t *testing.T) {
	s := start(t, target.Config{})
	c := newClient(t)
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	base := "http://" + s.Addr()
	resp, err := c.Get(base + target.RedirectPath + "?to=http://127.0.0.2:1/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "http://127.0.0.2:1/x" {
		t.Errorf("redirect = %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if code, _ := get(t, c, base+target.RedirectPath); code != http.StatusBadRequest {
		t.Errorf("redirect without to = %d, want 400", code)
	}
	get(t, c, base+"/a")
	st := s.Stats()
	var sum int64
	for _, n := range st.BySecond {
		sum += n
	}
	if st.Requests != 3 || sum != 3 || st.ByPath[target.RedirectPath] != 2 {
		t.Errorf("stats = %+v, want 3 requests, 3 by second, 2 redirects", st)
	}
	s.Reset()
	if st := s.Stats(); len(st.BySecond) != 0 {
		t.Errorf("after reset: by_second %v", st.BySecond)
	}
}

// --metrics serves the request-duration histogram by route, method and
// status, uncounted, with the process's CPU and memory; the histogram's
// count per series is exactly the requests answered.
func TestMetrics(t *testing.T) {
	s := start(t, target.Config{Metrics: true})
	base := "http://" + s.Addr()
	for i := range 30 {
		path := "/api/items"
		if i%3 == 0 {
			path += "?status=503"
		}
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	resp, err := http.Get(base + target.MetricsPath)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	text := string(body)
	for _, want := range []string{
		`http_server_request_duration_seconds_count{http_request_method="GET",http_response_status_code="200",http_route="/api/items"} 20`,
		`http_server_request_duration_seconds_count{http_request_method="GET",http_response_status_code="503",http_route="/api/items"} 10`,
		`http_server_request_duration_seconds_bucket{http_request_method="GET",http_response_status_code="200",http_route="/api/items",le="+Inf"} 20`,
		"# TYPE process_cpu_seconds_total counter", "process_resident_memory_bytes ",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %q:\n%s", want, text)
		}
	}
	if st := s.Stats(); st.Requests != 30 {
		t.Errorf("target counted %d requests, want 30 (not /metrics)", st.Requests)
	}
}
