package report_test

import (
	"encoding/xml"
	"testing"

	"github.com/surgeload/surge/controller/report"
	surgev1 "github.com/surgeload/surge/gen/surge/v1"
)

// TestJUnitGolden: a test case for the run's status and one per threshold;
// the failed ones carry their value, and the counts add up.
func TestJUnitGolden(t *testing.T) {
	for name, wantFailures := range map[string]int{"pass": 0, "fail": 3, "empty": 1} {
		t.Run(name, func(t *testing.T) {
			s := summaries()[name]
			b, err := report.JUnit(s)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, name+".junit.xml", b)
			var doc struct {
				Tests    int `xml:"tests,attr"`
				Failures int `xml:"failures,attr"`
				Suite    struct {
					Cases []struct {
						Name    string `xml:"name,attr"`
						Failure *struct {
							Message string `xml:"message,attr"`
						} `xml:"failure"`
					} `xml:"testcase"`
				} `xml:"testsuite"`
			}
			if err := xml.Unmarshal(b, &doc); err != nil {
				t.Fatalf("not XML: %v", err)
			}
			failed := 0
			for _, c := range doc.Suite.Cases {
				if c.Failure != nil {
					failed++
				}
			}
			if doc.Tests != len(s.GetThresholds())+1 || len(doc.Suite.Cases) != doc.Tests || doc.Failures != wantFailures || failed != wantFailures {
				t.Errorf("tests %d (%d cases), failures %d (%d failed); want %d and %d", doc.Tests, len(doc.Suite.Cases), doc.Failures, failed, len(s.GetThresholds())+1, wantFailures)
			}
		})
	}
}

// TestCompareJUnit: judged metrics are the cases when the judge ran, else
// the whole-run metrics (not the windows), failed when they diverged.
func TestCompareJUnit(t *testing.T) {
	count := func(b []byte) (tests, failures int, names []string) {
		var doc struct {
			Tests    int `xml:"tests,attr"`
			Failures int `xml:"failures,attr"`
			Cases    []struct {
				Name string `xml:"name,attr"`
			} `xml:"testsuite>testcase"`
		}
		if err := xml.Unmarshal(b, &doc); err != nil {
			t.Fatalf("not XML: %v", err)
		}
		for _, c := range doc.Cases {
			names = append(names, c.Name)
		}
		return doc.Tests, doc.Failures, names
	}
	judged := &surgev1.CompareResponse{RunA: "a", RunB: "b", Judgement: &surgev1.Judgement{Score: 50, Outcome: "fail", Metrics: []*surgev1.JudgedMetric{
		{Group: "all", Metric: "latency_ms", Class: "high", Reason: "B higher"}, {Group: "request=x", Metric: "latency_ms", Class: "pass"}}},
		Metrics: []*surgev1.MetricDiff{{Group: "all", Metric: "p50_ms", Diverged: true}}}
	b, err := report.CompareJUnit(judged)
	if err != nil {
		t.Fatal(err)
	}
	if n, f, names := count(b); n != 2 || f != 1 || names[0] != "all latency_ms" {
		t.Errorf("judged: %d cases %d failures %v, want 2 and 1", n, f, names)
	}
	judged.Judgement = nil
	judged.Metrics = append(judged.Metrics, &surgev1.MetricDiff{Group: "all", Metric: "p99_ms", APresent: true, BPresent: true},
		&surgev1.MetricDiff{Window: true, Group: "all", Metric: "p50_ms", Diverged: true})
	if b, err = report.CompareJUnit(judged); err != nil {
		t.Fatal(err)
	}
	if n, f, names := count(b); n != 2 || f != 1 || names[1] != "all p99_ms" {
		t.Errorf("tolerance: %d cases %d failures %v, want 2 and 1", n, f, names)
	}
}
