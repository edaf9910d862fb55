package main

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/surgeload/surge/controller/baseline"
)

// promBaseline are compare's --baseline-prometheus flags.
type promBaseline struct {
	url, queries, match, from, to string
	last                          time.Duration
}

func promBaselineFlags(cmd *cobra.Command, o *promBaseline) {
	f := cmd.Flags()
	f.StringVar(&o.url, "baseline-prometheus", "", "read production's figures from the Prometheus at `URL` (e.g. http://prometheus:9090) instead of RUN_A")
	f.StringVar(&o.queries, "baseline-queries", "otel", "query set: otel, classic, or a YAML `FILE` of PromQL templates")
	f.StringVar(&o.match, "baseline-match", "", "extra label `MATCHERS` for every baseline query, e.g. job=\"api\",env=\"prod\"")
	f.DurationVar(&o.last, "last", 0, "the baseline's range: the last `DURATION` (e.g. 1h)")
	f.StringVar(&o.from, "from", "", "the baseline range's start, RFC 3339 (with --to)")
	f.StringVar(&o.to, "to", "", "the baseline range's end, RFC 3339 (with --from)")
}

// reader is the Prometheus baseline the flags describe.
func (o promBaseline) reader() (*baseline.Prometheus, error) {
	var from, to time.Time
	switch {
	case o.last > 0 && (o.from != "" || o.to != ""):
		return nil, usageErrorf("give --last or --from/--to, not both")
	case o.last > 0:
		to = time.Now()
		from = to.Add(-o.last)
	case o.from != "" && o.to != "":
		var err error
		if from, err = time.Parse(time.RFC3339, o.from); err != nil {
			return nil, usageErrorf("--from %q: want RFC 3339, e.g. 2026-12-07T10:00:00Z", o.from)
		}
		if to, err = time.Parse(time.RFC3339, o.to); err != nil {
			return nil, usageErrorf("--to %q: want RFC 3339, e.g. 2026-12-07T11:00:00Z", o.to)
		}
	default:
		return nil, usageErrorf("--baseline-prometheus needs a range: --last 1h, or --from T --to T")
	}
	q, err := baseline.LoadQueries(o.queries)
	if err != nil {
		return nil, withExitCode(exitUsage, err)
	}
	return &baseline.Prometheus{URL: o.url, From: from, To: to, Queries: q, Match: o.match}, nil
}
