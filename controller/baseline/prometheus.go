// Package baseline reads production's own figures for `surge compare`:
// per endpoint p50/p95/p99, error rate and rate over a time range, as the
// rows compare takes. Compare does not know where they came from.
package baseline

import (
	"context"
	"fmt"
	"maps"
	"math"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"

	"go.yaml.in/yaml/v3"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
	"github.com/surgeload/surge/internal/promapi"
)

// Queries say how to read a service's figures from Prometheus: PromQL
// templates evaluated once, at the range's end, over the whole range. A
// template sees .Q (the quantile, for Quantile), .Range ("3600s"), .By
// ("by (LABEL)" per endpoint, "" for the whole service), .ByLe (the same
// with le, for classic buckets: "by (LABEL, le)", "by (le)") and .Match (the
// extra label matchers given, such as job="api", or "").
type Queries struct {
	// Label is the label that names an endpoint (http_route).
	Label     string `yaml:"label"`
	Quantile  string `yaml:"quantile"`
	ErrorRate string `yaml:"error_rate"`
	// Rate is requests per second.
	Rate string `yaml:"rate"`
	// Endpoints maps a label value to the run's request name; values not
	// listed are matched as they are.
	Endpoints map[string]string `yaml:"endpoints"`
}

// otelQueries read OpenTelemetry's http.server.request.duration as
// exported to Prometheus (classic buckets, or a native histogram).
var otelQueries = Queries{
	Label: "http_route",
	Quantile: `histogram_quantile({{.Q}}, sum {{.ByLe}} (rate(http_server_request_duration_seconds_bucket{{if .Match}}{ {{- .Match}}}{{end}}[{{.Range}}]))` +
		` or sum {{.By}} (rate(http_server_request_duration_seconds{{if .Match}}{ {{- .Match}}}{{end}}[{{.Range}}])))`,
	ErrorRate: `sum {{.By}} (rate(http_server_request_duration_seconds_count{http_response_status_code=~"5.."{{if .Match}},{{.Match}}{{end}}}[{{.Range}}]))` +
		` / sum {{.By}} (rate(http_server_request_duration_seconds_count{{if .Match}}{ {{- .Match}}}{{end}}[{{.Range}}]))`,
	Rate: `sum {{.By}} (rate(http_server_request_duration_seconds_count{{if .Match}}{ {{- .Match}}}{{end}}[{{.Range}}]))`,
}

// classicQueries read the client libraries' classic
// http_request_duration_seconds histogram (label handler, status code).
var classicQueries = Queries{
	Label:    "handler",
	Quantile: `histogram_quantile({{.Q}}, sum {{.ByLe}} (rate(http_request_duration_seconds_bucket{{if .Match}}{ {{- .Match}}}{{end}}[{{.Range}}])))`,
	ErrorRate: `sum {{.By}} (rate(http_request_duration_seconds_count{code=~"5.."{{if .Match}},{{.Match}}{{end}}}[{{.Range}}]))` +
		` / sum {{.By}} (rate(http_request_duration_seconds_count{{if .Match}}{ {{- .Match}}}{{end}}[{{.Range}}]))`,
	Rate: `sum {{.By}} (rate(http_request_duration_seconds_count{{if .Match}}{ {{- .Match}}}{{end}}[{{.Range}}]))`,
}

// LoadQueries returns the built-in set "otel" or "classic", or the set in
// a YAML file (keys label, quantile, error_rate, rate, endpoints).
func LoadQueries(name string) (Queries, error) {
	switch name {
	case "", "otel":
		return otelQueries, nil
	case "classic":
		return classicQueries, nil
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return Queries{}, fmt.Errorf("baseline queries: %w (or name a built-in set: otel, classic)", err)
	}
	var q Queries
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&q); err != nil {
		return Queries{}, fmt.Errorf("baseline queries %s: %w", name, err)
	}
	for key, v := range map[string]string{"label": q.Label, "quantile": q.Quantile, "error_rate": q.ErrorRate, "rate": q.Rate} {
		if v == "" {
			return Queries{}, fmt.Errorf("baseline queries %s: %s is required", name, key)
		}
	}
	return q, nil
}

// Prometheus reads a baseline from a Prometheus HTTP API.
type Prometheus struct {
	URL      string
	From, To time.Time
	Queries  Queries
	// Match holds extra label matchers for every query (job="api").
	Match  string
	Client *http.Client
}

