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
	return suite.encode()
}

// CompareJUnit renders a comparison as a JUnit XML report (`surge compare
// --junit`): with the judge, one test case per judged metric, failed
// unless it passed; without, one per whole-run metric, failed when it
// diverged.
func CompareJUnit(c *surgev1.CompareResponse) ([]byte, error) {
	suite := junitSuite{Name: fmt.Sprintf("surge compare %s %s", c.GetRunA(), c.GetRunB()), Time: "0"}
	suite.Properties = append(suite.Properties, junitProperty{"run_a", c.GetRunA()}, junitProperty{"run_b", c.GetRunB()})
	if j := c.GetJudgement(); j != nil {
		suite.Properties = append(suite.Properties, junitProperty{"judge_score", strconv.FormatFloat(j.GetScore(), 'f', 0, 64)},
			junitProperty{"judge_outcome", j.GetOutcome()})
		for _, m := range j.GetMetrics() {
			tc := junitCase{Class: "surge.judge", Name: m.GetGroup() + " " + m.GetMetric(), Time: "0"}
			if m.GetClass() != "pass" {
				tc.Failure = &junitFailure{Type: m.GetClass(), Message: m.GetClass(), Text: m.GetReason()}
			}
			suite.Cases = append(suite.Cases, tc)
		}
		return suite.encode()
	}
	for _, m := range c.GetMetrics() {
		if m.GetWindow() {
			continue
		}
		tc := junitCase{Class: "surge.compare", Name: m.GetGroup() + " " + m.GetMetric(), Time: "0"}
		if m.GetDiverged() {
			tc.Failure = &junitFailure{Type: "diverged", Message: "diverged " + percent(m.GetRelDiff()),
				Text: fmt.Sprintf("A %s, B %s: %s beyond %.0f%%", metricValue(m.GetMetric(), m.GetA(), m.GetAPresent()),
					metricValue(m.GetMetric(), m.GetB(), m.GetBPresent()), percent(m.GetRelDiff()), 100*c.GetTolerance())}
		}
		suite.Cases = append(suite.Cases, tc)
	}
	return suite.encode()
}

// encode counts the suite's cases and failures and writes the report.
func (suite junitSuite) encode() ([]byte, error) {
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
