package httpclient

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/surgeload/surge/internal/tcptest"
	"github.com/surgeload/surge/plan"
)

func TestResponseFraming(t *testing.T) {
	big := strings.Repeat("x", 3*readBufSize+17)
	for _, tc := range []struct {
		name, method, reply string
		code                int
		body                string
		conns               int64 // for 3 requests on one session
	}{
		{"content-length", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", 200, "hello", 1},
		{"large body", "GET", "HTTP/1.1 200 OK\r\nContent-Length: " + strconv.Itoa(len(big)) + "\r\n\r\n" + big, 200, big, 1},
		{"chunked", "GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nTrailer: x\r\n\r\n", 200, "hello, world", 1},
		{"1xx skipped", "GET", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\nok", 201, "ok", 1},
		{"204", "GET", "HTTP/1.1 204 No Content\r\n\r\n", 204, "", 1},
		{"304", "GET", "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", 304, "", 1},
		{"HEAD", "HEAD", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", 200, "", 1},
		{"close", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok", 200, "ok", 3},
		{"to EOF", "GET", "HTTP/1.1 200 OK\r\n\r\nuntil the end", 200, "", 3},
		{"HTTP/1.0", "GET", "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", 200, "ok", 3},
		{"HTTP/1.0 keep-alive", "GET", "HTTP/1.0 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok", 200, "ok", 1},
		{"folded header", "GET", "HTTP/1.1 200 OK\r\nX-A: 1\r\n  2\r\nContent-Length: 2\r\n\r\nok", 200, "ok", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var accepted atomic.Int64
			addr := tcptest.Serve(t, func(c net.Conn) {
				accepted.Add(1)
				br := bufio.NewReader(c)
				for {
					if _, err := http.ReadRequest(br); err != nil {
						return
					}
					if _, err := c.Write([]byte(tc.reply)); err != nil {
						return
					}
					if tc.name == "to EOF" || tc.name == "close" || strings.HasPrefix(tc.reply, "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n") {
						return
					}
				}
			})
			c := newClient(t, Options{})
			s := c.Session()
			defer s.Close()
			req := prep(t, plan.Request{Method: tc.method, URL: "http://" + addr + "/", Checks: &plan.Checks{BodyContains: "o"}})
			for range 3 {
				res := s.Do(context.Background(), req, nil, time.Now)
				if res.Err != nil || res.Code != tc.code {
					t.Fatalf("code %d err %v, want %d", res.Code, res.Err, tc.code)
				}
				want := tc.body
				if tc.name == "to EOF" {
					want = "until the end"
				}
				if string(res.Body) != want || res.BytesIn != int64(len(want)) {
					t.Fatalf("body %d bytes (%q...), bytes in %d, want %d", len(res.Body), trunc(res.Body), res.BytesIn, len(want))
				}
			}
			if got := accepted.Load(); got != tc.conns {
				t.Errorf("%d connections for 3 requests, want %d", got, tc.conns)
			}
		})
	}
}

func trunc(b []byte) string {
	if len(b) > 20 {
		return string(b[:20])
	}
	return string(b)
}
