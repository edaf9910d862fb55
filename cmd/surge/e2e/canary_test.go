//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/surgeload/surge/internal/freeport"
	"github.com/surgeload/surge/internal/poll"
)

// The canary gates with real HTTP calls shaped as Argo Rollouts' web
// metric provider (GET, a bearer header, the verdict read from JSON) and
// Flagger's webhooks (POST of the canary payload, any non-2xx halts) make
// them: a healthy canary passes, one answering 5xx to half the requests
// fails the plan's threshold and is refused; no token, an unknown plan and
// a bad base URL are refused before any request is sent.
func TestCanaryGates(t *testing.T) {
	good, failing := freeport.Addr(t), freeport.Addr(t)
	start(t, "healthy canary", "target", "--listen", good)
	start(t, "failing canary", "target", "--listen", failing, "--error-rate", "0.5", "--error-status", "503")
	c := startCluster(t, [][2]string{{"g1", "us-east"}})
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "smoke.yaml"), []byte(`name: smoke
scenarios:
  api:
    executor: constant-arrival-rate
    rate: 50
    duration: 2s
    requests: [{name: home, url: /}]
thresholds:
  http_req_failed: ["rate<0.01"]
`), 0o644); err != nil {
		t.Fatal(err)
	}
	gates := freeport.Addr(t)
	start(t, "canary gates", "canary", "--listen", gates, "--plans", dir, "--controller", c.ctrl, "--api-token", "gate-token")
	poll.EventuallyErr(t, 30*time.Second, "gates listening", func() error {
		resp, err := http.Get("http://" + gates + "/argo")
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	})
	argo := func(token, planName, base string) (int, map[string]any) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+gates+"/argo?"+url.Values{"plan": {planName}, "base_url": {base}}.Encode(), nil)
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		return call(t, req)
	}
	flagger := func(planName, base string) (int, map[string]any) {
		body := fmt.Sprintf(`{"name":"podinfo","namespace":"test","phase":"Progressing","checksum":"7c2b","metadata":{"plan":%q,"base_url":%q,"token":"gate-token"}}`, planName, base)
		req, _ := http.NewRequest(http.MethodPost, "http://"+gates+"/flagger", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		return call(t, req)
	}
	before := readTargetStats(t, good).Requests + readTargetStats(t, failing).Requests
	for _, bad := range []struct {
		name string
		code int
		got  func() (int, map[string]any)
		want string
	}{
		{"argo without the token", http.StatusUnauthorized, func() (int, map[string]any) { return argo("guess", "smoke", "http://"+good) }, "token"},
		{"argo unknown plan", http.StatusNotFound, func() (int, map[string]any) { return argo("gate-token", "soak", "http://"+good) }, `plan "soak"`},
		{"flagger bad base url", http.StatusBadRequest, func() (int, map[string]any) { return flagger("smoke", "ftp://x") }, "base_url"},
	} {
		code, a := bad.got()
		t.Logf("measured: %s: %d %v", bad.name, code, a["error"])
		if code != bad.code || !strings.Contains(fmt.Sprint(a["error"]), bad.want) {
			t.Errorf("%s: %d %v, want %d naming %q", bad.name, code, a, bad.code, bad.want)
		}
	}
	if after := readTargetStats(t, good).Requests + readTargetStats(t, failing).Requests; after != before {
		t.Fatalf("refused gates sent %d requests", after-before)
	}
	code, a := argo("gate-token", "smoke", "http://"+good)
	t.Logf("measured: argo, healthy canary: %d %v", code, a)
	if code != http.StatusOK || a["verdict"] != "pass" {
		t.Errorf("argo healthy: %d %v, want 200 pass", code, a)
	}
	code, a = argo("gate-token", "smoke", "http://"+failing)
	t.Logf("measured: argo, failing canary: %d %v", code, a)
	if code != http.StatusOK || a["verdict"] != "fail" || a["run_id"] == "" {
		t.Errorf("argo failing: %d %v, want 200 with verdict fail (the AnalysisTemplate's condition judges it)", code, a)
	}
	code, a = flagger("smoke", "http://"+good)
	t.Logf("measured: flagger, healthy canary: %d %v", code, a["verdict"])
	if code != http.StatusOK || a["verdict"] != "pass" {
		t.Errorf("flagger healthy: %d %v, want 200", code, a)
	}
	code, a = flagger("smoke", "http://"+failing)
	t.Logf("measured: flagger, failing canary: %d %v", code, a["verdict"])
	if code != http.StatusPreconditionFailed || a["verdict"] != "fail" {
		t.Errorf("flagger failing: %d %v, want 412 fail", code, a)
	}
	if out, _ := surge(t, "runs", "--controller", c.ctrl, "--tag", "canary=flagger"); strings.Count(out, "smoke") != 2 {
		t.Errorf("runs tagged canary=flagger:\n%s", out)
	}
}

// call does req and decodes its JSON answer.
func call(t *testing.T, req *http.Request) (int, map[string]any) {
	t.Helper()
	client := &http.Client{Timeout: 60 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("%s %s: %d, not JSON: %s", req.Method, req.URL, resp.StatusCode, b)
	}
	return resp.StatusCode, out
}
