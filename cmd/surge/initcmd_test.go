package main

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/surgeload/surge/controller/surgetest"
	"github.com/surgeload/surge/examples/templates"
	"github.com/surgeload/surge/plan"
)

// testInitTemplatesRun: every template validates, and runs against the
// target with its durations shortened to about 1.5 s and its rates and VUs
// capped.
func testInitTemplatesRun(t *testing.T, c *surgetest.Cluster) {
	for _, name := range append(templates.Names(), "endurance") {
		out := filepath.Join(t.TempDir(), name+".yaml")
		if r := cli(t, nil, "init", "--template", name, "-o", out); r.code != 0 {
			t.Fatalf("init %s: exit %d %s", name, r.code, r.stderr)
		}
		src, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(src, []byte("# "+strings.Replace(name, "endurance", "soak", 1)+" ")) &&
			!bytes.HasPrefix(src, []byte("# "+strings.Replace(name, "endurance", "soak", 1)+":")) {
			t.Errorf("%s: no comment header naming the failure", name)
		}
		if r := cli(t, nil, "validate", out); r.code != 0 {
			t.Fatalf("%s does not validate: %s", name, r.stderr)
		}
	}
	for _, name := range templates.Names() {
		src, err := templates.Get(name)
		if err != nil {
			t.Fatal(err)
		}
		short := shortenPlan(t, name, src, c.TargetURL())
		before := c.Target.Stats().Requests
		s := runOK(t, c, name+".yaml", short)
		if s.GetAll().GetRequests() == 0 || c.Target.Stats().Requests == before {
			t.Errorf("%s: no requests reached the target", name)
		}
		t.Logf("measured: template %s shortened: %d requests, p99 %dµs, verdict %s", name, s.GetAll().GetRequests(),
			s.GetAll().GetLatencyUs().GetP99(), s.GetVerdict())
	}
}

// shortenPlan scales a plan's time to about 1.5 s, caps rates at 50/s and
// VUs at 5, and points its requests at base.
func shortenPlan(t *testing.T, name string, src []byte, base string) []byte {
	t.Helper()
	p, err := plan.Parse(name+".yaml", bytes.ReplaceAll(src, []byte(templates.BaseURL), []byte(base)))
	if err != nil {
		t.Fatal(err)
	}
	f := 1500 * time.Millisecond.Seconds() / p.TotalDuration().Seconds()
	d := func(x plan.Duration) plan.Duration {
		if x == 0 {
			return 0
		}
		return plan.Duration(math.Max(float64(x)*f, float64(time.Millisecond)))
	}
	for _, sc := range p.Scenarios {
		sc.Duration, sc.StartTime, sc.GracefulStop = d(sc.Duration), d(sc.StartTime), plan.Duration(time.Second)
		var k float64
		if sc.IsArrivalRate() {
			k = math.Min(1, 50/math.Max(sc.PeakRate(), 1))
			sc.Rate, sc.StartRate = sc.Rate*k, sc.StartRate*k
		} else {
			k = math.Min(1, 5/math.Max(float64(sc.PeakVUs()), 1))
			sc.VUs, sc.StartVUs = int64(math.Ceil(float64(sc.VUs)*k)), int64(math.Ceil(float64(sc.StartVUs)*k))
		}
		for i := range sc.Stages {
			sc.Stages[i].Duration = d(sc.Stages[i].Duration)
			sc.Stages[i].Target = math.Round(sc.Stages[i].Target * k)
		}
		for i := range sc.Requests {
			sc.Requests[i].Timeout = plan.Duration(5 * time.Second)
		}
	}
	b, err := plan.MarshalCanonical(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := plan.Parse(name+".json", b); err != nil {
		t.Fatalf("shortened %s: %v\n%s", name, err, b)
	}
	return b
}

func sum(xs []int) int {
	var s int
	for _, x := range xs {
		s += x
	}
	return s
}
