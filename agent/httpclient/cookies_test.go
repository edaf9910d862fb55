package httpclient

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/surgeload/surge/internal/poll"
	"github.com/surgeload/surge/plan"
)

// cookieServer sets the cookies of its ?set= parameters (each a whole
// Set-Cookie value) and answers with the Cookie header it got.
func cookieServer(t *testing.T, mode string) *testServer {
	return newServer(t, mode, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, v := range r.URL.Query()["set"] {
			w.Header().Add("Set-Cookie", v)
		}
		if to := r.URL.Query().Get("to"); to != "" {
			http.Redirect(w, r, to, http.StatusFound)
			return
		}
		_, _ = w.Write([]byte(r.Header.Get("Cookie")))
	}))
}

// jarClient sends to the names a.app.test, b.app.test and other.test, all
// the test server.
func jarClient(t *testing.T, conn plan.Connection) *Client {
	conn.Hosts = map[string]string{"a.app.test": "127.0.0.1", "b.app.test": "127.0.0.1", "other.test": "127.0.0.1"}
	conn.TLS = &plan.TLS{InsecureSkipVerify: true}
	return newClient(t, Options{Conn: &conn})
}

// cookiesSent sends a request to rawURL on sess and returns the Cookie
// header the server got.
func cookiesSent(t *testing.T, sess *Session, rawURL string, header map[string]string) string {
	t.Helper()
	req := prep(t, plan.Request{Name: "r", URL: rawURL, Headers: header, Checks: &plan.Checks{BodyContains: "x"}})
	res := sess.Do(context.Background(), req, nil, time.Now)
	if res.Err != nil || res.Code != 200 {
		t.Fatalf("GET %s: %d %v", rawURL, res.Code, res.Err)
	}
	return string(res.Body)
}

// on returns the server's URL for host with path and Set-Cookie values.
func on(s *testServer, host, path string, set ...string) string {
	u, _ := url.Parse(s.URL)
	q := url.Values{"set": set}
	return u.Scheme + "://" + host + ":" + u.Port() + path + "?" + q.Encode()
}

func TestCookieDomains(t *testing.T) {
	s := cookieServer(t, "")
	sess := jarClient(t, plan.Connection{}).Session()
	defer sess.Close()
	cookiesSent(t, sess, on(s, "a.app.test", "/", "host=1", "dom=2; Domain=app.test", "evil=3; Domain=other.test"), nil)
	if got := cookiesSent(t, sess, on(s, "a.app.test", "/"), nil); got != "host=1; dom=2" {
		t.Errorf("a.app.test sent %q, want its host-only and domain cookies", got)
	}
	if got := cookiesSent(t, sess, on(s, "b.app.test", "/"), nil); got != "dom=2" {
		t.Errorf("b.app.test sent %q, want only the app.test domain cookie", got)
	}
	if got := cookiesSent(t, sess, on(s, "other.test", "/"), nil); got != "" {
		t.Errorf("other.test sent %q: a.app.test may not set cookies for it", got)
	}
}

func TestCookiePaths(t *testing.T) {
	s := cookieServer(t, "")
	sess := jarClient(t, plan.Connection{}).Session()
	defer sess.Close()
	cookiesSent(t, sess, on(s, "a.app.test", "/login", "api=1; Path=/api", "all=2; Path=/"), nil)
	if got := cookiesSent(t, sess, on(s, "a.app.test", "/api/items"), nil); got != "api=1; all=2" {
		t.Errorf("/api/items sent %q, want the /api cookie first (longer path), then /", got)
	}
	if got := cookiesSent(t, sess, on(s, "a.app.test", "/apiary"), nil); got != "all=2" {
		t.Errorf("/apiary sent %q: /api does not path-match it", got)
	}
}

func TestCookieExpiry(t *testing.T) {
	s := cookieServer(t, "")
	sess := jarClient(t, plan.Connection{}).Session()
	defer sess.Close()
	cookiesSent(t, sess, on(s, "a.app.test", "/", "gone=1", "past=2", "brief=3; Max-Age=1", "kept=4; Max-Age=3600"), nil)
	cookiesSent(t, sess, on(s, "a.app.test", "/", "gone=; Max-Age=0", "past=; Expires=Thu, 01 Jan 1970 00:00:00 GMT"), nil)
	if got := cookiesSent(t, sess, on(s, "a.app.test", "/"), nil); got != "brief=3; kept=4" {
		t.Errorf("sent %q, want the cookies Max-Age=0 and a past Expires deleted dropped", got)
	}
	poll.Eventually(t, 10*time.Second, "the Max-Age=1 cookie expires", func() bool {
		return cookiesSent(t, sess, on(s, "a.app.test", "/"), nil) == "kept=4"
	})
}

func TestCookieSecureOnlyOverHTTPS(t *testing.T) {
	plain, tlsSrv := cookieServer(t, ""), cookieServer(t, "tls")
	sess := jarClient(t, plan.Connection{}).Session()
	defer sess.Close()
	cookiesSent(t, sess, on(tlsSrv, "a.app.test", "/", "sec=1; Secure", "any=2"), nil)
	if got := cookiesSent(t, sess, on(tlsSrv, "a.app.test", "/"), nil); got != "sec=1; any=2" {
		t.Errorf("https sent %q, want both", got)
	}
	if got := cookiesSent(t, sess, on(plain, "a.app.test", "/"), nil); got != "any=2" {
		t.Errorf("http sent %q, want no Secure cookie", got)
	}
}

// Each session (VU) has its own jar; cookies: false keeps none; the plan's
// own Cookie header comes first; a cookie set on a redirect is sent on the
// next hop.
func TestCookieJarPerSession(t *testing.T) {
	s := cookieServer(t, "")
	c := jarClient(t, plan.Connection{})
	a, b := c.Session(), c.Session()
	defer a.Close()
	defer b.Close()
	cookiesSent(t, a, on(s, "a.app.test", "/", "session=A"), nil)
	if got := cookiesSent(t, b, on(s, "a.app.test", "/"), nil); got != "" {
		t.Errorf("session b sent %q: it must not see a's cookies", got)
	}
	if got := cookiesSent(t, a, on(s, "a.app.test", "/"), map[string]string{"Cookie": "mine=1"}); got != "mine=1; session=A" {
		t.Errorf("with the plan's Cookie header, sent %q", got)
	}
	redirect := on(s, "a.app.test", "/", "hop=1") + "&to=" + url.QueryEscape(on(s, "a.app.test", "/landing"))
	if got := cookiesSent(t, b, redirect, nil); got != "hop=1" {
		t.Errorf("after a redirect that set a cookie, the next hop sent %q, want hop=1", got)
	}
	off := false
	none := jarClient(t, plan.Connection{Cookies: &off}).Session()
	defer none.Close()
	cookiesSent(t, none, on(s, "a.app.test", "/", "session=N"), nil)
	if got := cookiesSent(t, none, on(s, "a.app.test", "/"), nil); got != "" {
		t.Errorf("cookies: false sent %q", got)
	}
}

// The jar's cookies go over HTTP/2 too, and its Set-Cookie values are read
// there.
func TestCookieJarH2(t *testing.T) {
	s := cookieServer(t, "h2")
	sess := jarClient(t, plan.Connection{HTTP2: plan.HTTP2H2}).Session()
	defer sess.Close()
	cookiesSent(t, sess, on(s, "a.app.test", "/", "h2=1"), nil)
	if got := cookiesSent(t, sess, on(s, "a.app.test", "/"), nil); !strings.Contains(got, "h2=1") {
		t.Errorf("over HTTP/2 sent %q, want h2=1", got)
	}
}
