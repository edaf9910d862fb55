//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/surgeload/surge/controller/report"
)

// The README's two ways in, run as a user runs them, are not flagged
// saturated: `surge demo` (make demo's cluster in one process), and
// examples/checks.yaml against surge target, a controller and three agents
// as separate processes, its duration cut from 30s to 4s. Their load is far
// below an agent's, so a flag here is a false alarm users would learn to
// ignore (see notSaturated for the one spike it tolerates).
func TestExamplesNotSaturated(t *testing.T) {
	t.Run("demo", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "demo.json")
		text, code := surge(t, "demo", "--duration", "6s", "--quiet", "--json", out, "--data-dir", t.TempDir())
		if code != 0 {
			t.Fatalf("surge demo exited %d:\n%s", code, text)
		}
		notSaturated(t, readSummary(t, out))
	})
	t.Run("checks.yaml", func(t *testing.T) {
		c := startCluster(t, [][2]string{{"a1", "us-east"}, {"a2", "eu-west"}, {"a3", "ap-south"}})
		src, err := os.ReadFile(filepath.Join("..", "..", "..", "examples", "checks.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		short := strings.Replace(string(src), "duration: 30s", "duration: 4s", 1)
		if short == string(src) {
			t.Fatal("examples/checks.yaml no longer says duration: 30s; update this test")
		}
		plan := writePlan(t, "checks.yaml", short)
		out := filepath.Join(t.TempDir(), "checks.json")
		text, code := surge(t, "run", plan, "--controller", c.ctrl, "--base-url", "http://"+c.target, "-q", "--json", out)
		if code != 0 {
			t.Fatalf("surge run exited %d:\n%s", code, text)
		}
		s := readSummary(t, out)
		if ts := readTargetStats(t, c.target); s.Requests != 80 || ts.Requests != s.Requests {
			t.Errorf("summary %d requests, target %d; the plan sends 20/s for 4s", s.Requests, ts.Requests)
		}
		notSaturated(t, s)
	})
}

// notSaturated fails the test when summary s shows a saturated generator:
// any interval flagged for CPU or dropped iterations, send lateness flagged
// in more than one interval, or the run's p99 lateness over the 10 ms
// bound. One interval's lateness spike alone (a GC pause or a neighbour's
// burst on a shared 2-core machine: 11 ms once in CI, with the run's p99 at
// 0.4 ms) is logged, not failed: these machines are noisy, and the check
// is for false alarms a user would see on every run.
func notSaturated(t *testing.T, s *report.Summary) {
	t.Helper()
	if s.Requests == 0 || s.Verdict != "pass" {
		t.Errorf("run %s: %d requests, verdict %s", s.RunID, s.Requests, s.Verdict)
	}
	lateOnly := 0
	for _, f := range s.Saturation {
		only := true
		for _, r := range f.Reasons {
			only = only && strings.HasPrefix(r, "send lateness")
		}
		if only {
			lateOnly++
			t.Logf("run %s: interval %d flagged on agent %s (%s): %v", s.RunID, f.Interval, f.Agent, f.Region, f.Reasons)
			continue
		}
		t.Errorf("run %s: interval %d flagged saturated on agent %s (%s): %v", s.RunID, f.Interval, f.Agent, f.Region, f.Reasons)
	}
	if lateOnly > 1 {
		t.Errorf("run %s: send lateness flagged in %d intervals, want at most one isolated spike", s.RunID, lateOnly)
	}
	if l := s.SendLatenessUS; l != nil && l.P99 > 10_000 {
		t.Errorf("run %s: send lateness p99 %d µs over the 10 ms bound", s.RunID, l.P99)
	}
	t.Logf("measured: run %s: %d requests, send lateness p99 %s, %d saturation flags", s.RunID, s.Requests,
		lateP99(s), len(s.Saturation))
}

func lateP99(s *report.Summary) string {
	if s.SendLatenessUS == nil {
		return "-"
	}
	return fmt.Sprintf("%dµs", s.SendLatenessUS.P99)
}

// examples/login.yaml as a user runs it, cut to 4s: `surge run` against a
// controller, three agents and surge target as processes. Every VU logs in
// once, no request goes without its session, and the summary shows the
// on_start series and no failed extraction.
func TestLoginExample(t *testing.T) {
	c := startCluster(t, [][2]string{{"a1", "us-east"}, {"a2", "eu-west"}, {"a3", "ap-south"}})
	src, err := os.ReadFile(filepath.Join("..", "..", "..", "examples", "login.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	short := strings.Replace(string(src), "duration: 30s", "duration: 4s", 1)
	if short == string(src) {
		t.Fatal("examples/login.yaml no longer says duration: 30s; update this test")
	}
	out := filepath.Join(t.TempDir(), "login.json")
	text, code := surge(t, "run", writePlan(t, "login.yaml", short), "--controller", c.ctrl, "--base-url", "http://"+c.target, "--json", out)
	if code != 0 {
		t.Fatalf("surge run exited %d:\n%s", code, text)
	}
	s, shop := readSummary(t, out), readTargetStats(t, c.target).Shop
	if shop.Logins != 6 || len(shop.LoginsByUser) != 6 || shop.Unauthorized != 0 || shop.Mismatched != 0 || shop.OrdersForeign != 0 {
		t.Errorf("target: %d logins by %d users, %d 401s, %d crossed sessions, %d foreign orders; want 6 by 6 and none",
			shop.Logins, len(shop.LoginsByUser), shop.Unauthorized, shop.Mismatched, shop.OrdersForeign)
	}
	logins := int64(0)
	for _, r := range s.ByRequest {
		if r.Flow == "on_start" && r.Request == "login" {
			logins = r.Requests
		}
	}
	if logins != 6 || s.ExtractFailed != 0 || s.Verdict != "pass" || shop.OrdersFetched != shop.OrdersCreated {
		t.Errorf("summary: %d on_start logins, extract_failed %d, verdict %s; orders %d created, %d fetched",
			logins, s.ExtractFailed, s.Verdict, shop.OrdersCreated, shop.OrdersFetched)
	}
	if !strings.Contains(text, "on_start") {
		t.Errorf("the text summary does not show the on_start series:\n%s", text)
	}
}
