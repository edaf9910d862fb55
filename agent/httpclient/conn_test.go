package httpclient

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/surgeload/surge/internal/tcptest"
	"github.com/surgeload/surge/plan"
)

// scripted answers every request on a connection with reply; with a reply
// ending in "|close", once, then closes.
func scripted(t *testing.T, reply string) string {
	reply, once := strings.CutSuffix(reply, "|close")
	return tcptest.Serve(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			_, _ = io.Copy(io.Discard, req.Body)
			if _, err := c.Write([]byte(reply)); err != nil || once {
				return
			}
		}
	})
}

func TestErrorClasses(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := ln.Addr().String()
	ln.Close()
	reset := tcptest.Serve(t, func(c net.Conn) {
		buf := make([]byte, 4096)
		_, _ = c.Read(buf)
		c.(*net.TCPConn).SetLinger(0) // RST
	})
	closes := tcptest.Serve(t, func(c net.Conn) {
		buf := make([]byte, 4096)
		_, _ = c.Read(buf)
	})
	stall := tcptest.Serve(t, func(c net.Conn) { _, _ = io.Copy(io.Discard, c) })
	tlsSrv := newServer(t, "tls", http.HandlerFunc(okHandler))
	for _, tc := range []struct{ name, url, reply, want string }{
		{"refused", "http://" + refused + "/", "", StatusRefused},
		{"reset", "http://" + reset + "/", "", StatusReset},
		{"closed without reply", "http://" + closes + "/", "", StatusReset},
		{"truncated body", "", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc|close", StatusReset},
		{"timeout", "http://" + stall + "/", "", StatusTimeout},
		{"tls", tlsSrv.URL + "/", "", StatusTLS},
		{"garbage", "", "HELLO THERE\r\n\r\n", StatusProtocol},
		{"bad status code", "", "HTTP/1.1 2x0 OK\r\n\r\n", StatusProtocol},
		{"bad header", "", "HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", StatusProtocol},
		{"bad content-length", "", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", StatusProtocol},
		{"conflicting content-length", "", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", StatusProtocol},
		{"bad chunk", "", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", StatusProtocol},
		{"huge header", "", "HTTP/1.1 200 OK\r\nX: " + strings.Repeat("a", maxLine) + "\r\n\r\n", StatusProtocol},
		{"unsupported scheme", "ftp://127.0.0.1/", "", StatusOther},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := tc.url
			if tc.reply != "" {
				url = "http://" + scripted(t, tc.reply) + "/"
			}
			c := newClient(t, Options{})
			timeout := 5 * time.Second
			if tc.want == StatusTimeout {
				timeout = 200 * time.Millisecond
			}
			res := c.Do(context.Background(), prep(t, plan.Request{URL: url, Timeout: plan.Duration(timeout)}), time.Now)
			if res.Status != tc.want || !res.Failed() {
				t.Errorf("status %q (err %v), want %q", res.Status, res.Err, tc.want)
			}
		})
	}
}

func TestPhases(t *testing.T) {
	srv := newServer(t, "", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(20 * time.Millisecond) // the server's think time, seen in TTFB
		_, _ = w.Write([]byte("ok"))
	}))
	c := newClient(t, Options{})
	s := c.Session()
	defer s.Close()
	req := get(t, srv.URL+"/")
	res := s.Do(context.Background(), req, nil, time.Now)
	if res.Phases != HasConnect|HasTTFB || res.Connect <= 0 || res.DNS != 0 || res.TLS != 0 {
		t.Errorf("first request: phases %b connect %v dns %v tls %v, want connect and ttfb", res.Phases, res.Connect, res.DNS, res.TLS)
	}
	if res.TTFB < 20*time.Millisecond || res.TTFB > res.End.Sub(res.Sent) {
		t.Errorf("ttfb %v, want ≥ 20ms and ≤ the latency %v", res.TTFB, res.End.Sub(res.Sent))
	}
	res = s.Do(context.Background(), req, nil, time.Now)
	if res.Phases != HasTTFB || res.Connect != 0 {
		t.Errorf("second request: phases %b connect %v, want ttfb only", res.Phases, res.Connect)
	}
}

