package cluster

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/surgeload/surge/internal/freeport"
	"github.com/surgeload/surge/internal/poll"
)

// fastTimings shortens memberlist's local profile so tests run quickly.
func fastTimings(mc *memberlist.Config) {
	mc.ProbeInterval = 100 * time.Millisecond
	mc.ProbeTimeout = 50 * time.Millisecond
	mc.GossipInterval = 20 * time.Millisecond
	mc.PushPullInterval = 500 * time.Millisecond
	mc.TCPTimeout = 500 * time.Millisecond
	mc.SuspicionMult = 2
	mc.GossipToTheDeadTime = time.Second
}

// testConfig returns a loopback config on a free port with fast timings.
func testConfig(role Role, id string, seeds ...string) Config {
	return Config{
		BindAddr: "127.0.0.1:0",
		Join:     seeds,
		Meta:     Meta{Role: role, ID: id, Region: "us-east", Version: "test"},
		Profile:  ProfileLocal,
		tune:     fastTimings,
	}
}

// startNode joins cfg and closes the node when the test ends.
func startNode(t *testing.T, cfg Config) *Node {
	t.Helper()
	n, err := Join(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Join(%s): %v", cfg.Meta.ID, err)
	}
	t.Cleanup(func() { closeNode(t, n) })
	return n
}

func closeNode(t *testing.T, n *Node) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := n.Close(ctx); err != nil {
		t.Errorf("Close(%s): %v", n.Name(), err)
	}
}

func waitCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// waitMember waits until n sees a member named name.
func waitMember(t *testing.T, n *Node, name string) Member {
	t.Helper()
	m, err := WaitForMember(waitCtx(t), n, func(m Member) bool { return m.Name == name })
	if err != nil {
		t.Fatalf("%s never saw %s: %v (members %v)", n.Name(), name, err, names(n.Members()))
	}
	return m
}

// waitGone polls until n no longer lists name as live.
func waitGone(t *testing.T, n *Node, name string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		found := false
		for _, m := range n.Members() {
			found = found || m.Name == name
		}
		if !found {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s still lists %s: %v", n.Name(), name, names(n.Members()))
}

// waitEvent reads n's events until one matches.
func waitEvent(t *testing.T, n *Node, kind EventKind, name string) Event {
	t.Helper()
	ctx := waitCtx(t)
	for {
		select {
		case ev, ok := <-n.Events():
			if !ok {
				t.Fatalf("%s: events closed before %s %s", n.Name(), kind, name)
			}
			if ev.Kind == kind && ev.Member.Name == name {
				return ev
			}
		case <-ctx.Done():
			t.Fatalf("%s: no %s event for %s", n.Name(), kind, name)
		}
	}
}

func names(ms []Member) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Name + "(" + m.State + ")"
	}
	return out
}

func TestThreeNodes(t *testing.T) {
	ccfg := testConfig(RoleController, "ctl")
	ccfg.Meta.GRPCAddr = "127.0.0.1:7070"
	ctl := startNode(t, ccfg)
	if _, port, _ := net.SplitHostPort(ctl.LocalAddr()); port == "0" {
		t.Fatalf("LocalAddr %q has port 0", ctl.LocalAddr())
	}
	waitEvent(t, ctl, Joined, ctl.Name()) // its own join comes first

	a1 := startNode(t, testConfig(RoleAgent, "agent-1", ctl.LocalAddr()))
	a2 := startNode(t, testConfig(RoleAgent, "agent-2", ctl.LocalAddr()))

	all := []*Node{ctl, a1, a2}
	for _, n := range all {
		for _, other := range all {
			m := waitMember(t, n, other.Name())
			if m.State != StateAlive || m.Meta.ID != other.Meta().ID || m.Addr != other.LocalAddr() {
				t.Errorf("%s sees %+v, want alive %s at %s", n.Name(), m, other.Meta().ID, other.LocalAddr())
			}
		}
	}

	for _, a := range []*Node{a1, a2} {
		c, err := WaitForMember(waitCtx(t), a, func(m Member) bool {
			return m.Meta.Role == RoleController && m.Meta.GRPCAddr != ""
		})
		if err != nil {
			t.Fatalf("%s: no controller: %v", a.Name(), err)
		}
		if c.Meta.GRPCAddr != "127.0.0.1:7070" || c.Name != ctl.Name() {
			t.Errorf("%s found controller %+v", a.Name(), c)
		}
		if cs := a.Controllers(); len(cs) != 1 || cs[0].Name != ctl.Name() {
			t.Errorf("%s Controllers() = %v", a.Name(), names(cs))
		}
	}

	ev := waitEvent(t, ctl, Joined, a1.Name())
	if ev.Member.Meta.Role != RoleAgent || ev.Member.Meta.Region != "us-east" {
		t.Errorf("joined event meta = %+v", ev.Member.Meta)
	}
	waitEvent(t, ctl, Joined, a2.Name())
	if d := ctl.Dropped(); d != 0 {
		t.Errorf("Dropped() = %d", d)
	}
	if got := len(ctl.Members()); got != 3 {
		t.Errorf("controller has %d members", got)
	}
}

