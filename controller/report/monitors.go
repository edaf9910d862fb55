package report

import (
	surgev1 "github.com/surgeload/surge/gen/surge/v1"
)

// Monitor is one of the plan's monitors (a PromQL query against the system
// under test's Prometheus) over the run: its value at each interval's end.
type Monitor struct {
	Name  string `json:"name"`
	Query string `json:"query"`
	// Samples are the intervals with a value; Missing those whose
	// evaluation failed or gave no value (LastError says why, last).
	Samples   int64           `json:"samples"`
	Missing   int64           `json:"missing"`
	Min       float64         `json:"min"`
	Mean      float64         `json:"mean"`
	Max       float64         `json:"max"`
	Last      float64         `json:"last"`
	Values    []MonitorSample `json:"values"`
	LastError string          `json:"last_error,omitempty"`
}

// MonitorSample is a monitor's value at the end of interval Interval.
type MonitorSample struct {
	Interval int64   `json:"interval"`
	Value    float64 `json:"value"`
}

func monitorsFromProto(ms []*surgev1.MonitorSummary) []Monitor {
	out := make([]Monitor, 0, len(ms))
	for _, m := range ms {
		mo := Monitor{Name: m.GetName(), Query: m.GetQuery(), Samples: m.GetSamples(), Missing: m.GetMissing(),
			Min: m.GetMin(), Mean: m.GetMean(), Max: m.GetMax(), Last: m.GetLast(), LastError: m.GetLastError(),
			Values: make([]MonitorSample, 0, len(m.GetValues()))}
		for _, v := range m.GetValues() {
			mo.Values = append(mo.Values, MonitorSample{Interval: v.GetInterval(), Value: v.GetValue()})
		}
		out = append(out, mo)
	}
	return out
}

// monitorsText writes each monitor's min, mean, max and last value.
func monitorsText(p *printer, list []Monitor) {
	if len(list) == 0 {
		return
	}
	p.printf("\n")
	tw := p.table()
	tw.printf("MONITOR\tSAMPLES\tMISSING\tMIN\tMEAN\tMAX\tLAST\tQUERY\n")
	for _, m := range list {
		if m.Samples == 0 {
			tw.printf("%s\t0\t%d\t-\t-\t-\t-\t%s\n", m.Name, m.Missing, m.Query)
			continue
		}
		tw.printf("%s\t%d\t%d\t%.4g\t%.4g\t%.4g\t%.4g\t%s\n", m.Name, m.Samples, m.Missing, m.Min, m.Mean, m.Max, m.Last, m.Query)
	}
	tw.flush()
}
