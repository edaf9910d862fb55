//go:build e2e

package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/surgeload/surge/internal/ciskip"
	"github.com/surgeload/surge/internal/freeport"
	"github.com/surgeload/surge/internal/poll"
)

// toxiproxy drives a toxiproxy server (scripts/toxiproxy.sh, started by
// `make e2e`) through its HTTP API.
type toxiproxy struct {
	url    string
	client *http.Client
}

func newToxiproxy(t *testing.T) *toxiproxy {
	t.Helper()
	u := os.Getenv("SURGE_TOXIPROXY_URL")
	if u == "" {
		ciskip.Skipf(t, "toxiproxy: SURGE_TOXIPROXY_URL is unset: run with `make e2e`, which starts toxiproxy with scripts/toxiproxy.sh")
	}
	return &toxiproxy{url: strings.TrimRight(u, "/"), client: &http.Client{Timeout: 10 * time.Second}}
}

// call sends body (JSON, nil for none) and decodes the answer into out
// (nil: discarded); any status but 2xx fails the test.
func (x *toxiproxy) call(t *testing.T, method, path string, body, out any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, x.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := x.client.Do(req)
	if err != nil {
		t.Fatalf("toxiproxy %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("toxiproxy %s %s: %s: %s", method, path, resp.Status, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("toxiproxy %s %s: %v: %s", method, path, err, b)
		}
	}
}

// proxy creates a proxy to upstream on a free loopback port, deleted when
// the test ends, and returns its listen address.
func (x *toxiproxy) proxy(t *testing.T, name, upstream string) string {
	t.Helper()
	var p struct {
		Listen string `json:"listen"`
	}
	x.call(t, http.MethodPost, "/proxies", map[string]any{"name": name, "listen": "127.0.0.1:0", "upstream": upstream, "enabled": true}, &p)
	t.Cleanup(func() { x.call(t, http.MethodDelete, "/proxies/"+name, nil, nil) })
	return p.Listen
}

// toxic is one toxiproxy toxic: type latency (attributes latency, jitter in
// ms), reset_peer or timeout (attribute timeout in ms), on a stream
// ("upstream": client to server, "downstream": back).
type toxic struct {
	Name       string         `json:"name"`
	Type       string         `json:"type"`
	Stream     string         `json:"stream"`
	Toxicity   float64        `json:"toxicity"`
	Attributes map[string]int `json:"attributes"`
}

func (x *toxiproxy) add(t *testing.T, proxy string, tx toxic) {
	t.Helper()
	tx.Toxicity = 1
	x.call(t, http.MethodPost, "/proxies/"+proxy+"/toxics", tx, nil)
}

func (x *toxiproxy) remove(t *testing.T, proxy, name string) {
	t.Helper()
	x.call(t, http.MethodDelete, "/proxies/"+proxy+"/toxics/"+name, nil, nil)
}

// agentInfo is what `surge agents --json` says of one agent.
type agentInfo struct {
	ID          string `json:"id"`
	State       string `json:"state"`
	ConnectedAt int64  `json:"connected_at_unix_ms"`
}

func listAgents(t *testing.T, ctrl string) []agentInfo {
	t.Helper()
	out, code := surge(t, "agents", "--json", "--controller", ctrl)
	if code != 0 {
		t.Fatalf("surge agents: exit %d: %s", code, out)
	}
	var resp struct {
		Agents []agentInfo `json:"agents"`
	}
	if err := json.Unmarshal([]byte(out), &resp); err != nil {
		t.Fatalf("surge agents --json: %v: %s", err, out)
	}
	return resp.Agents
}