func TestJoinRejectsBadConfig(t *testing.T) {
	tooBig := testConfig(RoleAgent, "a")
	tooBig.Meta.Zone = strings.Repeat("z", 600)
	cases := map[string]struct {
		mutate func(*Config)
		is     error
	}{
		"meta too large": {mutate: func(c *Config) { *c = tooBig }, is: ErrMetaTooLarge},
		"unknown role":   {mutate: func(c *Config) { c.Meta.Role = "boss" }},
		"empty id":       {mutate: func(c *Config) { c.Meta.ID = "" }},
		"bad profile":    {mutate: func(c *Config) { c.Profile = "moon" }},
		"bad key":        {mutate: func(c *Config) { c.SecretKey = []byte("short") }},
		"bind no port":   {mutate: func(c *Config) { c.BindAddr = "127.0.0.1" }},
		"seed no port":   {mutate: func(c *Config) { c.Join = []string{"127.0.0.1"} }},
		"long label":     {mutate: func(c *Config) { c.Label = strings.Repeat("l", 300) }},
		"advertise host": {mutate: func(c *Config) { c.AdvertiseAddr = "example.com" }},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			cfg := testConfig(RoleAgent, "a")
			tc.mutate(&cfg)
			n, err := Join(t.Context(), cfg)
			if err == nil {
				closeNode(t, n)
				t.Fatal("Join succeeded")
			}
			if !strings.HasPrefix(err.Error(), "cluster: ") {
				t.Errorf("error %q lacks the cluster prefix", err)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v is not %v", err, tc.is)
			}
		})
	}
}

func TestDefaultProfile(t *testing.T) {
	for _, tc := range []struct {
		bind string
		want time.Duration // ProbeTimeout tells the presets apart
	}{
		{"127.0.0.1:0", memberlist.DefaultLocalConfig().ProbeTimeout},
		{"localhost:0", memberlist.DefaultLocalConfig().ProbeTimeout},
		{"0.0.0.0:0", memberlist.DefaultLANConfig().ProbeTimeout},
		{"10.1.2.3:7946", memberlist.DefaultLANConfig().ProbeTimeout},
	} {
		cfg := Config{BindAddr: tc.bind}
		mc, err := cfg.memberlistConfig()
		if err != nil {
			t.Fatalf("%s: %v", tc.bind, err)
		}
		if mc.ProbeTimeout != tc.want {
			t.Errorf("%s: ProbeTimeout %v, want %v", tc.bind, mc.ProbeTimeout, tc.want)
		}
	}
	cfg := Config{BindAddr: "127.0.0.1:0", Profile: ProfileWAN}
	mc, err := cfg.memberlistConfig()
	if err != nil || mc.ProbeTimeout != memberlist.DefaultWANConfig().ProbeTimeout {
		t.Errorf("wan profile: %v, %v", mc, err)
	}
}

