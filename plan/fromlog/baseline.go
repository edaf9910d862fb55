package fromlog

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"time"
)

// BaselineHeader is the header of the CSV WriteBaseline writes, the one
// `surge compare --baseline` reads.
var BaselineHeader = []string{"endpoint", "p50", "p95", "p99", "error_rate", "rpm"}

// ErrNoDurations is WriteBaseline's error for a log without response times.
var ErrNoDurations = errors.New("the log has no response times: a baseline needs nginx's $request_time " +
	"at the end of a combined line, duration_ms or request_time in JSON lines, or the CSV's duration column")

// WriteBaseline writes the log's own figures as a baseline CSV for `surge
// compare --baseline`: one row for the whole log ("all") and one per
// endpoint, named as the derived plan names its request. Latencies are the
// logged response times' percentiles (nearest rank) in milliseconds,
// error_rate the share of responses of 400 and above, and rpm the rate the
// derived plan sends (the log's times Scale and Speedup), so a run of the
// plan compares rate for rate. Endpoints without response times are left
// out and returned; a log without any is ErrNoDurations.
func (p *Profile) WriteBaseline(w io.Writer, opts Options) (skipped []string, err error) {
	opts, err = opts.normalized()
	if err != nil {
		return nil, err
	}
	unit := time.Duration(float64(p.Window) / opts.Speedup)
	minutes := float64(len(p.PerWindow)) * unit.Minutes()
	all := &Endpoint{}
	var rows [][]string
	for _, e := range p.Endpoints {
		all.Count += e.Count
		all.Failures += e.Failures
		all.Durations = append(all.Durations, e.Durations...)
		if len(e.Durations) == 0 {
			skipped = append(skipped, e.Name())
			continue
		}
		rows = append(rows, baselineRow(e.Name(), e, opts.Scale, minutes))
	}
	if len(all.Durations) == 0 {
		return skipped, ErrNoDurations
	}
	cw := csv.NewWriter(w)
	if err := cw.Write(BaselineHeader); err != nil {
		return skipped, fmt.Errorf("write baseline: %w", err)
	}
	if err := cw.Write(baselineRow("all", all, opts.Scale, minutes)); err != nil {
		return skipped, fmt.Errorf("write baseline: %w", err)
	}
	if err := cw.WriteAll(rows); err != nil {
		return skipped, fmt.Errorf("write baseline: %w", err)
	}
	return skipped, nil
}

// baselineRow is one CSV row of e's figures over a run of minutes.
func baselineRow(name string, e *Endpoint, scale, minutes float64) []string {
	d := slices.Clone(e.Durations)
	slices.Sort(d)
	ms := func(q float64) string {
		i := max(0, int(math.Ceil(q*float64(len(d))))-1)
		return strconv.FormatFloat(rounded(float64(d[i])/float64(time.Millisecond)), 'f', -1, 64)
	}
	rate := strconv.FormatFloat(math.Round(float64(e.Failures)/float64(e.Count)*1e6)/1e6, 'f', -1, 64)
	rpm := strconv.FormatFloat(rounded(float64(e.Count)*scale/minutes), 'f', -1, 64)
	return []string{name, ms(0.50), ms(0.95), ms(0.99), rate, rpm}
}
