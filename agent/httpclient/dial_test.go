package httpclient

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/surgeload/surge/plan"
)

func TestHostsOverride(t *testing.T) {
	var host atomic.Value
	srv := newServer(t, "", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { host.Store(r.Host) }))
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	c := newClient(t, Options{Conn: &plan.Connection{Hosts: map[string]string{
		"api.example.test":  "127.0.0.1:" + port, // a production name aimed at staging
		"evil.example.test": "10.1.2.3",          // outside the allow-list
	}}})
	res := c.Do(context.Background(), get(t, "http://API.example.test/x"), time.Now)
	if res.Status != "2xx" {
		t.Fatalf("hosts override: %q %v", res.Status, res.Err)
	}
	if got := host.Load(); got != "API.example.test" {
		t.Errorf("Host header %q, want the URL's", got)
	}
	if res.Phases&HasDNS != 0 || res.Phases&HasConnect == 0 {
		t.Errorf("phases %b: an override resolves nothing", res.Phases)
	}
	res = c.Do(context.Background(), get(t, "http://evil.example.test/"), time.Now)
	var be *BlockedError
	if res.Status != StatusBlocked || !errors.As(res.Err, &be) {
		t.Errorf("override outside the allow-list: %q %v, want blocked", res.Status, res.Err)
	}
}

func TestSourceAddressesRoundRobin(t *testing.T) {
	srv := newServer(t, "", http.HandlerFunc(okHandler))
	c := newClient(t, Options{Conn: &plan.Connection{SourceAddresses: []string{"127.0.0.1", "127.0.0.2"}}})
	runSessions(t, c, get(t, srv.URL+"/"), 4, 2)
	got := srv.remoteIPs()
	if got["127.0.0.1"] != 2 || got["127.0.0.2"] != 2 {
		t.Errorf("remote addresses %v, want 2 connections from each source", got)
	}
}

func TestDNS(t *testing.T) {
	// A resolver that reaches no server: names fail as dns, with no network.
	dead := &net.Resolver{PreferGo: true, Dial: func(context.Context, string, string) (net.Conn, error) {
		return nil, errors.New("no DNS server in tests")
	}}
	c := newClient(t, Options{Resolver: dead})
	res := c.Do(context.Background(), get(t, "http://surge-nowhere.invalid/"), time.Now)
	if res.Status != StatusDNS || !res.Failed() {
		t.Errorf("unresolvable name: %q %v, want dns", res.Status, res.Err)
	}
	// localhost resolves from /etc/hosts: a DNS phase.
	srv := newServer(t, "", http.HandlerFunc(okHandler))
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	c2 := newClient(t, Options{Resolver: &net.Resolver{PreferGo: true, Dial: dead.Dial}})
	res = c2.Do(context.Background(), get(t, "http://localhost:"+port+"/"), time.Now)
	if res.Status != "2xx" || res.Phases&(HasDNS|HasConnect|HasTTFB) != HasDNS|HasConnect|HasTTFB {
		t.Errorf("localhost: %q %v phases %b, want dns, connect and ttfb", res.Status, res.Err, res.Phases)
	}
}

func TestDialContextCountsAndChecks(t *testing.T) {
	srv := newServer(t, "", http.HandlerFunc(okHandler))
	var stats ConnStats
	var gauge atomic.Int64
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	c := newClient(t, Options{Stats: &stats, Conns: &gauge, Conn: &plan.Connection{Hosts: map[string]string{"ws.test": "127.0.0.1"}}})
	conn, err := c.DialContext(context.Background(), "tcp", "ws.test:"+port)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Open() != 1 || gauge.Load() != 1 {
		t.Errorf("open %d gauge %d, want 1 1", stats.Open(), gauge.Load())
	}
	conn.Close()
	conn.Close()
	if stats.Closed.Load() != 1 || gauge.Load() != 0 {
		t.Errorf("after two closes: closed %d gauge %d, want 1 0", stats.Closed.Load(), gauge.Load())
	}
	if _, err := c.DialContext(context.Background(), "tcp", "10.0.0.1:80"); err == nil || !strings.Contains(err.Error(), "allow-list") {
		t.Errorf("dial outside the allow-list: %v", err)
	}
}
