package report_test

import (
	"encoding/xml"
	"testing"

	"github.com/surgeload/surge/controller/report"
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
