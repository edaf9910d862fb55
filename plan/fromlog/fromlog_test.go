package fromlog_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/surgeload/surge/plan"
	"github.com/surgeload/surge/plan/fromlog"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Minutes is the per-minute request count of the generated log: steady,
// a spike in minute 3, steady again.
var minutes = []int{600, 620, 1800, 640, 600, 580}

// mix is the generated log's endpoint mix.
var mix = []struct {
	method, template string
	share            float64
	path             func(r *rand.Rand) string
}{
	{"GET", "/api/users/{id}", 0.5, func(r *rand.Rand) string { return fmt.Sprintf("/api/users/%d", r.IntN(100000)) }},
	{"GET", "/api/items", 0.3, func(*rand.Rand) string { return "/api/items?page=2" }},
	{"POST", "/api/orders/{id}/pay", 0.2, func(r *rand.Rand) string {
		return fmt.Sprintf("/api/orders/%08x-%04x-4%03x-8%03x-%012x/pay", r.Uint32(), r.IntN(1<<16), r.IntN(1<<12), r.IntN(1<<12), r.Int64N(1<<48))
	}},
}

// GenerateLog writes a combined-format log with the curve of minutes and
// the endpoint mix (each minute's count split by share exactly), plus one
// malformed line at line 5.
func GenerateLog(t0 time.Time, counts []int, seed uint64) (string, map[string][]int) {
	r := rand.New(rand.NewPCG(seed, 1))
	var b strings.Builder
	want := map[string][]int{}
	line := 0
	for m, total := range counts {
		assigned := 0
		for i, e := range mix {
			n := int(math.Round(float64(total) * e.share))
			if i == len(mix)-1 {
				n = total - assigned
			}
			assigned += n
			key := e.method + " " + e.template
			if want[key] == nil {
				want[key] = make([]int, len(counts))
			}
			want[key][m] += n
			for range n {
				ts := t0.Add(time.Duration(m)*time.Minute + time.Duration(r.Int64N(int64(time.Minute))))
				fmt.Fprintf(&b, "10.0.0.%d - - [%s] \"%s %s HTTP/1.1\" 200 512 \"-\" \"curl/8\" 0.%03d\n",
					r.IntN(250), ts.Format("02/Jan/2006:15:04:05 -0700"), e.method, e.path(r), r.IntN(900))
				line++
				if line == 4 {
					b.WriteString("this line is not an access log line\n")
				}
			}
		}
	}
	return b.String(), want
}

func TestTemplate(t *testing.T) {
	for in, want := range map[string]string{
		"/api/users/42":                           "/api/users/{id}",
		"/api/users/42/orders/7":                  "/api/users/{id}/orders/{id}",
		"/o/3f2504e0-4f89-11d3-9a0c-0305e82c3301": "/o/{id}",
		"/blob/0123456789abcdef0123":              "/blob/{id}",
		"/api/items":                              "/api/items",
		"/v2/deadbeefdeadbeefdeadbeef/x":          "/v2/deadbeefdeadbeefdeadbeef/x", // no digit: a word
		"/static/app.js":                          "/static/app.js",
		"/users/abc":                              "/users/abc",
		"/":                                       "/",
	} {
		if got := fromlog.Template(in); got != want {
			t.Errorf("Template(%q) = %q, want %q", in, got, want)
		}
	}
}

