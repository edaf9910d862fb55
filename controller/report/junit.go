package report

import (
	"encoding/xml"
	"fmt"
	"maps"
	"slices"
	"strconv"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
)

// junitSuites is the JUnit XML report CI systems read (Jenkins, GitLab,
// GitHub's test reporters): one suite per run.
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string          `xml:"name,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Time       string          `xml:"time,attr"`
	Timestamp  string          `xml:"timestamp,attr,omitempty"`
	Properties []junitProperty `xml:"properties>property"`
	Cases      []junitCase     `xml:"testcase"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Class   string        `xml:"classname,attr"`
	Name    string        `xml:"name,attr"`
	Time    string        `xml:"time,attr"`
	Failure *junitFailure `xml:"failure"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

// JUnit renders a run's verdict as a JUnit XML report (`surge run --junit`):
// one test case for the run's status (it fails unless the run finished)
// and one per threshold, failed with its value.
func JUnit(s *surgev1.RunSummary) ([]byte, error) {
	sum := FromProto(s)
	suite := junitSuite{Name: fmt.Sprintf("surge %s (run %s)", sum.Plan, sum.RunID), Time: seconds3(sum.DurationS), Timestamp: sum.StartedAt}
	suite.Properties = append(suite.Properties, junitProperty{"run_id", sum.RunID}, junitProperty{"verdict", sum.Verdict})
	for _, k := range slices.Sorted(maps.Keys(sum.Tags)) {
		suite.Properties = append(suite.Properties, junitProperty{"tag." + k, sum.Tags[k]})
	}
	status := junitCase{Class: "surge.run", Name: "run finished", Time: suite.Time}
	if sum.Status != "finished" {
		status.Failure = &junitFailure{Type: "status", Message: "run " + sum.Status, Text: sum.Error}
	}
	suite.Cases = append(suite.Cases, status)
	for _, t := range sum.Thresholds {
		c := junitCase{Class: "surge.thresholds", Name: t.Metric + ": " + t.Expr, Time: "0"}
		if !t.OK {
			value := "no data"
			if t.Value != nil {
				value = "value " + strconv.FormatFloat(*t.Value, 'g', 6, 64)
			}
			c.Failure = &junitFailure{Type: "threshold", Message: value, Text: fmt.Sprintf("%s %s failed: %s", t.Metric, t.Expr, value)}
		}
		suite.Cases = append(suite.Cases, c)
	}
	suite.Tests = len(suite.Cases)
	for _, c := range suite.Cases {
		if c.Failure != nil {
			suite.Failures++
		}
	}
	out := junitSuites{Name: "surge", Tests: suite.Tests, Failures: suite.Failures, Suites: []junitSuite{suite}}
	b, err := xml.MarshalIndent(out, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("junit: %w", err)
	}
	return append([]byte(xml.Header), append(b, '\n')...), nil
}

func seconds3(s float64) string { return strconv.FormatFloat(s, 'f', 3, 64) }
