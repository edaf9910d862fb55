package httpclient

import (
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
)

// cookieJar is one VU's cookies, kept by RFC 6265's rules (domain and
// host-only cookies, path, Expires and Max-Age, Secure) as
// net/http/cookiejar applies them. It is looked up only once a response
// set a cookie, so a scenario whose target sets none pays nothing.
type cookieJar struct {
	jar  *cookiejar.Jar
	used atomic.Bool
}

func newCookieJar() *cookieJar {
	j, _ := cookiejar.New(nil) // never fails without options
	return &cookieJar{jar: j}
}

// add stores the cookies that lines, a response's Set-Cookie values, set
// for a request to u; malformed ones are ignored, as browsers do.
func (j *cookieJar) add(u *url.URL, lines []string) {
	if len(lines) == 0 {
		return
	}
	cs := make([]*http.Cookie, 0, len(lines))
	for _, l := range lines {
		if c, err := http.ParseSetCookie(l); err == nil {
			cs = append(cs, c)
		}
	}
	j.jar.SetCookies(u, cs)
	j.used.Store(true)
}

// attach returns cl with the jar's cookies for its URL added to its Cookie
// header (after the plan's own), or cl itself when the jar has none.
func (j *cookieJar) attach(cl *call) *call {
	if !j.used.Load() {
		return cl
	}
	cs := j.jar.Cookies(cl.u)
	if len(cs) == 0 {
		return cl
	}
	var b strings.Builder
	for i, c := range cs {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(c.Name)
		b.WriteByte('=')
		b.WriteString(c.Value)
	}
	n := *cl
	n.wire, n.wireClose = nil, nil
	n.hdrs = slices.Clone(cl.hdrs)
	if i := slices.IndexFunc(n.hdrs, func(h hdr) bool { return h.k == "Cookie" }); i >= 0 {
		n.hdrs[i].v += "; " + b.String()
		return &n
	}
	i, _ := slices.BinarySearchFunc(n.hdrs, "Cookie", func(h hdr, k string) int { return strings.Compare(h.k, k) })
	n.hdrs = slices.Insert(n.hdrs, i, hdr{"Cookie", b.String()})
	return &n
}
