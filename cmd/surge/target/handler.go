package target

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// slowChunkEvery is the pace of a slow body's chunks (when it has enough
// bytes); a slow body is written in at most maxSlowChunks chunks.
const (
	slowChunkEvery = 10 * time.Millisecond
	maxSlowChunks  = 1000
)

// fillerSize is the size of the server's filler; a larger body repeats it.
const fillerSize = 64 << 10

func makeFiller() []byte {
	b := make([]byte, fillerSize)
	for i := range b {
		b[i] = 'x'
	}
	return b
}

// okBody is a successful reply's body when no size is asked for.
const okBody = "ok\n"

// The query parameters of the load handler (see docs/target.md).
const (
	qDelay      = "delay"       // latency distribution
	qStatus     = "status"      // reply status (always, or on failure with fail_rate)
	qFailRate   = "fail_rate"   // fraction failed
	qReset      = "reset"       // fraction reset
	qBytes      = "bytes"       // body size
	qSlow       = "slow"        // slow body duration
	qRetryAfter = "retry_after" // Retry-After seconds on 429/503
)

// override applies the query parameters q to the defaults b; an error
// names the bad parameter.
func (b behaviour) override(q url.Values) (behaviour, error) {
	var err error
	bad := func(name string, why string) error {
		return fmt.Errorf("query %s=%q: %s", name, q.Get(name), why)
	}
	if v, ok := q[qDelay]; ok {
		if b.latency, err = ParseLatency(v[0]); err != nil {
			return b, bad(qDelay, err.Error())
		}
	}
	failRate, hasFail := q[qFailRate]
	if hasFail {
		if b.errorRate, err = strconv.ParseFloat(failRate[0], 64); err != nil || !isFraction(b.errorRate) {
			return b, bad(qFailRate, "want a fraction between 0 and 1")
		}
	}
	if v, ok := q[qStatus]; ok {
		if b.errorStatus, err = strconv.Atoi(v[0]); err != nil || !isStatus(b.errorStatus) {
			return b, bad(qStatus, "want an HTTP status 200-599")
		}
		if !hasFail {
			b.errorRate = 1
		}
	}
	if v, ok := q[qReset]; ok {
		if b.resetRate, err = strconv.ParseFloat(v[0], 64); err != nil || !isFraction(b.resetRate) {
			return b, bad(qReset, "want a fraction between 0 and 1")
		}
	}
	if v, ok := q[qBytes]; ok {
		if b.bodySize, err = strconv.Atoi(v[0]); err != nil || b.bodySize < 0 || b.bodySize > MaxBodySize {
			return b, bad(qBytes, fmt.Sprintf("want 0 to %d bytes", MaxBodySize))
		}
	}
	if v, ok := q[qSlow]; ok {
		if b.slowBody, err = time.ParseDuration(v[0]); err != nil || b.slowBody < 0 {
			return b, bad(qSlow, "want a duration, 0 or more")
		}
	}
	if v, ok := q[qRetryAfter]; ok {
		if b.retryAfter, err = strconv.Atoi(v[0]); err != nil || b.retryAfter < 0 {
			return b, bad(qRetryAfter, "want seconds, 0 or more")
		}
	}
	return b, nil
}

// chance reports true with probability p.
func chance(p float64) bool { return p >= 1 || (p > 0 && rand.Float64() < p) }