func TestRequestBodiesTemplatesAndRedirects(t *testing.T) {
	type seen struct{ method, path, body, header, ct string }
	got := make(chan seen, 10)
	srv := newServer(t, "", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{r.Method, r.URL.RequestURI(), string(b), r.Header.Get("X-Vu"), r.Header.Get("Content-Type")}
		switch r.URL.Path {
		case "/moved":
			http.Redirect(w, r, "/there?x=1", http.StatusFound)
		case "/kept":
			http.Redirect(w, r, "/there", http.StatusTemporaryRedirect)
		default:
			_, _ = w.Write([]byte(`{"ok":true}`))
		}
	}))
	c := newClient(t, Options{})
	s := c.Session()
	defer s.Close()
	req := prep(t, plan.Request{Method: "POST", URL: srv.URL + "/vu/{{vu}}/{{iter}}", Body: `{"vu":{{vu}}}`,
		Headers: map[string]string{"X-Vu": "v{{vu}}", "Content-Type": "application/json"}})
	res := s.Do(context.Background(), req, &Vars{VU: 7, Iter: 3}, time.Now)
	if res.Code != 200 {
		t.Fatalf("templated POST: %d %v", res.Code, res.Err)
	}
	if g := <-got; g != (seen{"POST", "/vu/7/3", `{"vu":7}`, "v7", "application/json"}) {
		t.Errorf("server saw %+v", g)
	}
	// 302 turns a POST into a GET without body; 307 keeps both.
	res = s.Do(context.Background(), prep(t, plan.Request{Method: "POST", URL: srv.URL + "/moved", Body: "b"}), nil, time.Now)
	if res.Code != 200 {
		t.Fatalf("302: %d %v", res.Code, res.Err)
	}
	if g1, g2 := <-got, <-got; g1.method != "POST" || g2 != (seen{"GET", "/there?x=1", "", "", ""}) {
		t.Errorf("302: server saw %+v then %+v", g1, g2)
	}
	res = s.Do(context.Background(), prep(t, plan.Request{Method: "PUT", URL: srv.URL + "/kept", Body: "b"}), nil, time.Now)
	if g1, g2 := <-got, <-got; res.Code != 200 || g2 != (seen{"PUT", "/there", "b", "", ""}) {
		t.Errorf("307: %d, server saw %+v then %+v", res.Code, g1, g2)
	}
}

func TestEnvRedaction(t *testing.T) {
	env := func(string) (string, bool) { return "s3cr3t-host", true }
	c := newClient(t, Options{Resolver: &net.Resolver{PreferGo: true, Dial: func(context.Context, string, string) (net.Conn, error) {
		return nil, io.EOF
	}}})
	req := prep(t, plan.Request{URL: `http://{{env "HOST"}}.invalid/`})
	res := c.DoWith(context.Background(), req, &Vars{Env: env}, time.Now)
	if res.Err == nil || strings.Contains(res.Err.Error(), "s3cr3t") {
		t.Errorf("err %v, want it redacted", res.Err)
	}
}

func TestHeaderInjectionRejected(t *testing.T) {
	if _, err := Prepare(plan.Request{URL: "http://127.0.0.1/", Headers: map[string]string{"X": "a\r\nEvil: 1"}}); err == nil {
		t.Error("a header value with CRLF was accepted")
	}
	c := newClient(t, Options{})
	req := prep(t, plan.Request{URL: "http://127.0.0.1:9/", Headers: map[string]string{"X": `{{env "V"}}`}})
	res := c.DoWith(context.Background(), req, &Vars{Env: func(string) (string, bool) { return "a\nb", true }}, time.Now)
	if res.Err == nil || res.Status != StatusOther {
		t.Errorf("an expanded value with a line break: %q %v", res.Status, res.Err)
	}
}
