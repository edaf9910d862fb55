package report_test

import (
	"testing"
	"time"

	"github.com/surgeload/surge/controller/report"
	surgev1 "github.com/surgeload/surge/gen/surge/v1"
)

// connRun is a 6-interval run in two regions, scenario "s": each region
// opens opened[i] connections in interval i and holds open[i] at its end;
// every interval has 100 requests per region, errs of them failing with
// status.
func connRun(id string, opened, open []int64, status string, errs int) *report.RunData {
	d := &report.RunData{ID: id, Duration: 6 * time.Second, Interval: time.Second,
		Whole: map[string][]*surgev1.Series{}, Scenarios: map[string][]*surgev1.ScenarioStats{}}
	for _, region := range []string{"us", "eu"} {
		var sum int64
		for i := range 6 {
			ok, _ := series("home", "2xx", 100-errs, 1000, 3000, 0)
			list := []*surgev1.Series{ok}
			if errs > 0 {
				bad, _ := series("home", status, errs, 100, 200, int64(errs))
				list = append(list, bad)
			}
			sc := []*surgev1.ScenarioStats{{Scenario: "s", ConnsOpened: opened[i], ConnsOpen: open[i]}}
			if i >= len(d.Intervals) {
				d.Intervals = append(d.Intervals, report.Interval{Index: int64(i), Regions: map[string][]*surgev1.Series{},
					Scenarios: map[string][]*surgev1.ScenarioStats{}})
			}
			d.Intervals[i].Regions[region] = list
			d.Intervals[i].Scenarios[region] = sc
			d.Whole[region] = append(d.Whole[region], list...)
			sum += opened[i]
		}
		d.Scenarios[region] = []*surgev1.ScenarioStats{{Scenario: "s", ConnsOpened: sum, ConnsOpen: open[5]}}
	}
	return d
}

func metric(c *surgev1.CompareResponse, window bool, start int64, group, name string) *surgev1.MetricDiff {
	for _, m := range c.GetMetrics() {
		if m.GetWindow() == window && (!window || m.GetWindowStartMs() == start) && m.GetGroup() == group && m.GetMetric() == name {
			return m
		}
	}
	return nil
}

// Connections opened per second and peak open are compared whole-run (all
// and by region or scenario) and per aligned window, from the stored
// scenario stats; a run that reconnects per request diverges on them only.
func TestCompareConnections(t *testing.T) {
	perVU := connRun("A", []int64{20, 0, 0, 0, 0, 0}, []int64{20, 20, 20, 20, 20, 20}, "", 0)
	never := connRun("B", []int64{100, 100, 100, 100, 100, 100}, []int64{30, 34, 31, 30, 33, 30}, "", 0)
	c, err := report.Compare(perVU, never, report.CompareOptions{By: report.ByRegion, Window: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range []struct {
		group, metric string
		a, b          float64
	}{
		{"all", "conns_opened_per_s", 40.0 / 6, 1200.0 / 6},
		{"all", "conns_peak_open", 40, 68},
		{"region=eu", "conns_opened_per_s", 20.0 / 6, 600.0 / 6},
		{"region=eu", "conns_peak_open", 20, 34},
	} {
		m := metric(c, false, 0, x.group, x.metric)
		if m == nil || m.GetA() != x.a || m.GetB() != x.b || !m.GetDiverged() {
			t.Errorf("%s %s: %v, want a %v b %v diverged", x.group, x.metric, m, x.a, x.b)
		}
	}
	if m := metric(c, false, 0, "all", "p99_ms"); m == nil || m.GetDiverged() {
		t.Errorf("latency did not change but: %v", m)
	}
	// Window 2 (4-6 s): A opens nothing, B 200 per second; peaks 40 vs 66.
	if m := metric(c, true, 4000, "all", "conns_opened_per_s"); m == nil || m.GetA() != 0 || m.GetB() != 200 || !m.GetDiverged() {
		t.Errorf("window conns_opened_per_s: %v", m)
	}
	if m := metric(c, true, 4000, "all", "conns_peak_open"); m == nil || m.GetA() != 40 || m.GetB() != 66 || !m.GetDiverged() {
		t.Errorf("window conns_peak_open: %v", m)
	}

	same, err := report.Compare(perVU, connRun("A2", []int64{20, 0, 0, 0, 0, 0}, []int64{20, 20, 20, 21, 20, 20}, "", 0),
		report.CompareOptions{By: report.ByScenario})
	if err != nil {
		t.Fatal(err)
	}
	if same.GetDiverged() != 0 {
		t.Errorf("equal connections (one more open per region once: 5%%, within tolerance): %d diverged", same.GetDiverged())
	}
	if m := metric(same, false, 0, "scenario=s", "conns_peak_open"); m == nil || m.GetB() != 42 {
		t.Errorf("scenario=s peak: %v", m)
	}

	// A run stored before connections were: nothing to compare, not a divergence.
	old := connRun("O", make([]int64, 6), make([]int64, 6), "", 0)
	old.Scenarios = nil
	for i := range old.Intervals {
		old.Intervals[i].Scenarios = nil
	}
	c, err = report.Compare(old, never, report.CompareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if m := metric(c, false, 0, "all", "conns_peak_open"); m == nil || m.GetAPresent() != true || m.GetDiverged() {
		t.Errorf("old run: %v", m)
	}
}

// Error rates are compared by class under the summary's names.
func TestCompareErrorClasses(t *testing.T) {
	flat := []int64{1, 1, 1, 1, 1, 1}
	for _, st := range []string{"timeout", "refused", "reset", "tls", "dns", "protocol", "4xx", "5xx"} {
		a := connRun("A", flat, flat, "", 0)
		b := connRun("B", flat, flat, st, 10)
		c, err := report.Compare(a, b, report.CompareOptions{Window: -1})
		if err != nil {
			t.Fatal(err)
		}
		name := "error_rate." + map[string]string{"4xx": "http_4xx", "5xx": "http_5xx"}[st]
		if name == "error_rate." {
			name += st
		}
		m := metric(c, false, 0, "all", name)
		if m == nil || m.GetA() != 0 || m.GetB() != 0.1 || !m.GetDiverged() {
			t.Errorf("%s: %s = %v", st, name, m)
		}
		for _, raw := range []string{"error_rate.2xx", "error_rate.4xx", "error_rate.5xx"} {
			if metric(c, false, 0, "all", raw) != nil {
				t.Errorf("%s: %s compared", st, raw)
			}
		}
	}
}