// serve is the load handler: after a delay it resets, fails or answers,
// as the defaults and the request's query say.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.countRequest(r)
	if r.ProtoMajor == 2 {
		if ci := connOf(r); ci != nil {
			storeMax(&s.c.h2StreamsPeak, ci.streams.Add(1))
			defer ci.streams.Add(-1)
		}
	}
	_, _ = io.Copy(io.Discard, r.Body)
	b := s.def
	if r.URL.RawQuery != "" {
		var err error
		if b, err = b.override(r.URL.Query()); err != nil {
			s.reply(w, http.StatusBadRequest, err.Error()+"\n")
			return
		}
	}
	if !sleep(r.Context(), b.latency.Draw()) {
		return
	}
	if chance(b.resetRate) {
		s.reset(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if chance(b.errorRate) {
		if b.retryAfter >= 0 && (b.errorStatus == http.StatusTooManyRequests || b.errorStatus == http.StatusServiceUnavailable) {
			w.Header().Set("Retry-After", strconv.Itoa(b.retryAfter))
		}
		if b.errorStatus < 400 {
			s.writeBody(w, r, b.errorStatus, b)
			return
		}
		s.reply(w, b.errorStatus, "error\n")
		return
	}
	s.writeBody(w, r, http.StatusOK, b)
}

// sleep waits d or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// countStatus counts a reply.
func (s *Server) countStatus(code int) {
	if code >= 0 && code < len(s.c.byStatus) {
		s.c.byStatus[code].Add(1)
	}
	if code >= 500 || code == http.StatusTooManyRequests {
		s.c.errors.Add(1)
	}
}

// reply sends a short text reply, counted.
func (s *Server) reply(w http.ResponseWriter, code int, body string) {
	s.countStatus(code)
	textReply(w, code, body)
}

// textReply sends a short text reply.
func textReply(w http.ResponseWriter, code int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(code)
	_, _ = io.WriteString(w, body)
}

// writeBody sends a reply of b.bodySize bytes ("ok\n" if 0), spread over
// b.slowBody.
func (s *Server) writeBody(w http.ResponseWriter, r *http.Request, code int, b behaviour) {
	s.countStatus(code)
	if code == http.StatusNoContent || code == http.StatusNotModified {
		w.WriteHeader(code)
		return
	}
	size := b.bodySize
	if size == 0 {
		size = len(okBody)
	}
	w.Header().Set("Content-Length", strconv.Itoa(size))
	w.WriteHeader(code)
	if b.slowBody <= 0 {
		_ = s.writeN(w, 0, size, b.bodySize == 0)
		return
	}
	rc := http.NewResponseController(w)
	if err := rc.Flush(); err != nil {
		return
	}
	chunks := int(min(int64(size), max(1, int64(b.slowBody/slowChunkEvery)), maxSlowChunks))
	start := time.Now()
	written := 0
	for i := 1; i <= chunks; i++ {
		if !sleep(r.Context(), time.Until(start.Add(b.slowBody*time.Duration(i)/time.Duration(chunks)))) {
			return
		}
		n := size*i/chunks - written
		if s.writeN(w, written, n, b.bodySize == 0) != nil || rc.Flush() != nil {
			return
		}
		written += n
	}
}

// writeN writes n bytes of the body from offset off: of "ok\n" or of
// the filler.
func (s *Server) writeN(w io.Writer, off, n int, ok bool) error {
	if ok {
		_, err := io.WriteString(w, okBody[off:off+n])
		return err
	}
	filler := s.filler
	for n > 0 {
		k, err := w.Write(filler[:min(n, len(filler))])
		if err != nil {
			return err
		}
		n -= k
	}
	return nil
}

// reset answers r by resetting: HTTP/1 closes the connection with RST,
// HTTP/2 resets the stream.
func (s *Server) reset(w http.ResponseWriter, r *http.Request) {
	s.c.resets.Add(1)
	if r.ProtoMajor == 2 {
		panic(http.ErrAbortHandler) // the HTTP/2 server answers RST_STREAM
	}
	s.hijacked.Add(1)
	defer s.hijacked.Done()
	c, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		s.log.Debug("reset: hijack", "err", err)
		panic(http.ErrAbortHandler)
	}
	if err := abort(c); err != nil {
		s.log.Debug("reset", "err", err)
	}
}

// serveRedirect counts the request and answers 302 to the "to" parameter,
// so tests can check that a client does not follow a redirect where it
// must not go.
func (s *Server) serveRedirect(w http.ResponseWriter, r *http.Request) {
	s.countRequest(r)
	to := r.URL.Query().Get("to")
	if to == "" {
		s.reply(w, http.StatusBadRequest, "redirect: give ?to=URL\n")
		return
	}
	s.countStatus(http.StatusFound)
	http.Redirect(w, r, to, http.StatusFound)
}
