package surgetest

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/surgeload/surge/cmd/surge/target"
	"github.com/surgeload/surge/plan"
)

// A CSV feeder read the way `surge run` reads it (relative to the plan
// file, shipped inline) drives the URL paths on 3 agents: unique-per-vu
// with 3 VUs over 3 rows gives each row to exactly one VU (each agent's VU 1
// starts at its segment's row), and sequential shared iterations walk every
// row equally often.
func TestClusterFeeders(t *testing.T) {
	c := Start(t, Options{
		Agents: []AgentSpec{{ID: "a1", Region: "us-east"}, {ID: "a2", Region: "us-east"}, {ID: "a3", Region: "us-east"}},
		Target: target.Config{Latency: "1ms"},
	})
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "users.csv"), []byte("user,id\nalice,1\nbob,2\ncarol,3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "feeders.yaml")
	src := fmt.Sprintf(`name: feeders
data:
  users: {file: users.csv, mode: unique-per-vu}
  seq: {file: users.csv}
scenarios:
  per_vu:
    executor: per-vu-iterations
    vus: 3
    iterations: 4
    requests: [{url: '%[1]s/u/{{data "users" "user"}}/{{data "users" "id"}}'}]
  shared:
    executor: shared-iterations
    vus: 3
    iterations: 9
    requests: [{url: '%[1]s/s/{{data "seq" "user"}}'}]
`, c.TargetURL())
	_, inlined, err := plan.ParseWithData(file, []byte(src), dir)
	if err != nil {
		t.Fatal(err)
	}
	c.WaitAgents(t, 3)
	c.Run(t, file, inlined)
	by := c.Target.Stats().ByPath
	for _, p := range []string{"/u/alice/1", "/u/bob/2", "/u/carol/3"} {
		if by[p] != 4 {
			t.Errorf("%s hit %d times, want 4 (one VU's iterations): %v", p, by[p], by)
		}
	}
	for _, p := range []string{"/s/alice", "/s/bob", "/s/carol"} {
		if by[p] != 3 {
			t.Errorf("%s hit %d times, want 3: %v", p, by[p], by)
		}
	}
}
