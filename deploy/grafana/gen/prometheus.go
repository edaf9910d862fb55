package main

//lint:file-ignore SA1019 the v1 dashboard model, as main.go says

import (
	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// PromDatasourceUID is the provisioned Prometheus datasource's uid: the
// receiver of the controller's remote write (docs/prometheus.md).
const PromDatasourceUID = "surge-prometheus"

func promDS() common.DataSourceRef {
	return common.DataSourceRef{Type: cog.ToPtr("prometheus"), Uid: cog.ToPtr(PromDatasourceUID)}
}

// pq is a PromQL range query of panel ref with a legend.
func pq(ref, legend, expr string) cog.Builder[variants.Dataquery] {
	return prometheus.NewDataqueryBuilder().RefId(ref).Datasource(promDS()).Expr(expr).LegendFormat(legend).Range()
}

func promPanel(title, unit string, w, h uint32, targets ...cog.Builder[variants.Dataquery]) *timeseries.PanelBuilder {
	return panelOn(promDS(), title, unit, w, h, targets...)
}

func promVar(name, label, query string, includeAll bool) *dashboard.QueryVariableBuilder {
	return varOn(promDS(), name, label, query, includeAll)
}

// PromSelector selects the dashboard's run and regions in every query.
const PromSelector = `run_id="$run_id", region=~"$region"`

// promOverview is the run overview on the remote-written series: every
// query is PromQL over surge_http_* (docs/prometheus.md).
func promOverview() *dashboard.DashboardBuilder {
	const sel = "{" + PromSelector + "}"
	return base("surge-prometheus-overview", "surge: run overview (Prometheus)").
		WithVariable(promVar("run_id", "run", `label_values(surge_http_requests_total, run_id)`, false)).
		WithVariable(promVar("region", "region", `label_values(surge_http_requests_total{run_id="$run_id"}, region)`, true)).
		WithPanel(promPanel("Requests per second by region", "reqps", 12, 8,
			pq("A", "{{region}}", `sum by (region) (rate(surge_http_requests_total`+sel+`[$__rate_interval]))`))).
		WithPanel(promPanel("Failure ratio by region", "percentunit", 12, 8,
			pq("A", "{{region}}", `sum by (region) (rate(surge_http_request_failures_total`+sel+`[$__rate_interval])) / sum by (region) (rate(surge_http_requests_total`+sel+`[$__rate_interval]))`))).
		WithPanel(promPanel("Latency p50 / p95 / p99 (native histograms, all regions)", "s", 24, 9,
			pq("A", "p50", `histogram_quantile(0.5, sum(rate(surge_http_request_duration_seconds`+sel+`[$__rate_interval])))`),
			pq("B", "p95", `histogram_quantile(0.95, sum(rate(surge_http_request_duration_seconds`+sel+`[$__rate_interval])))`),
			pq("C", "p99", `histogram_quantile(0.99, sum(rate(surge_http_request_duration_seconds`+sel+`[$__rate_interval])))`))).
		WithPanel(promPanel("Latency p95 by region", "s", 12, 8,
			pq("A", "{{region}}", `histogram_quantile(0.95, sum by (region) (rate(surge_http_request_duration_seconds`+sel+`[$__rate_interval])))`))).
		WithPanel(promPanel("Responses by status or error class", "reqps", 12, 8,
			pq("A", "{{status}}", `sum by (status) (rate(surge_http_requests_total`+sel+`[$__rate_interval]))`))).
		WithPanel(promPanel("HTTP phases p95", "s", 12, 8,
			pq("A", "{{phase}}", `histogram_quantile(0.95, sum by (phase) (rate(surge_http_request_phase_seconds`+sel+`[$__rate_interval])))`))).
		WithPanel(promPanel("Requests per second by request", "reqps", 12, 8,
			pq("A", "{{scenario}} {{request}}", `sum by (scenario, request) (rate(surge_http_requests_total`+sel+`[$__rate_interval]))`)))
}
