// Command gen writes surge's Grafana dashboards (deploy/grafana/dashboards)
// from Go with the Grafana Foundation SDK: `make dashboards` runs it and
// `make check-dashboards` proves the committed JSON matches it.
//
// Panel queries are InfluxQL against the schema in docs/influxdb.md, on the
// datasource provisioned with uid "surge-influxdb", except the Prometheus
// overview's: PromQL over the remote-written series (docs/prometheus.md),
// on uid "surge-prometheus".
package main

//lint:file-ignore SA1019 the v1 dashboard model is what Grafana's file provisioning imports on every supported Grafana (v2 needs Grafana 12 with the v2 API enabled)

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// DatasourceUID is the provisioned InfluxQL datasource's uid.
const DatasourceUID = "surge-influxdb"

func main() {
	out := flag.String("out", "deploy/grafana/dashboards", "output `DIR`")
	flag.Parse()
	if err := run(*out); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run(out string) error {
	boards := map[string]*dashboard.DashboardBuilder{
		"overview": overview(),
		"request":  request(),
		"compare":  compare(),
		// On the Prometheus remote-write receiver (prometheus.go).
		"prometheus-overview": promOverview(),
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return fmt.Errorf("output dir: %w", err)
	}
	for name, b := range boards {
		d, err := b.Build()
		if err != nil {
			return fmt.Errorf("build %s: %w", name, err)
		}
		data, err := json.MarshalIndent(d, "", "  ")
		if err != nil {
			return fmt.Errorf("encode %s: %w", name, err)
		}
		if err := os.WriteFile(filepath.Join(out, name+".json"), append(data, '\n'), 0o644); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
	return nil
}

func ds() common.DataSourceRef {
	return common.DataSourceRef{Type: cog.ToPtr("influxdb"), Uid: cog.ToPtr(DatasourceUID)}
}

// influxQuery is a raw InfluxQL target (the SDK has no InfluxDB package).
type influxQuery struct {
	RefID        string                `json:"refId"`
	Datasource   *common.DataSourceRef `json:"datasource,omitempty"`
	Query        string                `json:"query"`
	RawQuery     bool                  `json:"rawQuery"`
	ResultFormat string                `json:"resultFormat"`
	Alias        string                `json:"alias,omitempty"`
}

var _ variants.Dataquery = influxQuery{}

func (influxQuery) ImplementsDataqueryVariant()        {}
func (q influxQuery) Equals(o variants.Dataquery) bool { return reflect.DeepEqual(q, o) }
func (influxQuery) DataqueryType() string              { return "influxdb" }
func (influxQuery) Validate() error                    { return nil }

type queryBuilder struct{ q influxQuery }

func (b queryBuilder) Build() (variants.Dataquery, error) { return b.q, nil }

func q(ref, alias, query string) cog.Builder[variants.Dataquery] {
	d := ds()
	return queryBuilder{influxQuery{RefID: ref, Datasource: &d, Query: query, RawQuery: true, ResultFormat: "time_series", Alias: alias}}
}

func panel(title, unit string, w, h uint32, targets ...cog.Builder[variants.Dataquery]) *timeseries.PanelBuilder {
	return panelOn(ds(), title, unit, w, h, targets...)
}

// panelOn is a time series panel on datasource d.
func panelOn(d common.DataSourceRef, title, unit string, w, h uint32, targets ...cog.Builder[variants.Dataquery]) *timeseries.PanelBuilder {
	p := timeseries.NewPanelBuilder().Title(title).Datasource(d).Unit(unit).Span(w).Height(h)
	for _, t := range targets {
		p.WithTarget(t)
	}
	return p
}

func tagVar(name, label, query string, includeAll bool) *dashboard.QueryVariableBuilder {
	return varOn(ds(), name, label, query, includeAll)
}

// varOn is a query variable on datasource d, with "All" when includeAll.
func varOn(d common.DataSourceRef, name, label, query string, includeAll bool) *dashboard.QueryVariableBuilder {
	v := dashboard.NewQueryVariableBuilder(name).Label(label).Datasource(d).
		Query(dashboard.StringOrMap{String: cog.ToPtr(query)}).Definition(query).
		Refresh(dashboard.VariableRefreshOnTimeRangeChanged).Sort(dashboard.VariableSortAlphabeticalAsc)
	if includeAll {
		v.IncludeAll(true).AllValue(".*").Current(dashboard.VariableOption{Text: dashboard.StringOrArrayOfString{String: cog.ToPtr("All")}, Value: dashboard.StringOrArrayOfString{String: cog.ToPtr("$__all")}})
	}
	return v
}

const (
	runVarQuery    = `SHOW TAG VALUES FROM "surge_http" WITH KEY = "run"`
	regionVarQuery = `SHOW TAG VALUES FROM "surge_http" WITH KEY = "region" WHERE "run" = '$run'`
	scenarioQuery  = `SHOW TAG VALUES FROM "surge_http" WITH KEY = "scenario" WHERE "run" = '$run'`
	requestQuery   = `SHOW TAG VALUES FROM "surge_http" WITH KEY = "request" WHERE "run" = '$run' AND "scenario" =~ /^$scenario$/`
)

func runAnnotations() *dashboard.AnnotationQueryBuilder {
	return dashboard.NewAnnotationQueryBuilder().Name("run start/end").Datasource(ds()).Enable(true).IconColor("blue").
		Target(q("Anno", "", `SELECT "title", "text" FROM "surge_run" WHERE "run" = '$run' AND $timeFilter`))
}

func base(uid, title string) *dashboard.DashboardBuilder {
	return dashboard.NewDashboardBuilder(title).Uid(uid).Tags([]string{"surge"}).Editable().
		Tooltip(dashboard.DashboardCursorSyncCrosshair).Refresh("5s").Time("now-15m", "now").Timezone("browser")
}

func overview() *dashboard.DashboardBuilder {
	return base("surge-overview", "surge: run overview").
		WithVariable(tagVar("run", "run", runVarQuery, false)).
		WithVariable(tagVar("region", "region", regionVarQuery, true)).
		Annotation(runAnnotations()).
		WithPanel(panel("Rate: target vs achieved (all regions)", "reqps", 12, 8,
			q("A", "$col", `SELECT mean("target_rps") AS "target", mean("achieved_rps") AS "achieved", mean("arrival_rps") AS "arrivals" FROM "surge_interval" WHERE "run" = '$run' AND "region" = 'all' AND $timeFilter GROUP BY time($__interval) fill(none)`))).
		WithPanel(panel("Requests per second by region", "reqps", 12, 8,
			q("A", "$tag_region", `SELECT mean("rps") FROM "surge_interval" WHERE "run" = '$run' AND "region" =~ /^$region$/ AND $timeFilter GROUP BY time($__interval), "region" fill(none)`))).
		WithPanel(panel("Latency p50 / p95 / p99 by region (exact merge per interval)", "µs", 24, 9,
			q("A", "$tag_region $col", `SELECT max("p50") AS "p50", max("p95") AS "p95", max("p99") AS "p99" FROM "surge_interval" WHERE "run" = '$run' AND "region" =~ /^$region$/ AND $timeFilter GROUP BY time($__interval), "region" fill(none)`))).
		WithPanel(panel("Errors by class", "short", 12, 8,
			q("A", "$tag_status", `SELECT sum("errors") FROM "surge_http" WHERE "run" = '$run' AND "region" = 'all' AND "status" !~ /^2/ AND $timeFilter GROUP BY time($__interval), "status" fill(none)`))).
		WithPanel(panel("Active connections by region", "short", 12, 8,
			q("A", "$tag_region", `SELECT sum("c") FROM (SELECT mean("conns_open") AS "c" FROM "surge_agent" WHERE "run" = '$run' AND $timeFilter GROUP BY time($__interval), "agent", "region") GROUP BY time($__interval), "region" fill(none)`))).
		WithPanel(panel("Deficit and dropped iterations", "short", 12, 8,
			q("A", "$col", `SELECT sum("deficit") AS "deficit", sum("dropped") AS "dropped" FROM "surge_agent" WHERE "run" = '$run' AND $timeFilter GROUP BY time($__interval) fill(none)`))).
		WithPanel(panel("Agent CPU", "percent", 12, 8,
			q("A", "$tag_region/$tag_agent", `SELECT mean("cpu") FROM "surge_agent" WHERE "run" = '$run' AND $timeFilter GROUP BY time($__interval), "agent", "region" fill(none)`))).
		WithPanel(panel("Threshold verdicts (1 = pass)", "short", 24, 6,
			q("A", "$tag_metric $tag_expr", `SELECT last("ok") FROM "surge_threshold" WHERE "run" = '$run' AND $timeFilter GROUP BY time($__interval), "metric", "expr" fill(none)`))).
		WithPanel(panel("HTTP phases p95: dns, connect, tls, time to first byte (exact merge per interval)", "µs", 12, 8,
			q("A", "$tag_region $col", `SELECT max("dns_p95") AS "dns", max("connect_p95") AS "connect", max("tls_p95") AS "tls", max("ttfb_p95") AS "ttfb" FROM "surge_interval" WHERE "run" = '$run' AND "region" =~ /^$region$/ AND $timeFilter GROUP BY time($__interval), "region" fill(none)`))).
		WithPanel(panel("Retries by region", "short", 12, 8,
			q("A", "$tag_region", `SELECT sum("retries") FROM "surge_interval" WHERE "run" = '$run' AND "region" =~ /^$region$/ AND $timeFilter GROUP BY time($__interval), "region" fill(none)`))).
		WithPanel(panel("Connections opened and closed (all regions)", "short", 12, 8,
			q("A", "$col", `SELECT sum("conns_opened") AS "opened", sum("conns_closed") AS "closed" FROM "surge_interval" WHERE "run" = '$run' AND "region" = 'all' AND $timeFilter GROUP BY time($__interval) fill(none)`))).
		WithPanel(panel("Connections open by scenario (all regions, at each interval's end)", "short", 12, 8,
			q("A", "$tag_scenario", `SELECT max("conns_open") FROM "surge_scenario" WHERE "run" = '$run' AND "region" = 'all' AND $timeFilter GROUP BY time($__interval), "scenario" fill(none)`))).
		WithPanel(panel("WebSocket sessions: active, opened, closed (all regions)", "short", 12, 8,
			q("A", "$tag_scenario/$tag_step $col", `SELECT max("sessions_active") AS "active", sum("sessions_opened") AS "opened", sum("sessions_closed") AS "closed" FROM "surge_ws" WHERE "run" = '$run' AND "region" = 'all' AND $timeFilter GROUP BY time($__interval), "scenario", "step" fill(none)`))).
		WithPanel(panel("WebSocket messages per second (all regions)", "short", 12, 8,
			q("A", "$tag_scenario/$tag_step $col", `SELECT mean("messages_out_rps") AS "out", mean("messages_in_rps") AS "in" FROM "surge_ws" WHERE "run" = '$run' AND "region" = 'all' AND $timeFilter GROUP BY time($__interval), "scenario", "step" fill(none)`))).
		WithPanel(panel("WebSocket message round trip p50 / p95 / p99 (exact merge per interval)", "µs", 12, 8,
			q("A", "$tag_scenario/$tag_step $col", `SELECT max("round_trip_p50") AS "p50", max("round_trip_p95") AS "p95", max("round_trip_p99") AS "p99" FROM "surge_ws" WHERE "run" = '$run' AND "region" = 'all' AND $timeFilter GROUP BY time($__interval), "scenario", "step" fill(none)`))).
		WithPanel(panel("WebSocket abnormal closes, connect failures, replies missed", "short", 12, 8,
			q("A", "$tag_scenario/$tag_step $col", `SELECT sum("abnormal_closes") AS "abnormal closes", sum("connect_failures") AS "connect failures", sum("replies_missed") AS "replies missed" FROM "surge_ws" WHERE "run" = '$run' AND "region" = 'all' AND $timeFilter GROUP BY time($__interval), "scenario", "step" fill(none)`)))
}

func request() *dashboard.DashboardBuilder {
	const where = `"run" = '$run' AND "region" =~ /^$region$/ AND "scenario" =~ /^$scenario$/ AND "request" =~ /^$request$/ AND $timeFilter`
	return base("surge-request", "surge: request drill-down").
		WithVariable(tagVar("run", "run", runVarQuery, false)).
		WithVariable(tagVar("region", "region", regionVarQuery, false)).
		WithVariable(tagVar("scenario", "scenario", scenarioQuery, true)).
		WithVariable(tagVar("request", "request", requestQuery, true)).
		Annotation(runAnnotations()).
		WithPanel(panel("Requests per second by status", "reqps", 12, 8,
			q("A", "$tag_request $tag_status", `SELECT sum("rps") FROM "surge_http" WHERE `+where+` GROUP BY time($__interval), "request", "status" fill(none)`))).
		WithPanel(panel("Errors by status", "short", 12, 8,
			q("A", "$tag_request $tag_status", `SELECT sum("errors") FROM "surge_http" WHERE `+where+` GROUP BY time($__interval), "request", "status" fill(none)`))).
		WithPanel(panel("Latency p50 / p95 / p99 / p99.9 by status", "µs", 24, 9,
			q("A", "$tag_request $tag_status $col", `SELECT max("p50") AS "p50", max("p95") AS "p95", max("p99") AS "p99", max("p999") AS "p999" FROM "surge_http" WHERE `+where+` GROUP BY time($__interval), "request", "status" fill(none)`))).
		WithPanel(panel("Latency max and mean", "µs", 24, 8,
			q("A", "$tag_request $tag_status $col", `SELECT max("max") AS "max", mean("mean") AS "mean" FROM "surge_http" WHERE `+where+` GROUP BY time($__interval), "request", "status" fill(none)`))).
		WithPanel(panel("HTTP phases p95 by status: dns, connect, tls, time to first byte", "µs", 24, 9,
			q("A", "$tag_request $tag_status $col", `SELECT max("dns_p95") AS "dns", max("connect_p95") AS "connect", max("tls_p95") AS "tls", max("ttfb_p95") AS "ttfb" FROM "surge_http" WHERE `+where+` GROUP BY time($__interval), "request", "status" fill(none)`))).
		WithPanel(panel("Retries and attempt duration p95", "short", 24, 8,
			q("A", "$tag_request $tag_status $col", `SELECT sum("retries") AS "retries", max("attempt_p95") AS "attempt p95 µs" FROM "surge_http" WHERE `+where+` GROUP BY time($__interval), "request", "status" fill(none)`)))
}

func compare() *dashboard.DashboardBuilder {
	const where = `"run" =~ /^($run|$run2)$/ AND "region" =~ /^$region$/ AND $timeFilter`
	return base("surge-compare", "surge: compare two runs (by elapsed time)").
		Description("surge_elapsed points are stamped with the time since their run started (from 1970-01-01T00:00:00Z), so two runs overlay; the axis reads as elapsed time.").
		Time("1970-01-01T00:00:00.000Z", "1970-01-01T00:15:00.000Z").Timezone("utc").Refresh("").
		WithVariable(tagVar("run", "run A", runVarQuery, false)).
		WithVariable(tagVar("run2", "run B", runVarQuery, false)).
		WithVariable(tagVar("region", "region", `SHOW TAG VALUES FROM "surge_elapsed" WITH KEY = "region" WHERE "run" = '$run'`, false)).
		WithPanel(panel("Requests per second", "reqps", 12, 8,
			q("A", "$tag_run", `SELECT mean("rps") FROM "surge_elapsed" WHERE `+where+` GROUP BY time($__interval), "run" fill(none)`))).
		WithPanel(panel("Errors per interval", "short", 12, 8,
			q("A", "$tag_run", `SELECT sum("errors") FROM "surge_elapsed" WHERE `+where+` GROUP BY time($__interval), "run" fill(none)`))).
		WithPanel(panel("Latency p50 / p95 / p99", "µs", 24, 9,
			q("A", "$tag_run $col", `SELECT max("p50") AS "p50", max("p95") AS "p95", max("p99") AS "p99" FROM "surge_elapsed" WHERE `+where+` GROUP BY time($__interval), "run" fill(none)`))).
		WithPanel(panel("Connections opened per interval and open", "short", 24, 8,
			q("A", "$tag_run $col", `SELECT sum("conns_opened") AS "opened", max("conns_open") AS "open" FROM "surge_elapsed" WHERE `+where+` GROUP BY time($__interval), "run" fill(none)`)))
}
