//go:build e2e

package e2e

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/surgeload/surge/internal/ciskip"
	"github.com/surgeload/surge/internal/freeport"
	"github.com/surgeload/surge/internal/poll"
)

func gossipKey(t *testing.T) string {
	t.Helper()
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(k)
}

// certs makes a CA in dir and issues name → role certificates with
// `surge certs`.
func certs(t *testing.T, dir string, roles map[string]string) {
	t.Helper()
	if out, code := surge(t, "certs", "init", "--dir", dir); code != 0 {
		t.Fatalf("certs init: exit %d\n%s", code, out)
	}
	for name, role := range roles {
		if out, code := surge(t, "certs", "issue", "--dir", dir, "--name", name, "--role", role); code != 0 {
			t.Fatalf("certs issue %s: exit %d\n%s", name, code, out)
		}
	}
}

// refusals counts the agent's refused sessions whose error contains why.
func refusals(out, why string) int {
	var n int
	for line := range strings.SplitSeq(out, "\n") {
		if strings.Contains(line, "controller session ended; reconnecting") && strings.Contains(line, why) {
			n++
		}
	}
	return n
}

// dialWithoutCert makes a TLS connection to addr trusting the CA in caFile
// and presenting no client certificate, and returns the handshake's (or,
// under TLS 1.3, the first read's) error.
func dialWithoutCert(caFile, addr string) error {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return fmt.Errorf("no CA in %s", caFile)
	}
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{RootCAs: pool, NextProtos: []string{"h2"}})
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		return err
	}
	_, err = conn.Read(make([]byte, 1))
	return err
}

func tlsArgs(dir, caDir, name string) []string {
	return []string{"--tls-ca", filepath.Join(caDir, "ca.crt"),
		"--tls-cert", filepath.Join(dir, name+".crt"), "--tls-key", filepath.Join(dir, name+".key")}
}

