// Package httpclient is the agent's HTTP client: it sends plan requests the
// way production clients do and measures every phase.
//
// A Client is built per scenario from its plan.Connection and plan.Retry
// (New). Each VU takes a Session; how sessions hold connections is the
// scenario's reuse mode:
//
//   - per-vu (default): each session keeps its own idle connections per
//     host, so a sequential VU uses exactly one connection;
//   - pool: all sessions share at most pool_size connections per host and
//     a request waits for a free one (the wait is part of its latency);
//   - never: a connection per request, sent with "Connection: close".
//
// Connections close when they reach their max_lifetime or
// max_requests_per_connection (after their request in flight), and when
// idle past idle_timeout (a reaper goroutine owned by the Client, ended by
// Client.Close).
//
// HTTP/1.1 is the package's own client on net.Conn (conn.go, with
// response.go and parse.go reading responses and rawpath.go the raw
// system-call path): static requests are serialized once by Prepare,
// responses are parsed in a pooled read buffer held only while a request
// is in flight, and the keep-alive path allocates nothing per request. It
// costs less CPU per request than net/http (BenchmarkDo compares them).
// HTTP/2 (h2 over TLS with
// ALPN, h2c with prior knowledge) runs net/http client connections
// (http.Transport.NewClientConn) over the same dialer, in pools of this
// package (h2.go), so connection counts are exact.
//
// Every dial (dial.go) applies the hosts overrides, resolves the name,
// enforces the agent's target allow-list on every resolved IP (so redirects
// and DNS changes cannot escape it), binds the next source address and
// counts the connection. Results carry a status class ("2xx") or an error
// kind (Classify), the dns/connect/tls/ttfb phases that happened, and the
// retries made (retry.go).
package httpclient