// Rows returns one row per endpoint the rate query names, and "all" for
// the whole service. A query that fails or returns nothing, and an
// endpoint that one query has and another lacks, are errors naming them;
// an endpoint with no failed requests has no error series and an error
// rate of 0.
func (p *Prometheus) Rows(ctx context.Context) ([]*surgev1.BaselineRow, error) {
	if !p.To.After(p.From) {
		return nil, fmt.Errorf("prometheus baseline: the range %s to %s is empty", p.From.Format(time.RFC3339), p.To.Format(time.RFC3339))
	}
	byEndpoint := map[string]*surgev1.BaselineRow{}
	for _, by := range []string{p.Queries.Label, ""} {
		rates, err := p.query(ctx, "rate", p.Queries.Rate, by, "")
		if err != nil {
			return nil, err
		}
		if len(rates) == 0 {
			return nil, fmt.Errorf("prometheus baseline: the rate query returned no series over %s to %s: %s",
				p.From.Format(time.RFC3339), p.To.Format(time.RFC3339), p.render(p.Queries.Rate, by, ""))
		}
		errs, err := p.query(ctx, "error_rate", p.Queries.ErrorRate, by, "")
		if err != nil {
			return nil, err
		}
		for ep, rate := range rates {
			byEndpoint[ep] = &surgev1.BaselineRow{Endpoint: ep, Rpm: rate * 60, ErrorRate: errs[ep]}
		}
		for _, q := range []struct {
			q   string
			dst func(*surgev1.BaselineRow) *float64
		}{{"0.5", func(r *surgev1.BaselineRow) *float64 { return &r.P50Ms }},
			{"0.95", func(r *surgev1.BaselineRow) *float64 { return &r.P95Ms }},
			{"0.99", func(r *surgev1.BaselineRow) *float64 { return &r.P99Ms }}} {
			vals, err := p.query(ctx, "quantile "+q.q, p.Queries.Quantile, by, q.q)
			if err != nil {
				return nil, err
			}
			for _, ep := range slices.Sorted(maps.Keys(rates)) { // the first missing one, always the same
				v, ok := vals[ep]
				if !ok {
					return nil, fmt.Errorf("prometheus baseline: endpoint %q has a rate but no %s quantile: %s", ep, q.q, p.render(p.Queries.Quantile, by, q.q))
				}
				*q.dst(byEndpoint[ep]) = v * 1000
			}
		}
	}
	rows := make([]*surgev1.BaselineRow, 0, len(byEndpoint))
	for ep, row := range byEndpoint {
		if name, ok := p.Queries.Endpoints[ep]; ok {
			row.Endpoint = name
		}
		rows = append(rows, row)
	}
	slices.SortFunc(rows, func(a, b *surgev1.BaselineRow) int { return strings.Compare(a.Endpoint, b.Endpoint) })
	return rows, nil
}

// render expands a query template; by is the endpoint label, or "" for
// the whole service.
func (p *Prometheus) render(tmpl, by, q string) string {
	t, err := template.New("q").Parse(tmpl)
	if err != nil {
		return tmpl
	}
	var sb strings.Builder
	rng := strconv.FormatInt(int64(math.Round(p.To.Sub(p.From).Seconds())), 10) + "s"
	vars := map[string]string{"Q": q, "Range": rng, "Match": p.Match, "By": "", "ByLe": "by (le)"}
	if by != "" {
		vars["By"], vars["ByLe"] = "by ("+by+")", "by ("+by+", le)"
	}
	if err := t.Execute(&sb, vars); err != nil {
		return tmpl
	}
	return sb.String()
}

// query runs one instant query at the range's end and returns its values
// by endpoint ("all" for a result without the label); NaN values (a
// quantile of nothing) are left out.
func (p *Prometheus) query(ctx context.Context, what, tmpl, by, q string) (map[string]float64, error) {
	if _, err := template.New("q").Parse(tmpl); err != nil {
		return nil, fmt.Errorf("prometheus baseline: %s query template: %w", what, err)
	}
	expr := p.render(tmpl, by, q)
	api := promapi.Client{URL: p.URL, HTTP: p.Client}
	samples, err := api.Query(ctx, expr, p.To)
	if err != nil {
		return nil, fmt.Errorf("prometheus baseline: %s query %s: %w", what, expr, err)
	}
	vals := map[string]float64{}
	for _, s := range samples {
		if math.IsNaN(s.Value) || math.IsInf(s.Value, 0) {
			continue
		}
		ep := s.Metric[p.Queries.Label]
		if by == "" {
			ep = "all"
		}
		vals[ep] = s.Value
	}
	return vals, nil
}