// TestSecurityRejects: with mTLS, a token and an encrypted, labelled gossip
// pool, an agent without a valid certificate (none, another CA's, a CLI
// certificate), a CLI without the token (or without a certificate) and
// gossip members with the wrong key or label are all refused, and the
// target sees nothing; then a run with the right credentials works.
func TestSecurityRejects(t *testing.T) {
	dir, otherDir := filepath.Join(t.TempDir(), "certs"), filepath.Join(t.TempDir(), "other")
	certs(t, dir, map[string]string{"ctl": "controller", "good": "agent", "cli": "cli"})
	certs(t, otherDir, map[string]string{"rogue": "agent"})
	key, label, token := gossipKey(t), "e2e-secure", "s3cret-token"

	c := &cluster{ctrl: freeport.Addr(t), gossip: freeport.Addr(t), target: freeport.Addr(t), dataDir: t.TempDir()}
	start(t, "target", "target", "--listen", c.target, "--latency", "uniform(1ms,3ms)")
	c.controller = start(t, "controller", append([]string{"controller", "--listen", c.ctrl, "--gossip", c.gossip,
		"--data-dir", c.dataDir, "--token", token, "--gossip-key", key, "--gossip-label", label},
		tlsArgs(dir, dir, "ctl")...)...)
	cliOK := []string{"SURGE_TLS_CA=" + filepath.Join(dir, "ca.crt"), "SURGE_TLS_CERT=" + filepath.Join(dir, "cli.crt"),
		"SURGE_TLS_KEY=" + filepath.Join(dir, "cli.key"), "SURGE_TOKEN=" + token}
	listAgents := func() string {
		out, code := surgeEnv(t, cliOK, "agents", "--json", "--controller", c.ctrl)
		if code != 0 {
			t.Fatalf("agents with valid credentials: exit %d\n%s", code, out)
		}
		return out
	}
	poll.EventuallyErr(t, 30*time.Second, "controller answers a CLI with cert and token", func() error {
		if out, code := surgeEnv(t, cliOK, "runs", "--controller", c.ctrl); code != 0 {
			return fmt.Errorf("exit %d: %s", code, out)
		}
		return nil
	})

	agentArgs := func(id string, extra ...string) []string {
		return append([]string{"agent", "--id", id, "--region", "us-east", "--gossip", "127.0.0.1:0",
			"--allow", "127.0.0.1"}, extra...)
	}
	gossipOK := []string{"--join", c.gossip, "--gossip-key", key, "--gossip-label", label}
	// The good agent finds the controller through the encrypted gossip.
	start(t, "agent good", agentArgs("good", append(gossipOK, tlsArgs(dir, dir, "good")...)...)...)
	// Bad certificates: each dials the controller's gRPC port directly (and
	// gossips correctly), so only the certificate is wrong.
	direct := append([]string{"--controller", c.ctrl}, gossipOK...)
	bad := map[string]*proc{
		"nocert":  start(t, "agent nocert", agentArgs("nocert", direct...)...),
		"rogue":   start(t, "agent rogue", agentArgs("rogue", append(direct, tlsArgs(otherDir, otherDir, "rogue")...)...)...),
		"clicert": start(t, "agent clicert", agentArgs("clicert", append(direct, tlsArgs(dir, dir, "cli")...)...)...),
	}
	// Each is refused for its own reason: plaintext against the TLS port,
	// a server certificate of a CA it does not know, a certificate of the
	// wrong role.
	// A plaintext client reads the TLS server's close as EOF, or as a reset
	// when the server closed with the client's SETTINGS frame unread (it
	// raced the preface): either is the server preface never coming.
	badWhy := map[string]string{
		"nocert":  "error reading server preface: ",
		"rogue":   "x509: certificate signed by unknown authority",
		"clicert": `agent streams need a client certificate with the agent role, got \"cli\"`,
	}
	// Bad gossip: a valid agent certificate, but the controller is only
	// known through gossip, with the wrong key or label.
	gossipBad := map[string]*proc{
		"wrongkey": start(t, "agent wrongkey", agentArgs("wrongkey", append([]string{"--join", c.gossip,
			"--gossip-key", gossipKey(t), "--gossip-label", label}, tlsArgs(dir, dir, "good")...)...)...),
		"wronglabel": start(t, "agent wronglabel", agentArgs("wronglabel", append([]string{"--join", c.gossip,
			"--gossip-key", key, "--gossip-label", "someone-else"}, tlsArgs(dir, dir, "good")...)...)...),
	}

	poll.EventuallyErr(t, 30*time.Second, "good agent connected", func() error {
		if out := listAgents(); !strings.Contains(out, `"connected"`) {
			return fmt.Errorf("not connected: %s", out)
		}
		return nil
	})
	// Every bad agent has tried and failed at least twice (one reconnect
	// after the first refusal), the gossip ones have been told no seed
	// answered.
	poll.EventuallyErr(t, 30*time.Second, "bad agents refused", func() error {
		for id, p := range bad {
			if n := refusals(p.output(), badWhy[id]); n < 2 {
				return fmt.Errorf("%s: %d sessions refused with %q so far", id, n, badWhy[id])
			}
		}
		for id, p := range gossipBad {
			if !strings.Contains(p.output(), "no seed answered") {
				return fmt.Errorf("%s: join not failed yet", id)
			}
		}
		return nil
	})
	listed := map[string]string{}
	var resp struct {
		Agents []struct{ ID, State string }
	}
	if err := json.Unmarshal([]byte(listAgents()), &resp); err != nil {
		t.Fatalf("agents JSON: %v", err)
	}
	for _, a := range resp.Agents {
		listed[a.ID] = a.State
	}
	t.Logf("measured: agents listed (id → state): %v", listed)
	if listed["good"] != "connected" {
		t.Errorf("good agent is %q", listed["good"])
	}
	for id := range bad {
		if listed[id] == "connected" {
			t.Errorf("agent %s without a valid certificate is connected", id)
		}
	}
	for id := range gossipBad {
		if st, ok := listed[id]; ok {
			t.Errorf("gossip member %s with the wrong key or label is listed as %q", id, st)
		}
	}
	for id, p := range bad {
		t.Logf("measured: agent %s refused %d times (%d with %q)", id, strings.Count(p.output(), "controller session ended; reconnecting"),
			refusals(p.output(), badWhy[id]), badWhy[id])
	}
	// A TLS client that trusts the controller but has no certificate is
	// refused by the handshake itself.
	if err := dialWithoutCert(filepath.Join(dir, "ca.crt"), c.ctrl); err == nil || !strings.Contains(err.Error(), "tls: certificate required") {
		t.Errorf("TLS without a client certificate: %v, want the controller's \"tls: certificate required\"", err)
	} else {
		t.Logf("measured: TLS without a client certificate: %v", err)
	}

	// The CLI without the token, with a wrong one, or without a certificate.
	plan := writePlan(t, "secure.yaml", fmt.Sprintf(`name: e2e-secure
scenarios:
  steady:
    executor: constant-arrival-rate
    rate: 50
    duration: 2s
    pre_allocated_vus: 10
    max_vus: 20
    requests:
      - url: http://%s/hello
`, c.target))
	cliCases := []struct {
		name string
		env  []string
		want string
	}{
		{"no-token", cliOK[:3], "token"},
		{"wrong-token", append(cliOK[:3:3], "SURGE_TOKEN=guess"), "token"},
		{"no-cert", []string{"SURGE_TOKEN=" + token}, "error reading server preface: "},
	}
	for _, cc := range cliCases {
		out, code := surgeEnv(t, cc.env, "run", plan, "--controller", c.ctrl, "--quiet")
		t.Logf("measured: CLI %s: exit %d: %s", cc.name, code, strings.TrimSpace(out))
		if code == 0 || code == 99 {
			t.Errorf("CLI %s: exit %d, want an error exit", cc.name, code)
		}
		if !strings.Contains(out, cc.want) {
			t.Errorf("CLI %s: output lacks %q:\n%s", cc.name, cc.want, out)
		}
	}
	if out, _ := surgeEnv(t, cliOK, "runs", "--json", "--controller", c.ctrl); strings.Contains(out, "e2e-secure") {
		t.Errorf("a refused CLI submitted a run:\n%s", out)
	}
	if n := readTargetStats(t, c.target).Requests; n != 0 {
		t.Fatalf("target counted %d requests before any authorised run, want 0", n)
	}
	t.Logf("measured: target requests after every refusal: 0")

	// The happy path: TLS + token.
	jsonPath := filepath.Join(t.TempDir(), "summary.json")
	if out, code := surgeEnv(t, cliOK, "run", plan, "--controller", c.ctrl, "--json", jsonPath, "--quiet"); code != 0 {
		t.Fatalf("run with valid credentials: exit %d\n%s", code, out)
	}
	s := readSummary(t, jsonPath)
	ts := readTargetStats(t, c.target)
	t.Logf("measured: authorised run: summary %d requests (+%d dropped), target %d, agents %v", s.Requests, s.DroppedIterations, ts.Requests, s.Agents)
	if s.Requests == 0 || s.Requests != ts.Requests {
		t.Errorf("authorised run: summary %d requests, target %d", s.Requests, ts.Requests)
	}
	if len(s.Agents) != 1 || s.Agents[0].ID != "good" {
		t.Errorf("agents in the run %v, want only good", s.Agents)
	}
	for id, p := range bad {
		if strings.Contains(p.output(), "accepted run") {
			t.Errorf("agent %s got work", id)
		}
	}
	for id, p := range gossipBad {
		if strings.Contains(p.output(), "accepted run") {
			t.Errorf("agent %s got work", id)
		}
	}
}

