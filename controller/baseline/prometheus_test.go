package baseline

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeProm answers every query with body, and records the queries.
func fakeProm(t *testing.T, answer func(q string) string) (string, *[]string) {
	var qs []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.FormValue("query")
		qs = append(qs, q)
		_, _ = w.Write([]byte(answer(q)))
	}))
	t.Cleanup(srv.Close)
	return srv.URL, &qs
}

const vector = `{"status":"success","data":{"resultType":"vector","result":[%s]}}`

func sample(route, v string) string {
	if route == "" {
		return `{"metric":{},"value":[1,"` + v + `"]}`
	}
	return `{"metric":{"http_route":"` + route + `"},"value":[1,"` + v + `"]}`
}

func TestPrometheusRows(t *testing.T) {
	url, qs := fakeProm(t, func(q string) string {
		by := strings.Contains(q, "by (http_route")
		one := func(v string) string {
			if by {
				return strings.Replace(vector, "%s", sample("/a", v), 1)
			}
			return strings.Replace(vector, "%s", sample("", v), 1)
		}
		switch {
		case strings.HasPrefix(q, "histogram_quantile(0.99"):
			return one("0.05")
		case strings.HasPrefix(q, "histogram_quantile"):
			return one("0.02")
		case strings.Contains(q, `=~"5.."`):
			return strings.Replace(vector, "%s", "", 1) // no failures
		}
		return one("10")
	})
	to := time.Unix(1_800_000_000, 0)
	p := &Prometheus{URL: url, From: to.Add(-time.Hour), To: to, Queries: otelQueries, Match: `job="api"`}
	rows, err := p.Rows(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0].Endpoint != "/a" || rows[1].Endpoint != "all" {
		t.Fatalf("rows %v", rows)
	}
	if r := rows[0]; r.P50Ms != 20 || r.P99Ms != 50 || r.Rpm != 600 || r.ErrorRate != 0 {
		t.Errorf("row %v, want p50 20 ms, p99 50 ms, 600 rpm, error rate 0", r)
	}
	for _, q := range *qs {
		if !strings.Contains(q, "[3600s]") || !strings.Contains(q, `job="api"`) || strings.Contains(q, "<no value>") {
			t.Errorf("query %q lacks the range or the matchers", q)
		}
	}
}

func TestPrometheusRowsErrors(t *testing.T) {
	to := time.Unix(1_800_000_000, 0)
	empty, _ := fakeProm(t, func(string) string { return strings.Replace(vector, "%s", "", 1) })
	bad, _ := fakeProm(t, func(string) string {
		return `{"status":"error","errorType":"bad_data","error":"parse error at char 5"}`
	})
	noQuantile, _ := fakeProm(t, func(q string) string {
		route := ""
		if strings.Contains(q, "by (http_route") {
			route = "/a"
		}
		if strings.HasPrefix(q, "histogram_quantile") {
			return strings.Replace(vector, "%s", sample(route, "NaN"), 1)
		}
		return strings.Replace(vector, "%s", sample(route, "1"), 1)
	})
	for _, tc := range []struct{ url, want string }{
		{empty, "the rate query returned no series"},
		{bad, "bad_data: parse error at char 5"},
		{noQuantile, `endpoint "/a" has a rate but no 0.5 quantile`},
		{"http://127.0.0.1:1", "rate query"},
	} {
		p := &Prometheus{URL: tc.url, From: to.Add(-time.Hour), To: to, Queries: otelQueries}
		if _, err := p.Rows(context.Background()); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.url, err, tc.want)
		}
	}
	file := filepath.Join(t.TempDir(), "q.yaml")
	_ = os.WriteFile(file, []byte("label: route\nquantile: x\nrate: y\nbogus: 1\n"), 0o644)
	if _, err := LoadQueries(file); err == nil || !strings.Contains(err.Error(), "bogus") {
		t.Errorf("a query file with an unknown key: %v", err)
	}
	if _, err := LoadQueries("nope"); err == nil || !strings.Contains(err.Error(), "otel, classic") {
		t.Errorf("an unknown set: %v", err)
	}
}
