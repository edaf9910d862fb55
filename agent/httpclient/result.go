package httpclient

import (
	"errors"
	"net/http"
	"time"
)

// Phases says which phases a Result measured.
type Phases uint8

const (
	// HasDNS: a host name was resolved (not an IP address, not a hosts
	// override).
	HasDNS Phases = 1 << iota
	// HasConnect: the request opened its connection.
	HasConnect
	// HasTLS: the request ran a TLS handshake on its new connection.
	HasTLS
	// HasTTFB: a response arrived (TTFB is from the last attempt's write
	// to the first byte of its response).
	HasTTFB
)

// Result is the outcome of one request, retries included.
type Result struct {
	// Status is "1xx".."5xx" or an error kind (StatusTimeout, ...) of the
	// last attempt.
	Status string
	Code   int
	Err    error
	// Sent is when the first attempt was handed to the client (a wait for
	// a pooled connection is part of the latency); End when the last
	// attempt's body was read or it failed.
	Sent, End time.Time
	// BytesIn counts response body bytes, BytesOut request bytes on the
	// wire (HTTP/2 requests counted as their HTTP/1.1 form), over all
	// attempts and redirects.
	BytesIn  int64
	BytesOut int64
	// Body holds up to 1 MiB of the response body when a check or an
	// extraction needs it.
	Body []byte
	// Header holds the final response's headers an extraction reads;
	// SetCookies the Set-Cookie values of every response of the last
	// attempt (redirects included) when the session keeps cookies or an
	// extraction reads one. Both nil otherwise.
	Header     http.Header
	SetCookies []string
	// The last attempt's phases; Phases says which happened.
	DNS, Connect, TLS, TTFB time.Duration
	Phases                  Phases
	// Retries is the attempts made after the first. Attempts holds each
	// attempt's own duration when there were retries (nil otherwise: the
	// one attempt ran from Sent to End).
	Retries  int
	Attempts []time.Duration
}

// Failed reports a failure as k6's http_req_failed: an error or a status
// of 400 and above.
func (r Result) Failed() bool { return r.Err != nil || r.Code >= 400 }

// redactEnv removes the values of the env variables req uses from s.
func redactEnv(s string, req *Request, v *Vars) string {
	if v == nil || v.Env == nil {
		return s
	}
	var secrets []string
	ts := []*Template{req.urlT, req.bodyT}
	for _, t := range req.headerT {
		ts = append(ts, t)
	}
	for _, t := range ts {
		if t == nil {
			continue
		}
		for _, p := range t.parts {
			if p.Func == "env" {
				if val, ok := v.Env(p.Args[0]); ok {
					secrets = append(secrets, val)
				}
			}
		}
	}
	return redact(s, secrets)
}

// redactErr returns err with req's env values removed from its text.
func redactErr(err error, req *Request, v *Vars) error {
	if err == nil || !req.usesEnv {
		return err
	}
	return errors.New(redactEnv(err.Error(), req, v))
}

// keepHeaders files an HTTP/1.1 response's kept headers: Set-Cookie values
// in SetCookies, the others in Header.
func (r *Result) keepHeaders(kept []hdr) {
	for _, h := range kept {
		if h.k == "Set-Cookie" {
			r.SetCookies = append(r.SetCookies, h.v)
			continue
		}
		if r.Header == nil {
			r.Header = http.Header{}
		}
		r.Header[h.k] = append(r.Header[h.k], h.v)
	}
}
