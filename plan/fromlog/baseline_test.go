package fromlog_test

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/surgeload/surge/plan/fromlog"
)

// timedLog is a combined log over two minutes: GET /a/N answered in
// 1..100 ms (one request per ms value, status 500 for every tenth), and
// POST /b without a request time.
func timedLog(t0 time.Time) string {
	var b strings.Builder
	for i := 1; i <= 100; i++ {
		ts := t0.Add(time.Duration(i) * time.Second)
		status := 200
		if i%10 == 0 {
			status = 500
		}
		fmt.Fprintf(&b, "127.0.0.1 - - [%s] \"GET /a/%d HTTP/1.1\" %d 10 \"-\" \"k6\" 0.%03d\n",
			ts.Format("02/Jan/2006:15:04:05 -0700"), i, status, i)
	}
	for i := range 20 {
		ts := t0.Add(time.Duration(i) * time.Second)
		fmt.Fprintf(&b, "127.0.0.1 - - [%s] \"POST /b HTTP/1.1\" 404 10\n", ts.Format("02/Jan/2006:15:04:05 -0700"))
	}
	return b.String()
}

func profileOf(t *testing.T, log string) *fromlog.Profile {
	t.Helper()
	recs, bad, err := fromlog.Read(strings.NewReader(log), fromlog.FormatCombined)
	if err != nil || len(bad) > 0 {
		t.Fatalf("read: %v, malformed %v", err, bad)
	}
	prof, err := fromlog.Analyze(recs, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return prof
}

func TestWriteBaseline(t *testing.T) {
	prof := profileOf(t, timedLog(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)))
	var buf bytes.Buffer
	// Scale 0.5, speedup 2: the plan sends 50 GET /a/{id} (of 100) in two
	// windows of 30 s: 50 per minute; 60 requests in all.
	skipped, err := prof.WriteBaseline(&buf, fromlog.Options{Scale: 0.5, Speedup: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(skipped) != 1 || skipped[0] != "POST /b" {
		t.Errorf("skipped %v, want the endpoint without request times", skipped)
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{
		fromlog.BaselineHeader,
		// all: 120 requests (10 5xx, 20 4xx), times from GET /a only
		{"all", "50", "95", "99", "0.25", "60"},
		{"GET /a/{id}", "50", "95", "99", "0.1", "50"},
	}
	if fmt.Sprint(rows) != fmt.Sprint(want) {
		t.Errorf("baseline\n got %q\nwant %q", rows, want)
	}

	noTimes := strings.ReplaceAll(timedLog(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)), "\" \"k6\" 0.", "\" \"k6\" x")
	prof = profileOf(t, strings.Join(strings.Fields(noTimes), " "))
	if _, err := prof.WriteBaseline(&buf, fromlog.Options{}); !errors.Is(err, fromlog.ErrNoDurations) {
		t.Errorf("a log without request times: got %v, want ErrNoDurations", err)
	}
}

// longNumber is a number with more than three decimals.
var longNumber = regexp.MustCompile(`\d\.\d{4,}`)

func TestPlanNumbersReadable(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	log, _ := GenerateLog(t0, []int{28, 1000, 28}, 3)
	recs, _, err := fromlog.Read(strings.NewReader(log), fromlog.FormatCombined)
	if err != nil {
		t.Fatal(err)
	}
	prof, err := fromlog.Analyze(recs, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	for _, scale := range []float64{1, 0.1, 0.3} {
		src, err := prof.Plan(fromlog.Options{Scale: scale})
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(src), "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), "#") {
				continue
			}
			if longNumber.MatchString(line) {
				t.Errorf("scale %v: line %d has an unreadable number: %s", scale, i+1, line)
			}
		}
		if scale == 1 && !strings.Contains(string(src), "target: 14}") {
			t.Errorf("GET /api/users/{id} had 14 requests in minute 0: no stage targets 14\n%s", src)
		}
	}
}