// freePortOn is a free TCP port on the loopback address host.
func freePortOn(t *testing.T, host string) string {
	t.Helper()
	a, err := freeport.On(host, 1)
	if err != nil {
		ciskip.Skipf(t, "cannot listen on %s (loopback alias missing?): %v", host, err)
	}
	return a[0]
}

// TestAllowListAndMaxRate: an agent allowed 127.0.0.1 with --max-rate 50
// refuses a plan aimed at 127.0.0.2, does not follow a redirect there, and
// refuses a share above its max rate; a second target on 127.0.0.2 (outside
// the list) receives nothing.
func TestAllowListAndMaxRate(t *testing.T) {
	c := &cluster{ctrl: freeport.Addr(t), gossip: freeport.Addr(t), target: freeport.Addr(t), dataDir: t.TempDir()}
	outside := freePortOn(t, "127.0.0.2")
	start(t, "target", "target", "--listen", c.target)
	start(t, "outside target", "target", "--listen", outside)
	c.startControllerWith(t)
	start(t, "agent w1", "agent", "--id", "w1", "--region", "us-east", "--join", c.gossip,
		"--gossip", "127.0.0.1:0", "--allow", "127.0.0.1", "--max-rate", "50", "--controller", c.ctrl)
	poll.EventuallyErr(t, 30*time.Second, "agent connected", func() error {
		if out, _ := surge(t, "agents", "--json", "--controller", c.ctrl); !strings.Contains(out, `"connected"`) {
			return fmt.Errorf("not connected: %s", out)
		}
		return nil
	})
	planFor := func(name, url string, rate int) string {
		return writePlan(t, name+".yaml", fmt.Sprintf(`name: e2e-%s
scenarios:
  s:
    executor: constant-arrival-rate
    rate: %d
    duration: 2s
    pre_allocated_vus: 10
    max_vus: 20
    requests:
      - url: '%s'
`, name, rate, url))
	}

	// A host outside the list: refused before anything is sent.
	out, code := surge(t, "run", planFor("outside", "http://"+outside+"/x", 10), "--controller", c.ctrl, "--quiet")
	t.Logf("measured: plan at %s: exit %d: %s", outside, code, strings.TrimSpace(out))
	if code == 0 || code == 99 || !strings.Contains(out, "127.0.0.2") {
		t.Errorf("plan at a host outside the allow-list: exit %d, want an error naming 127.0.0.2:\n%s", code, out)
	}

	// Above --max-rate: refused.
	out, code = surge(t, "run", planFor("toofast", "http://"+c.target+"/fast", 80), "--controller", c.ctrl, "--quiet")
	t.Logf("measured: 80/s on an agent capped at 50/s: exit %d: %s", code, strings.TrimSpace(out))
	if code == 0 || code == 99 || !strings.Contains(out, "max rate") {
		t.Errorf("share above --max-rate: exit %d, want an error naming the max rate:\n%s", code, out)
	}
	if n := readTargetStats(t, c.target).Requests; n != 0 {
		t.Errorf("the allowed target counted %d requests of refused plans, want 0", n)
	}

	// A redirect from the allowed target to the outside one: every request
	// fails at dial time.
	jsonPath := filepath.Join(t.TempDir(), "redirect.json")
	_, code = surge(t, "run", planFor("redirect", "http://"+c.target+"/redirect?to=http://"+outside+"/x", 10),
		"--controller", c.ctrl, "--json", jsonPath, "--quiet")
	s := readSummary(t, jsonPath)
	in := readTargetStats(t, c.target)
	t.Logf("measured: redirect run: exit %d, %d requests, %d failures, errors %v; allowed target saw %d redirects",
		code, s.Requests, s.Failures, s.Errors, in.Requests)
	if s.Requests == 0 || s.Failures != s.Requests {
		t.Errorf("redirect run: %d requests, %d failures: every redirected request must fail", s.Requests, s.Failures)
	}
	if in.Requests != s.Requests {
		t.Errorf("allowed target saw %d requests, summary %d", in.Requests, s.Requests)
	}
	var allowErr bool
	for e := range s.Errors {
		// the agent classes a dial the allow-list refused as "blocked"
		allowErr = allowErr || strings.Contains(e, "blocked") || strings.Contains(e, "allow")
	}
	if !allowErr {
		t.Errorf("no allow-list (blocked) error among %v", s.Errors)
	}

	if n := readTargetStats(t, outside).Requests; n != 0 {
		t.Errorf("the target outside the allow-list counted %d requests, want 0", n)
	}
	t.Logf("measured: target outside the allow-list (%s) counted 0 requests", outside)
}