// TestToxiproxyLatencyAndFaults: the agents reach the controller through
// toxiproxy with 200ms ± 50ms of latency each way, and the target through
// another with 30ms ± 10ms on the responses. Mid-run the gRPC path resets
// every connection for 3s (reset_peer), then swallows all data and closes
// connections after 2s (timeout) for 3s. The agents keep running, reconnect
// and resend what was not acknowledged: the run completes with the
// target's exact count, nothing lost or counted twice, and nobody is
// declared lost.
func TestToxiproxyLatencyAndFaults(t *testing.T) {
	toxi := newToxiproxy(t)
	c := &cluster{ctrl: freeport.Addr(t), gossip: freeport.Addr(t), target: freeport.Addr(t), dataDir: t.TempDir()}
	start(t, "target", "target", "--listen", c.target, "--latency", "uniform(1ms,3ms)")
	// Outages of a few seconds must not cost an agent its share: the
	// stream's loss makes it suspect, and it has 30s to come back.
	c.startControllerWith(t, "--agent-loss-confirm", "30s")

	tag := fmt.Sprintf("%d", time.Now().UnixNano())
	grpcName, httpName := "surge-grpc-"+tag, "surge-http-"+tag
	grpcAddr := toxi.proxy(t, grpcName, c.ctrl)
	httpAddr := toxi.proxy(t, httpName, c.target)
	for _, stream := range []string{"upstream", "downstream"} {
		toxi.add(t, grpcName, toxic{Name: "latency-" + stream, Type: "latency", Stream: stream,
			Attributes: map[string]int{"latency": 200, "jitter": 50}})
	}
	toxi.add(t, httpName, toxic{Name: "latency", Type: "latency", Stream: "downstream",
		Attributes: map[string]int{"latency": 30, "jitter": 10}})

	// The gRPC path is slow: a CLI call through it takes at least two
	// crossings of 150ms or more.
	began := time.Now()
	if out, code := surge(t, "runs", "--controller", grpcAddr); code != 0 {
		t.Fatalf("surge runs through the proxy: exit %d: %s", code, out)
	}
	viaProxy := time.Since(began)

	c.agents = map[string]*proc{}
	for _, id := range []string{"x1", "x2"} {
		t.Setenv(agentEnvVar, id) // inherited by the child; restored when the test ends
		c.agents[id] = start(t, "agent "+id, "agent", "--id", id, "--region", "us-east", "--join", c.gossip,
			"--gossip", "127.0.0.1:0", "--allow", "127.0.0.1", "--controller", grpcAddr)
	}
	waitConnected(t, c.ctrl, 2)

	const rate, secs = 20, 30
	planPath := writePlan(t, "toxi.yaml", fmt.Sprintf(`name: e2e-toxiproxy
scenarios:
  steady:
    executor: constant-arrival-rate
    rate: %d
    duration: %ds
    pre_allocated_vus: 20
    max_vus: 40
    graceful_stop: 3s
    requests:
      - name: hello
        url: 'http://%s/hello/{{env "%s"}}'
`, rate, secs, httpAddr, agentEnvVar))
	jsonPath := filepath.Join(t.TempDir(), "summary.json")
	done := runAsync(t, "run", planPath, "--controller", c.ctrl, "--json", jsonPath, "--quiet")
	poll.EventuallyErr(t, 30*time.Second, "run under way", func() error {
		if n := readTargetStats(t, c.target).Requests; n < rate*3 {
			return fmt.Errorf("%d requests so far", n)
		}
		return nil
	})

	// fault applies tx to the gRPC path for hold, removes it, and waits
	// until both agents hold a stream opened after the removal.
	fault := func(tx toxic, hold time.Duration) (atStart int64, reconnect time.Duration) {
		atStart = readTargetStats(t, c.target).Requests
		toxi.add(t, grpcName, tx)
		time.Sleep(hold) // the fault's planned length, not a wait for a condition
		toxi.remove(t, grpcName, tx.Name)
		removed := time.Now()
		poll.EventuallyErr(t, 30*time.Second, "agents reconnected after "+tx.Type, func() error {
			agents := listAgents(t, c.ctrl)
			if len(agents) != 2 {
				return fmt.Errorf("agents %v", agents)
			}
			for _, a := range agents {
				ms := a.ConnectedAt
				if a.State != "connected" || ms < removed.Add(-hold).UnixMilli() {
					return fmt.Errorf("agent %s %s since %d", a.ID, a.State, ms)
				}
			}
			return nil
		})
		return atStart, time.Since(removed)
	}
	resetAt, resetBack := fault(toxic{Name: "reset", Type: "reset_peer", Stream: "upstream", Attributes: map[string]int{"timeout": 0}}, 3*time.Second)
	timeoutAt, timeoutBack := fault(toxic{Name: "blackhole", Type: "timeout", Stream: "upstream", Attributes: map[string]int{"timeout": 2000}}, 3*time.Second)

	out := <-done
	s := readSummary(t, jsonPath)
	ts := readTargetStats(t, c.target)
	ctlLog := c.controller.output()
	var sessionsEnded int
	for _, p := range c.agents {
		sessionsEnded += strings.Count(p.output(), "controller session ended")
	}
	perAgent := map[string]int64{}
	for _, a := range s.Agents {
		perAgent[a.ID] = a.Requests
	}
	t.Logf("measured: CLI call through the gRPC proxy %s; reset_peer at %d requests, agents back %s after its removal; timeout at %d requests, back %s after",
		viaProxy.Round(time.Millisecond), resetAt, resetBack.Round(time.Millisecond), timeoutAt, timeoutBack.Round(time.Millisecond))
	t.Logf("measured: %d agent sessions ended, %d stream losses seen by the controller; target %d requests (x1 %d, x2 %d), summary %d (x1 %d, x2 %d), %d dropped, plan %d; p50 %dµs; status %s; notes %v",
		sessionsEnded, strings.Count(ctlLog, "agent stream lost"), ts.Requests, ts.ByPath["/hello/x1"], ts.ByPath["/hello/x2"],
		s.Requests, perAgent["x1"], perAgent["x2"], s.DroppedIterations, rate*secs, s.LatencyUS.P50, s.Status, s.Notes)

	if !strings.HasPrefix(out, "exit 0") {
		t.Errorf("surge run: %s", out)
	}
	if viaProxy < 300*time.Millisecond {
		t.Errorf("a call through the gRPC proxy took %s: the latency toxic is not in the path", viaProxy)
	}
	if sessionsEnded < 2 {
		t.Errorf("the agents' sessions ended %d times: the faults did not reach the gRPC path", sessionsEnded)
	}
	if s.LatencyUS.P50 < 20_000 {
		t.Errorf("p50 %dµs: the target path's 30ms ± 10ms of latency is not in it", s.LatencyUS.P50)
	}
	if s.Requests != ts.Requests {
		t.Errorf("summary requests %d, target counted %d: a snapshot was lost or counted twice", s.Requests, ts.Requests)
	}
	for _, id := range []string{"x1", "x2"} {
		if perAgent[id] != ts.ByPath["/hello/"+id] {
			t.Errorf("agent %s: summary %d requests, target counted %d", id, perAgent[id], ts.ByPath["/hello/"+id])
		}
	}
	if s.Requests+s.DroppedIterations != rate*secs {
		t.Errorf("requests %d + dropped %d, plan says %d", s.Requests, s.DroppedIterations, rate*secs)
	}
	// 20/s over two agents, 40 VUs, a target path of 30 ms ± 10 ms (+3 ms):
	// the faults are on the gRPC path only, so the load loses nothing.
	if limit := maxDrops(t, rate, 40, 2, 43*time.Millisecond); s.DroppedIterations > limit {
		t.Errorf("%d arrivals dropped, the VU budget allows %d", s.DroppedIterations, limit)
	}
	for _, n := range s.Notes {
		if strings.Contains(n, "was lost") {
			t.Errorf("an agent was declared lost: %s", n)
		}
	}
}
