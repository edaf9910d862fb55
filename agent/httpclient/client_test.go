package httpclient

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/surgeload/surge/plan"
)

func TestMain(m *testing.M) {
	if os.Getenv(benchServeEnv) != "" { // the child of BenchmarkDo
		serveBench()
		return
	}
	goleak.VerifyTestMain(m)
}

func TestParseAllowList(t *testing.T) {
	l, err := ParseAllowList([]string{"10.0.0.0/8", "192.168.1.1", "::1", "[fe80::1]", "api.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	for ip, want := range map[string]bool{"10.1.2.3": true, "11.0.0.1": false, "192.168.1.1": true, "192.168.1.2": false, "::1": true, "fe80::1": true, "::ffff:10.0.0.1": true} {
		if got := l.AllowsIP(netip.MustParseAddr(ip)); got != want {
			t.Errorf("AllowsIP(%s) = %v, want %v", ip, got, want)
		}
	}
	if !l.allowsName("API.example.com.") {
		t.Error("host entry not allowed by name")
	}
	_, err = ParseAllowList([]string{"10.0.0.0/99", "not a host!", "ok.example"})
	if err == nil || !strings.Contains(err.Error(), "10.0.0.0/99") || !strings.Contains(err.Error(), "not a host!") {
		t.Errorf("bad entries: err = %v, want both named", err)
	}
}

func TestDefaultAllowList(t *testing.T) {
	l, err := ParseAllowList(nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := l.String(); got != "[127.0.0.0/8 ::1]" {
		t.Errorf("default = %s", got)
	}
	ctx := context.Background()
	for _, h := range []string{"127.0.0.1", "127.9.9.9", "::1", "[::1]", "localhost"} {
		if _, err := l.Resolve(ctx, nil, h); err != nil {
			t.Errorf("%s: %v", h, err)
		}
	}
	_, err = l.Resolve(ctx, nil, "10.0.0.1")
	var be *BlockedError
	if !errors.As(err, &be) {
		t.Fatalf("10.0.0.1: err = %v, want BlockedError", err)
	}
	want := `target host "10.0.0.1" (10.0.0.1) is not in the allow-list [127.0.0.0/8 ::1]; start the agent with --allow 10.0.0.1 to permit it`
	if err.Error() != want {
		t.Errorf("message:\n got %s\nwant %s", err, want)
	}
}

func do(t *testing.T, c *Client, url string, timeout time.Duration) Result {
	t.Helper()
	r, err := Prepare(plan.Request{Name: "r", Method: "GET", URL: url, Timeout: plan.Duration(timeout)})
	if err != nil {
		t.Fatal(err)
	}
	return c.Do(context.Background(), r, time.Now)
}

func TestRedirectToDisallowedIsBlockedAtDial(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://127.0.0.2:9/", http.StatusFound)
	}))
	defer srv.Close()
	// Only 127.0.0.1 is allowed: the redirect to 127.0.0.2 (loopback, so
	// nothing could leave the machine even if the check failed) is refused.
	allow, err := ParseAllowList([]string{"127.0.0.1/32"})
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t, Options{Allow: allow})
	res := do(t, c, srv.URL, 5*time.Second)
	if res.Status != StatusBlocked {
		t.Fatalf("status %q (err %v), want blocked", res.Status, res.Err)
	}
	if !res.Failed() {
		t.Error("blocked request not failed")
	}
	var be *BlockedError
	if !errors.As(res.Err, &be) || be.Host != "127.0.0.2" {
		t.Errorf("err %v, want a BlockedError for 127.0.0.2", res.Err)
	}
}

func TestClassify(t *testing.T) {
	// Refused: a port nobody listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String() + "/"
	ln.Close()

	stop := make(chan struct{})
	stall := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	}))
	defer stall.Close()
	defer close(stop)
	fail := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("busy"))
	}))
	defer fail.Close()
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("hello"))
	}))
	defer ok.Close()

	c := newClient(t, Options{})
	for _, tc := range []struct {
		name, url, want string
		failed          bool
		bytesIn         int64
	}{
		{"refused", closed, StatusRefused, true, 0},
		{"timeout", stall.URL, StatusTimeout, true, 0},
		{"5xx", fail.URL, "5xx", true, 4},
		{"2xx", ok.URL, "2xx", false, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := do(t, c, tc.url, 200*time.Millisecond)
			if res.Status != tc.want || res.Failed() != tc.failed || res.BytesIn != tc.bytesIn {
				t.Errorf("got status %q failed %v bytes in %d (err %v), want %q %v %d",
					res.Status, res.Failed(), res.BytesIn, res.Err, tc.want, tc.failed, tc.bytesIn)
			}
			if sent := tc.name != "refused"; sent != (res.BytesOut > 0) || res.End.Before(res.Sent) {
				t.Errorf("bytes out %d, sent %v end %v", res.BytesOut, res.Sent, res.End)
			}
		})
	}
}

func TestClassifyErrors(t *testing.T) {
	for err, want := range map[error]string{
		&net.DNSError{Err: "no such host", Name: "x"}: StatusDNS,
		context.DeadlineExceeded:                      StatusTimeout,
		&BlockedError{Host: "x"}:                      StatusBlocked,
		errors.New("boom"):                            StatusOther,
	} {
		if got := Classify(err); got != want {
			t.Errorf("Classify(%v) = %q, want %q", err, got, want)
		}
	}
}

// TestNewDefaults: sizes and timeouts come from the plan, else the
// options, else the package's defaults.
func TestNewDefaults(t *testing.T) {
	for _, tc := range []struct {
		name          string
		opts          Options
		pool, streams int
		dial          time.Duration
		reuse, http2  string
	}{
		{"none", Options{}, defaultPoolSize, defaultStreams, defaultDialTimeout, plan.ReusePerVU, plan.HTTP2Off},
		{"options", Options{PeakVUs: 7, DialTimeout: 2 * time.Second}, 7, defaultStreams, 2 * time.Second, plan.ReusePerVU, plan.HTTP2Off},
		{"plan", Options{PeakVUs: 7, DialTimeout: 2 * time.Second, Conn: &plan.Connection{Reuse: plan.ReusePool, HTTP2: plan.HTTP2H2C,
			PoolSize: 3, MaxConcurrentStreams: 5, DialTimeout: plan.Duration(time.Second)}}, 3, 5, time.Second, plan.ReusePool, plan.HTTP2H2C},
		{"negative", Options{PeakVUs: -1, DialTimeout: -1, Conn: &plan.Connection{PoolSize: -3, MaxConcurrentStreams: -5, DialTimeout: -1}},
			defaultPoolSize, defaultStreams, defaultDialTimeout, plan.ReusePerVU, plan.HTTP2Off},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newClient(t, tc.opts)
			if c.poolSize != tc.pool || c.streams != tc.streams || c.dialTimeout != tc.dial || c.reuse != tc.reuse || c.http2 != tc.http2 {
				t.Errorf("pool %d streams %d dial %v reuse %s http2 %s, want %d %d %v %s %s",
					c.poolSize, c.streams, c.dialTimeout, c.reuse, c.http2, tc.pool, tc.streams, tc.dial, tc.reuse, tc.http2)
			}
		})
	}
}
