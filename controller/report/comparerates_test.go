package report_test

import (
	"testing"
	"time"

	"github.com/surgeload/surge/controller/report"
	surgev1 "github.com/surgeload/surge/gen/surge/v1"
)

// errRun is a run of 752 requests to "api" over 16 s, failed of them 5xx.
func errRun(id string, failed int) *report.RunData {
	ok, _ := series("api", "2xx", 752-failed, 20000, 40000, 0)
	list := []*surgev1.Series{ok}
	if failed > 0 {
		e, _ := series("api", "5xx", failed, 1000, 2000, int64(failed))
		list = append(list, e)
	}
	return &report.RunData{ID: id, Duration: 16 * time.Second, Whole: map[string][]*surgev1.Series{"us-east": list}}
}

// Error rates get a confidence check: 8 and 16 5xx of 752 requests are
// the same system's noise (Newcombe's interval of the difference holds 0),
// 8 and 80 are not.
func TestCompareErrorRateNoise(t *testing.T) {
	for _, tc := range []struct {
		a, b     int
		diverged bool
	}{{a: 8, b: 16, diverged: false}, {a: 0, b: 3, diverged: false}, {a: 8, b: 80, diverged: true}} {
		c, err := report.Compare(errRun("A", tc.a), errRun("B", tc.b), report.CompareOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, metric := range []string{"error_rate", "error_rate.http_5xx"} {
			m := find(c, "all", metric)
			if m == nil {
				t.Fatalf("%d vs %d: no %s row", tc.a, tc.b, metric)
			}
			if m.GetDiverged() != tc.diverged || m.GetNoise() == tc.diverged {
				t.Errorf("%d vs %d failures: %s %v [%v, %v] vs %v [%v, %v]: diverged %v noise %v, want diverged %v",
					tc.a, tc.b, metric, m.GetA(), m.GetALow(), m.GetAHigh(), m.GetB(), m.GetBLow(), m.GetBHigh(),
					m.GetDiverged(), m.GetNoise(), tc.diverged)
			}
		}
	}
}

// Baseline figures carry no sample count: they are judged by the run's
// side alone, so a baseline p95 of 5 ms against a run's ~30 ms diverges,
// and figures inside the run's own confidence intervals do not.
func TestCompareBaselineJudgedByRun(t *testing.T) {
	b := errRun("B", 16)
	row := func(p95, errRate float64) []*surgev1.BaselineRow {
		return []*surgev1.BaselineRow{{Endpoint: "api", P50Ms: 29, P95Ms: p95, P99Ms: 39.5, ErrorRate: errRate, Rpm: 752.0 / 16 * 60}}
	}
	c, err := report.CompareBaseline(row(5, 0.0005), b, report.CompareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, metric := range []string{"p95_ms", "error_rate"} {
		m := find(c, "request=api", metric)
		if !m.GetDiverged() || m.GetThin() || m.GetNoise() {
			t.Errorf("baseline %s %v vs run %v: diverged %v thin %v noise %v, want diverged", metric, m.GetA(), m.GetB(),
				m.GetDiverged(), m.GetThin(), m.GetNoise())
		}
	}
	if c.GetDiverged() != 2 {
		t.Errorf("%d diverged, want 2 (p95 and error rate)", c.GetDiverged())
	}

	p95 := find(c, "request=api", "p95_ms").GetB()
	c, err = report.CompareBaseline(row(p95*1.01, 0.02), b, report.CompareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if c.GetDiverged() != 0 {
		t.Errorf("baseline at the run's figures: %d diverged", c.GetDiverged())
	}

	// 100 requests leave 5 values beyond p95: too few on the run's side.
	small := &report.RunData{ID: "S", Duration: time.Second, Whole: map[string][]*surgev1.Series{}}
	s, _ := series("api", "2xx", 100, 20000, 40000, 0)
	small.Whole["us-east"] = []*surgev1.Series{s}
	fast := row(5, 0)
	fast[0].P50Ms = 5
	c, err = report.CompareBaseline(fast, small, report.CompareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if m := find(c, "request=api", "p95_ms"); !m.GetThin() || m.GetDiverged() {
		t.Errorf("100 requests: p95 thin %v diverged %v, want thin", m.GetThin(), m.GetDiverged())
	}
	if m := find(c, "request=api", "p50_ms"); m.GetThin() || !m.GetDiverged() {
		t.Errorf("100 requests: p50 %v vs %v thin %v diverged %v, want diverged", m.GetA(), m.GetB(), m.GetThin(), m.GetDiverged())
	}
}

// Compare reads expected responses' percentiles apart (k6's
// expected_response tag): B's successes are three times slower, hidden in
// its plain p50 by 925 fast resets in 1,000; without failures on either
// side the rows are left out (they equal the plain ones).
func TestCompareExpectedResponses(t *testing.T) {
	ok, _ := series("api", "2xx", 1000, 20000, 40000, 0)
	a := &report.RunData{ID: "A", Duration: 10 * time.Second, Whole: map[string][]*surgev1.Series{"r": {ok}}}
	slow, _ := series("api", "2xx", 75, 60000, 120000, 0)
	reset, _ := series("api", "reset", 925, 100, 200, 925)
	b := &report.RunData{ID: "B", Duration: 10 * time.Second, Whole: map[string][]*surgev1.Series{"r": {slow, reset}}}
	c, err := report.Compare(a, b, report.CompareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if m := find(c, "all", "p50_ms"); m.GetB() > 1 {
		t.Fatalf("B's plain p50 %vms, want the fast resets'", m.GetB())
	}
	m := find(c, "all", "p50_ms"+report.ExpectedSuffix)
	if m == nil || !m.GetDiverged() || m.GetB() < 60 || m.GetA() > 40 {
		t.Fatalf("expected-response p50: %v, want A ~30ms, B >= 60ms, diverged", m)
	}
	c, err = report.Compare(a, a, report.CompareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if m := find(c, "all", "p50_ms"+report.ExpectedSuffix); m != nil {
		t.Errorf("runs without failures: expected-response row %v", m)
	}
}