// The derived plan's schedule reproduces each minute's rate (within 5%;
// in fact to rounding) and the endpoint mix (within 2%), scaled; the plan
// validates; the malformed line is reported with its number.
func TestPlanReproducesRateCurveAndMix(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	log, want := GenerateLog(t0, minutes, 7)
	recs, bad, err := fromlog.Read(strings.NewReader(log), fromlog.FormatCombined)
	if err != nil {
		t.Fatal(err)
	}
	if len(bad) != 1 || bad[0].Line != 5 {
		t.Fatalf("malformed %v, want exactly line 5", bad)
	}
	prof, err := fromlog.Analyze(recs, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(prof.PerWindow) != len(minutes) || prof.PeakWindow != 2 {
		t.Fatalf("profile: %d windows, peak %d", len(prof.PerWindow), prof.PeakWindow)
	}
	wantPTM := 1800 / (float64(sum(minutes)) / float64(len(minutes)))
	if math.Abs(prof.PeakToMean-wantPTM) > 1e-9 {
		t.Errorf("peak-to-mean %.3f, want %.3f", prof.PeakToMean, wantPTM)
	}
	const scale = 0.1
	src, err := prof.Plan(fromlog.Options{Window: time.Minute, Scale: scale, Regions: map[string]float64{"us-east": 0.5, "eu-west": 0.5}})
	if err != nil {
		t.Fatal(err)
	}
	p, err := plan.Parse("derived.yaml", src)
	if err != nil {
		t.Fatalf("derived plan invalid: %v\n%s", err, src)
	}
	if len(p.Scenarios) != len(mix) {
		t.Fatalf("%d scenarios, want %d", len(p.Scenarios), len(mix))
	}
	var worstRate, worstMix float64
	var planTotal float64
	byEndpoint := map[string]float64{}
	for m, count := range minutes {
		var got float64
		for _, sc := range p.Scenarios {
			from, to := time.Duration(m)*time.Minute, time.Duration(m+1)*time.Minute
			n := sc.Cumulative(to) - sc.Cumulative(from)
			got += n
			byEndpoint[sc.Requests[0].Name] += n
			wantN := float64(want[sc.Requests[0].Name][m]) * scale
			if rel := math.Abs(n-wantN) / wantN; rel > 0.05 {
				t.Errorf("minute %d %s: plan %.2f arrivals, log×scale %.2f", m, sc.Requests[0].Name, n, wantN)
			}
		}
		planTotal += got
		rel := math.Abs(got-float64(count)*scale) / (float64(count) * scale)
		worstRate = max(worstRate, rel)
		if rel > 0.05 {
			t.Errorf("minute %d: plan %.2f arrivals, log %d × %v = %.1f", m, got, count, scale, float64(count)*scale)
		}
	}
	for _, e := range mix {
		name := e.method + " " + e.template
		share := byEndpoint[name] / planTotal
		worstMix = max(worstMix, math.Abs(share-e.share))
		if math.Abs(share-e.share) > 0.02 {
			t.Errorf("%s: plan share %.4f, log %.2f", name, share, e.share)
		}
	}
	t.Logf("measured: worst per-minute rate error %.4f%%, worst mix error %.4f pp, peak-to-mean %.2f, inter-arrival CV %.2f",
		worstRate*100, worstMix*100, prof.PeakToMean, prof.InterArrivalCV)
}

func TestReadFormats(t *testing.T) {
	csvLog := "timestamp,method,path,status,duration\n" +
		"2026-03-01T12:00:00.5Z,GET,/a/1,200,12ms\n" +
		"2026-03-01T12:00:01Z,POST,/b,503,7.5\n" +
		"not-a-time,GET,/c,200,1ms\n" +
		"2026-03-01T12:00:02Z,GET,/c,xx,1ms\n"
	recs, bad, err := fromlog.Read(strings.NewReader(csvLog), fromlog.FormatCSV)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || len(bad) != 2 || bad[0].Line != 4 || bad[1].Line != 5 {
		t.Fatalf("csv: %d records, malformed %v", len(recs), bad)
	}
	if recs[0].Duration != 12*time.Millisecond || recs[1].Duration != 7500*time.Microsecond || recs[1].Status != 503 {
		t.Errorf("csv records %+v", recs)
	}
	jsonLog := `{"time":"2026-03-01T12:00:00Z","method":"GET","path":"/x/9?q=1","status":200,"duration_ms":3}
{"ts":1772366401.25,"request":"DELETE /x/10 HTTP/1.1","status":"204"}
{"time":"2026-03-01T12:00:02Z","method":"GET"}
{broken
`
	recs, bad, err = fromlog.Read(strings.NewReader(jsonLog), fromlog.FormatJSON)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || len(bad) != 2 || bad[0].Line != 3 || bad[1].Line != 4 {
		t.Fatalf("json: %d records, malformed %v", len(recs), bad)
	}
	if recs[0].Path != "/x/9" || recs[1].Method != "DELETE" || recs[1].Status != 204 || recs[0].Duration != 3*time.Millisecond {
		t.Errorf("json records %+v", recs)
	}
}

func sum(xs []int) int {
	var s int
	for _, x := range xs {
		s += x
	}
	return s
}
