package surgetest

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
)

// requestStats returns the summary's stats of the named request of flow.
func requestStats(t *testing.T, sum *surgev1.RunSummary, flow, name string) *surgev1.Stats {
	t.Helper()
	for _, r := range sum.GetRequests() {
		if r.GetFlow() == flow && r.GetRequest() == name {
			return r.GetStats()
		}
	}
	t.Fatalf("summary has no request %q of flow %s: %v", name, flow, sum.GetRequests())
	return nil
}

// examples/login.yaml on three agents in three regions: every VU logs in
// exactly once (on_start, its own series), carries its token and its own
// session cookie, and fetches only the orders it created: the target
// counts no 401, no crossed session and no foreign order.
func TestLoginFlowCarriesState(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	src, err := os.ReadFile("../../examples/login.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c := Start(t, Options{Agents: []AgentSpec{
		{ID: "a1", Region: "us-east"}, {ID: "a2", Region: "eu-west"}, {ID: "a3", Region: "ap-south"},
	}})
	plan := strings.NewReplacer("http://127.0.0.1:8080", c.TargetURL(), "duration: 30s", "duration: 3s").Replace(string(src))
	if !strings.Contains(plan, "duration: 3s") || !strings.Contains(plan, "vus: 6") {
		t.Fatal("examples/login.yaml no longer says vus: 6, duration: 30s; update this test")
	}
	sum, _ := c.Run(t, "login.yaml", []byte(plan))
	shop := c.Target.Stats().Shop
	if shop.Logins != 6 || len(shop.LoginsByUser) != 6 {
		t.Errorf("target saw %d logins by %d users (%v), want one per VU: 6", shop.Logins, len(shop.LoginsByUser), shop.LoginsByUser)
	}
	for user, n := range shop.LoginsByUser {
		if n != 1 {
			t.Errorf("user %q logged in %d times, want once", user, n)
		}
	}
	if shop.Unauthorized != 0 || shop.Mismatched != 0 || shop.OrdersForeign != 0 || shop.OrdersMissing != 0 {
		t.Errorf("target counted %d 401s, %d crossed sessions, %d foreign and %d missing orders; want none",
			shop.Unauthorized, shop.Mismatched, shop.OrdersForeign, shop.OrdersMissing)
	}
	if shop.OrdersCreated == 0 || shop.OrdersFetched != shop.OrdersCreated {
		t.Errorf("orders created %d, fetched by their creator %d; want equal and some", shop.OrdersCreated, shop.OrdersFetched)
	}
	if st := requestStats(t, sum, "on_start", "login"); st.GetRequests() != 6 || st.GetFailures() != 0 {
		t.Errorf("on_start login series: %d requests, %d failures; want 6, 0", st.GetRequests(), st.GetFailures())
	}
	if st := requestStats(t, sum, "shop", "fetch order"); st.GetRequests() != shop.OrdersFetched {
		t.Errorf("summary has %d fetches, the target %d", st.GetRequests(), shop.OrdersFetched)
	}
	if a := sum.GetAll(); a.GetExtractFailed() != 0 || a.GetChecksFailed() != 0 || a.GetFailures() != 0 {
		t.Errorf("extract_failed %d, checks failed %d, failures %d; want none", a.GetExtractFailed(), a.GetChecksFailed(), a.GetFailures())
	}
	if sum.GetVerdict() != "pass" {
		t.Errorf("verdict %q, want pass", sum.GetVerdict())
	}
}

// A login that starts failing mid-run ends each iteration at its failed
// extraction: extract_failed equals the target's failed logins, and no
// order request goes out without a token (no 401, one order per
// successful login).
func TestFailedExtractionEndsIteration(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	c := Start(t, Options{Agents: []AgentSpec{{ID: "a1", Region: "us-east"}, {ID: "a2", Region: "eu-west"}}})
	plan := fmt.Sprintf(`name: login-fails
base_url: %s
scenarios:
  users:
    executor: per-vu-iterations
    vus: 4
    iterations: 25
    flows:
      buy:
        steps:
          - {name: login, method: POST, url: /login, extract: {token: {json: "$.token"}}}
          - {name: create, method: POST, url: /orders, headers: {Authorization: 'Bearer {{var "token"}}'}}
          - think: 10ms
`, c.TargetURL())
	// Logins fail from the 20th on: the flip polls the target's own count.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() {
		for ctx.Err() == nil && c.Target.Stats().Shop.Logins < 20 {
			select {
			case <-ctx.Done():
			case <-time.After(2 * time.Millisecond):
			}
		}
		c.Target.SetLoginsFailing(true)
	})
	sum, _ := c.Run(t, "login-fails.yaml", []byte(plan))
	cancel()
	wg.Wait()
	shop := c.Target.Stats().Shop
	if shop.LoginsFailed == 0 || shop.Logins+shop.LoginsFailed != 100 {
		t.Fatalf("target: %d logins, %d failed; want 100 in all, some failed", shop.Logins, shop.LoginsFailed)
	}
	login := requestStats(t, sum, "buy", "login")
	if login.GetExtractFailed() != shop.LoginsFailed || sum.GetAll().GetExtractFailed() != shop.LoginsFailed {
		t.Errorf("extract_failed: login %d, run %d; want the target's failed logins, %d",
			login.GetExtractFailed(), sum.GetAll().GetExtractFailed(), shop.LoginsFailed)
	}
	if shop.Unauthorized != 0 || shop.OrdersCreated != shop.Logins {
		t.Errorf("target: %d 401s, %d orders for %d logins; want no 401 and one order per login", shop.Unauthorized, shop.OrdersCreated, shop.Logins)
	}
	if st := requestStats(t, sum, "buy", "create"); st.GetRequests() != shop.Logins {
		t.Errorf("summary: %d creates, want %d (one per successful login)", st.GetRequests(), shop.Logins)
	}
}
