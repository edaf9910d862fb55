package plan

import (
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseThresholdExpr(t *testing.T) {
	for _, c := range []struct {
		expr    string
		agg     string
		pc      float64
		op      string
		value   float64
		wantErr string
	}{
		{expr: "p(95)<500", agg: "p", pc: 95, op: "<", value: 500},
		{expr: " p( 99.9 ) <= 1.5e3 ", agg: "p", pc: 99.9, op: "<=", value: 1500},
		{expr: "avg>=10", agg: "avg", op: ">=", value: 10},
		{expr: "rate<0.05", agg: "rate", op: "<", value: 0.05},
		{expr: "count==0", agg: "count", op: "==", value: 0},
		{expr: "count != 3", agg: "count", op: "!=", value: 3},
		{expr: "min > -1", agg: "min", op: ">", value: -1},
		{expr: "med<1", agg: "med", op: "<", value: 1},
		{expr: "p(101)<1", wantErr: "percentile"},
		{expr: "p95<1", wantErr: "unknown aggregation"},
		{expr: "avg 5", wantErr: "no comparison operator"},
		{expr: "avg<", wantErr: "not a finite number"},
		{expr: "avg<NaN", wantErr: "not a finite number"},
		{expr: "sum<1", wantErr: "unknown aggregation"},
	} {
		spec, err := parseThresholdExpr(c.expr)
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("%q: err = %v, want %q", c.expr, err, c.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", c.expr, err)
			continue
		}
		if spec.Agg != c.agg || spec.Percentile != c.pc || spec.Op != c.op || spec.Value != c.value {
			t.Errorf("%q = %+v", c.expr, spec)
		}
	}
}

func TestParseMetricKey(t *testing.T) {
	for _, c := range []struct {
		key     string
		metric  string
		tags    map[string]string
		wantErr string
	}{
		{key: "http_reqs", metric: "http_reqs"},
		{key: "http_req_duration{scenario:x, region:us-east ,request:GET http://h:80/a}", metric: "http_req_duration",
			tags: map[string]string{"scenario": "x", "region": "us-east", "request": "GET http://h:80/a"}},
		{key: "http_reqs{status:503}", metric: "http_reqs", tags: map[string]string{"status": "503"}},
		{key: "http_reqs{status:abc}", wantErr: "invalid status"},
		{key: "vus", wantErr: "unknown metric"},
		{key: "http_reqs{}", wantErr: "empty tag filter"},
		{key: "http_reqs{scenario}", wantErr: "want tag:value"},
		{key: "http_reqs{method:GET}", wantErr: "unknown tag"},
		{key: "http_reqs{scenario:a,scenario:b}", wantErr: "given twice"},
		{key: "http reqs", wantErr: "invalid metric"},
	} {
		m, tags, err := parseMetricKey(c.key)
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("%q: err = %v, want %q", c.key, err, c.wantErr)
			}
			continue
		}
		if err != nil || m != c.metric || !reflect.DeepEqual(tags, c.tags) {
			t.Errorf("%q = %q %v %v", c.key, m, tags, err)
		}
	}
}

func TestHolds(t *testing.T) {
	for _, c := range []struct {
		op   string
		v    float64
		want bool
	}{
		{"<", 499, true}, {"<", 500, false}, {"<=", 500, true}, {">", 500, false}, {">", 501, true},
		{">=", 500, true}, {"==", 500, true}, {"!=", 500, false}, {"!=", 1, true}, {"<", math.NaN(), false},
	} {
		if got := (ThresholdSpec{Op: c.op, Value: 500}).Holds(c.v); got != c.want {
			t.Errorf("%v %s 500 = %v, want %v", c.v, c.op, got, c.want)
		}
	}
}

func TestThresholdSpecs(t *testing.T) {
	src := `
scenarios:
  s:
    executor: constant-vus
    vus: 1
    duration: 1s
    requests: [{url: "http://h/"}]
thresholds:
  http_req_failed: ["rate<0.05"]
  http_req_duration: ["p(95)<500", {threshold: "max<900", abort_on_fail: true, delay_abort_eval: 5s}]
  http_req_duration{scenario:s}: ["avg<100"]
`
	p, err := Parse("t.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	specs, err := p.ThresholdSpecs()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range specs {
		got = append(got, s.Key+" "+s.Expr)
	}
	want := []string{"http_req_duration p(95)<500", "http_req_duration max<900", "http_req_duration{scenario:s} avg<100", "http_req_failed rate<0.05"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("specs = %q, want %q", got, want)
	}
	if !specs[1].AbortOnFail || specs[1].DelayAbortEval != 5*time.Second || specs[1].Metric != "http_req_duration" {
		t.Errorf("mapping threshold = %+v", specs[1])
	}
	if specs[2].Tags["scenario"] != "s" {
		t.Errorf("tags = %v", specs[2].Tags)
	}
}
