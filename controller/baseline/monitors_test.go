package baseline

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestPrometheusMonitors: each monitor is read over the range as a
// subquery (count, min, avg, max, last); one with no value is left out and
// noted; one with several series is an error naming it.
func TestPrometheusMonitors(t *testing.T) {
	url, qs := fakeProm(t, func(q string) string {
		switch {
		case strings.Contains(q, "nothing"):
			return strings.Replace(vector, "%s", "", 1)
		case strings.Contains(q, "several"):
			return strings.Replace(vector, "%s", sample("/a", "1")+","+sample("/b", "2"), 1)
		}
		v := map[string]string{"count_over_time": "720", "min_over_time": "0.1", "avg_over_time": "0.4", "max_over_time": "0.9", "last_over_time": "0.5"}[q[:strings.Index(q, "(")]]
		return strings.Replace(vector, "%s", sample("", v), 1)
	})
	to := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	p := &Prometheus{URL: url, From: to.Add(-time.Hour), To: to}
	ms, notes, err := p.Monitors(context.Background(), map[string]string{"cpu": "sum(rate(cpu[1m]))", "gone": "nothing"})
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 1 || ms[0].GetName() != "cpu" || ms[0].GetSamples() != 720 || ms[0].GetMin() != 0.1 || ms[0].GetMean() != 0.4 ||
		ms[0].GetMax() != 0.9 || ms[0].GetLast() != 0.5 {
		t.Errorf("monitors %v", ms)
	}
	if len(notes) != 1 || !strings.Contains(notes[0], "monitor gone: no value") {
		t.Errorf("notes %q", notes)
	}
	if (*qs)[0] != "count_over_time((sum(rate(cpu[1m])))[3600s:5s])" {
		t.Errorf("first query %q, want an hour at 5 s steps", (*qs)[0])
	}
	if _, _, err := p.Monitors(context.Background(), map[string]string{"db": "several"}); err == nil || !strings.Contains(err.Error(), "monitor db") || !strings.Contains(err.Error(), "2 series") {
		t.Errorf("several series: %v", err)
	}
	p.From = to
	if _, _, err := p.Monitors(context.Background(), map[string]string{"cpu": "x"}); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("empty range: %v", err)
	}
}