func TestLeaveEmitsLeft(t *testing.T) {
	a := startNode(t, testConfig(RoleController, "ctl"))
	b, err := Join(t.Context(), testConfig(RoleAgent, "agent-1", a.LocalAddr()))
	if err != nil {
		t.Fatal(err)
	}
	waitEvent(t, a, Joined, b.Name())
	closeNode(t, b)

	ev := waitEvent(t, a, Left, b.Name())
	if ev.Member.State != StateLeft {
		t.Errorf("left event state %q, want %q", ev.Member.State, StateLeft)
	}
	waitGone(t, a, b.Name())

	// Events is closed after Close, and Close is idempotent.
	for range b.Events() {
	}
	if err := b.Close(t.Context()); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestRestartWithNewIncarnation(t *testing.T) {
	a := startNode(t, testConfig(RoleController, "ctl"))
	cfg := testConfig(RoleAgent, "agent-1", a.LocalAddr())
	b1, err := Join(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	waitMember(t, a, b1.Name())
	oldName, oldAddr := b1.Name(), b1.LocalAddr()
	closeNode(t, b1)

	b2 := startNode(t, cfg) // same ID, fresh incarnation, new port
	if b2.Name() == oldName {
		t.Fatalf("restart reused the name %q", oldName)
	}
	if b2.Meta().ID != "agent-1" || !strings.HasPrefix(b2.Name(), "agent-1-") {
		t.Fatalf("restart name %q, meta %+v", b2.Name(), b2.Meta())
	}
	if b2.LocalAddr() == oldAddr {
		t.Logf("restart got the same port %s by chance", oldAddr)
	}
	m := waitMember(t, a, b2.Name())
	if m.State != StateAlive || m.Meta.ID != "agent-1" {
		t.Errorf("restarted member %+v", m)
	}
	waitGone(t, a, oldName)
	count := 0
	for _, m := range a.Members() {
		if m.Meta.ID == "agent-1" {
			count++
		}
	}
	if count != 1 {
		t.Errorf("agent-1 listed %d times: %v", count, names(a.Members()))
	}
}

func TestIsolation(t *testing.T) {
	key1 := bytes.Repeat([]byte{1}, 32)
	key2 := bytes.Repeat([]byte{2}, 32)
	cases := map[string]struct {
		seed, joiner func(*Config)
	}{
		"wrong label": {
			seed:   func(c *Config) { c.Label = "prod" },
			joiner: func(c *Config) { c.Label = "staging" },
		},
		"label vs none": {
			seed:   func(c *Config) { c.Label = "prod" },
			joiner: func(c *Config) {},
		},
		"wrong key": {
			seed:   func(c *Config) { c.SecretKey = key1 },
			joiner: func(c *Config) { c.SecretKey = key2 },
		},
		"no key": {
			seed:   func(c *Config) { c.SecretKey = key1 },
			joiner: func(c *Config) {},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			scfg := testConfig(RoleController, "ctl")
			tc.seed(&scfg)
			seed := startNode(t, scfg)

			jcfg := testConfig(RoleAgent, "intruder", seed.LocalAddr())
			tc.joiner(&jcfg)
			n, err := Join(t.Context(), jcfg)
			if err == nil {
				closeNode(t, n)
				t.Fatal("Join succeeded across clusters")
			}
			if !strings.HasPrefix(err.Error(), "cluster: join seeds:") {
				t.Errorf("error %q", err)
			}
			if ms := seed.Members(); len(ms) != 1 {
				t.Errorf("seed sees %v", names(ms))
			}
		})
	}

	t.Run("same label and key", func(t *testing.T) {
		scfg := testConfig(RoleController, "ctl")
		scfg.Label, scfg.SecretKey = "prod", key1
		seed := startNode(t, scfg)
		jcfg := testConfig(RoleAgent, "friend", seed.LocalAddr())
		jcfg.Label, jcfg.SecretKey = "prod", key1
		n := startNode(t, jcfg)
		waitMember(t, seed, n.Name())
	})
}

func TestJoinFailsWhenSeedDown(t *testing.T) {
	seed := freeport.Addr(t)
	n, err := Join(t.Context(), testConfig(RoleAgent, "a", seed))
	if err == nil {
		closeNode(t, n)
		t.Fatal("Join succeeded with no seed up")
	}
	if !strings.HasPrefix(err.Error(), "cluster: join seeds:") {
		t.Errorf("error %q", err)
	}
}

func TestRejoinSeedThatStartsLater(t *testing.T) {
	seedAddr := freeport.Addr(t)

	bcfg := testConfig(RoleAgent, "agent-1", seedAddr)
	bcfg.JoinBestEffort = true
	bcfg.RejoinInterval = 100 * time.Millisecond
	b := startNode(t, bcfg)
	if got := len(b.Members()); got != 1 {
		t.Fatalf("alone node has %d members", got)
	}

	acfg := testConfig(RoleController, "ctl")
	acfg.BindAddr = seedAddr
	a := startNode(t, acfg)

	waitMember(t, b, a.Name())
	waitMember(t, a, b.Name())
}

func TestRejoinAfterSeedRestart(t *testing.T) {
	acfg := testConfig(RoleController, "ctl")
	acfg.BindAddr = freeport.Addr(t)
	a1, err := Join(t.Context(), acfg)
	if err != nil {
		t.Fatal(err)
	}
	bcfg := testConfig(RoleAgent, "agent-1", a1.LocalAddr())
	bcfg.RejoinInterval = 100 * time.Millisecond
	b := startNode(t, bcfg)
	waitMember(t, a1, b.Name())

	// The seed goes away and comes back as a new incarnation that knows
	// nobody; only b's re-join loop can bring the two together again.
	closeNode(t, a1)
	waitGone(t, b, a1.Name())
	a2 := startNode(t, acfg)
	waitMember(t, a2, b.Name())
	waitMember(t, b, a2.Name())
}

func TestRejoinLoopEndsWithContext(t *testing.T) {
	a := startNode(t, testConfig(RoleController, "ctl"))
	ctx, cancel := context.WithCancel(t.Context())
	cfg := testConfig(RoleAgent, "agent-1", a.LocalAddr())
	cfg.RejoinInterval = 10 * time.Millisecond
	b, err := Join(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	b.wg.Wait() // the loop must return on its own once ctx is cancelled
	closeNode(t, b)
}

func TestSetMeta(t *testing.T) {
	ctl := startNode(t, testConfig(RoleController, "ctl"))
	agent := startNode(t, testConfig(RoleAgent, "agent-1", ctl.LocalAddr()))
	waitMember(t, agent, ctl.Name())

	m := ctl.Meta()
	m.GRPCAddr = "127.0.0.1:9999"
	if err := ctl.SetMeta(waitCtx(t), m); err != nil {
		t.Fatalf("SetMeta: %v", err)
	}
	c, err := WaitForMember(waitCtx(t), agent, func(m Member) bool { return m.Meta.GRPCAddr == "127.0.0.1:9999" })
	if err != nil || c.Name != ctl.Name() {
		t.Fatalf("agent never saw the new GRPCAddr: %+v, %v", c, err)
	}
	waitEvent(t, agent, Updated, ctl.Name())

	bad := m
	bad.ID = "other"
	if err := ctl.SetMeta(t.Context(), bad); err == nil {
		t.Error("SetMeta accepted a new ID")
	}
	big := m
	big.Region = strings.Repeat("r", 600)
	if err := ctl.SetMeta(t.Context(), big); !errors.Is(err, ErrMetaTooLarge) {
		t.Errorf("SetMeta too large: %v", err)
	}
}

func TestEventsDroppedNotBlocked(t *testing.T) {
	cfg := testConfig(RoleController, "ctl")
	cfg.EventBuffer = 1
	a := startNode(t, cfg) // its own Joined event fills the buffer
	b := startNode(t, testConfig(RoleAgent, "agent-1", a.LocalAddr()))
	waitMember(t, a, b.Name()) // memberlist kept going
	poll.Eventually(t, 5*time.Second, "Dropped() > 0 with a full buffer", func() bool { return a.Dropped() > 0 })
}

func TestWaitForMemberContext(t *testing.T) {
	a := startNode(t, testConfig(RoleAgent, "a"))
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	_, err := WaitForMember(ctx, a, func(Member) bool { return false })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
}

func TestMemberlistLogLevels(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ml := newMemberlistLogger(l)
	ml.Printf("[WARN] memberlist: something odd")
	ml.Printf("[DEBUG] memberlist: detail")
	ml.Printf("[ERR] memberlist: bad")
	ml.Printf("[ERR] memberlist: Failed to send gossip to 127.0.0.1:1: write udp 127.0.0.1:2->127.0.0.1:1: use of closed network connection")
	ml.Printf("plain")
	out := buf.String()
	for _, want := range []string{
		`level=WARN msg="memberlist: something odd"`,
		`level=DEBUG msg="memberlist: detail"`,
		`level=ERROR msg="memberlist: bad"`,
		`level=INFO msg=plain`,
		`level=DEBUG msg="memberlist: Failed to send gossip`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log output lacks %q:\n%s", want, out)
		}
	}
}
