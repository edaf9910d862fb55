package promapi

import (
	"context"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestQuery: vectors and scalars decode, the query, time and headers reach
// the server, a refused query is a bad query, and an answer that is not
// the API's JSON is an error naming the server.
func TestQuery(t *testing.T) {
	answers := map[string]string{
		"vec":    `{"status":"success","data":{"resultType":"vector","result":[{"metric":{"job":"a"},"value":[1,"1.5"]},{"metric":{},"value":[1,"NaN"]}]}}`,
		"scalar": `{"status":"success","data":{"resultType":"scalar","result":[1,"+Inf"]}}`,
		"matrix": `{"status":"success","data":{"resultType":"matrix","result":[]}}`,
		"bad(":   `{"status":"error","errorType":"bad_data","error":"1:5: parse error: unclosed left parenthesis"}`,
		"slow":   `{"status":"error","errorType":"timeout","error":"query timed out"}`,
	}
	var gotTime, gotAuth string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/prom/api/v1/query" || r.Method != http.MethodPost {
			http.NotFound(w, r)
			return
		}
		gotTime, gotAuth = r.FormValue("time"), r.Header.Get("Authorization")
		a, ok := answers[r.FormValue("query")]
		if !ok {
			_, _ = w.Write([]byte("<html>not prometheus</html>"))
			return
		}
		if strings.Contains(a, `"error"`) {
			w.WriteHeader(http.StatusBadRequest)
		}
		_, _ = w.Write([]byte(a))
	}))
	defer srv.Close()
	c := &Client{URL: srv.URL + "/prom/", Header: http.Header{"Authorization": {"Bearer t"}}}
	ctx := context.Background()
	at := time.UnixMilli(1767225600123)

	s, err := c.Query(ctx, "vec", at)
	if err != nil || len(s) != 2 || s[0].Value != 1.5 || s[0].Metric["job"] != "a" || !math.IsNaN(s[1].Value) {
		t.Errorf("vector: %v, %v", s, err)
	}
	if gotTime != "1767225600.123" || gotAuth != "Bearer t" {
		t.Errorf("time %q, authorization %q", gotTime, gotAuth)
	}
	if s, err := c.Query(ctx, "scalar", at); err != nil || len(s) != 1 || !math.IsInf(s[0].Value, 1) || s[0].Metric != nil {
		t.Errorf("scalar: %v, %v", s, err)
	}
	if _, err := c.Query(ctx, "matrix", at); err == nil || !strings.Contains(err.Error(), "matrix") {
		t.Errorf("matrix: %v", err)
	}
	if _, err := c.Query(ctx, "bad(", at); !IsBadQuery(err) || !strings.Contains(err.Error(), "unclosed left parenthesis") {
		t.Errorf("syntax error: %v, want a bad query", err)
	}
	if _, err := c.Query(ctx, "slow", at); err == nil || IsBadQuery(err) {
		t.Errorf("timeout: %v, want an error that is not a bad query", err)
	}
	if _, err := c.Query(ctx, "other", at); err == nil || !strings.Contains(err.Error(), srv.URL) {
		t.Errorf("not the API: %v, want the server named", err)
	}
}
