package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
	"github.com/surgeload/surge/hist"
	"github.com/surgeload/surge/internal/ciskip"
)

// testHdrLog writes the run's HDR log and checks it against the summary
// (Go decoder), then, in a subtest, against hdr-histogram-js.
func testHdrLog(t *testing.T, addr string, sl *surgev1.RunSummary, byRegion bool) {
	file := filepath.Join(t.TempDir(), "run.hdr")
	args := []string{"report", "--controller", addr, "--format", "hdr", "-o", file, sl.GetRunId()}
	if byRegion {
		args = append(args, "--by-region")
	}
	if r := cli(t, nil, args...); r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	goFrames := readHdrLog(t, file)
	checkHdrAgainstSummary(t, goFrames, sl, byRegion)
	t.Run("hdr-histogram-js", func(t *testing.T) { checkHdrJS(t, file, goFrames, byRegion) })
}

// checkHdrJS: hdr-histogram-js decodes the log to the same histograms.
func checkHdrJS(t *testing.T, file string, goFrames []*hdrhistogram.Histogram, byRegion bool) {
	jsFrames := hdrCheckJS(t, file)
	if len(jsFrames) != len(goFrames) {
		t.Fatalf("hdr-histogram-js decoded %d histograms, Go %d", len(jsFrames), len(goFrames))
	}
	for i, g := range goFrames {
		js := jsFrames[i]
		// hdr-histogram-js reads percentiles as HdrHistogram's reference
		// (Java) does: the count at a percentile is rounded up, where
		// hdrhistogram-go rounds to nearest. Both are read here from
		// the same decoded buckets.
		want := jsFrame{Tag: g.Tag(), Count: g.TotalCount(), P50: refPercentile(g, 50), P90: refPercentile(g, 90),
			P95: refPercentile(g, 95), P99: refPercentile(g, 99), P999: refPercentile(g, 99.9), Max: g.Max()}
		js.StartMs, js.EndMs = 0, 0
		if js != want {
			t.Errorf("histogram %d: hdr-histogram-js %+v, surge's log %+v", i, js, want)
		}
	}
	big := 0
	for i, f := range jsFrames {
		if f.Count > jsFrames[big].Count {
			big = i
		}
	}
	t.Logf("measured: %d histograms (by region %v); busiest: %d values, hdr-histogram-js p50/p99/p99.9 %d/%d/%dµs = surge's log %d/%d/%dµs",
		len(goFrames), byRegion, jsFrames[big].Count, jsFrames[big].P50, jsFrames[big].P99, jsFrames[big].P999,
		refPercentile(goFrames[big], 50), refPercentile(goFrames[big], 99), refPercentile(goFrames[big], 99.9))
}

// readHdrLog reads an interval log back with hdrhistogram-go's reader.
func readHdrLog(t *testing.T, file string) []*hdrhistogram.Histogram {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rd := hdrhistogram.NewHistogramLogReader(f)
	var out []*hdrhistogram.Histogram
	for {
		h, err := rd.NextIntervalHistogram()
		if err != nil {
			t.Fatalf("read hdr log: %v", err)
		}
		if h == nil {
			break
		}
		out = append(out, h)
	}
	if len(out) == 0 {
		t.Fatal("hdr log has no histograms")
	}
	return out
}

// checkHdrAgainstSummary: the log's histograms merged give the summary's
// count and percentiles (per region when tagged).
func checkHdrAgainstSummary(t *testing.T, frames []*hdrhistogram.Histogram, s *surgev1.RunSummary, byRegion bool) {
	t.Helper()
	merged := map[string]*hdrhistogram.Histogram{}
	for _, h := range frames {
		if merged[h.Tag()] == nil {
			merged[h.Tag()] = hist.New()
		}
		merged[h.Tag()].Merge(h)
	}
	want := map[string]*surgev1.Stats{"": s.GetAll()}
	if byRegion {
		want = s.GetRegions()
	}
	if len(merged) != len(want) {
		t.Fatalf("hdr log tags %d, want %d", len(merged), len(want))
	}
	for tag, st := range want {
		h := merged[tag]
		if h == nil {
			t.Fatalf("no histogram tagged %q", tag)
		}
		l := st.GetLatencyUs()
		if h.TotalCount() != st.GetRequests() || h.ValueAtQuantile(99) != l.GetP99() || h.ValueAtQuantile(50) != l.GetP50() || h.Max() != l.GetMax() {
			t.Errorf("tag %q: log count %d p50 %d p99 %d max %d; summary %d %d %d %d", tag, h.TotalCount(),
				h.ValueAtQuantile(50), h.ValueAtQuantile(99), h.Max(), st.GetRequests(), l.GetP50(), l.GetP99(), l.GetMax())
		}
	}
}

type jsFrame struct {
	Tag     string `json:"tag"`
	StartMs int64  `json:"start_ms"`
	EndMs   int64  `json:"end_ms"`
	Count   int64  `json:"count"`
	P50     int64  `json:"p50"`
	P90     int64  `json:"p90"`
	P95     int64  `json:"p95"`
	P99     int64  `json:"p99"`
	P999    int64  `json:"p999"`
	Max     int64  `json:"max"`
}

// refPercentile is HdrHistogram's reference getValueAtPercentile: the
// highest equivalent value of the bucket where the running count reaches
// ceil(q/100 × total).
func refPercentile(h *hdrhistogram.Histogram, q float64) int64 {
	fp := q / 100 * float64(h.TotalCount())
	ulp := math.Nextafter(fp, math.Inf(1)) - fp
	target := max(int64(math.Ceil(fp-ulp)), 1)
	var n int64
	for _, b := range h.Distribution() {
		n += b.Count
		if b.Count > 0 && n >= target {
			return b.To
		}
	}
	return 0
}

// hdrCheckJS decodes the log with hdr-histogram-js (scripts/hdrcheck,
// installed once with `npm ci` into .cache/hdrcheck). Without node the test
// is skipped with a loud message.
func hdrCheckJS(t *testing.T, file string) []jsFrame {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		ciskip.Skipf(t, "node is not installed, so the HDR log was NOT checked with hdr-histogram-js; install node >= 18 to run this check")
	}
	_, self, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(self), "..", "..")
	src := filepath.Join(root, "scripts", "hdrcheck")
	dir := filepath.Join(root, ".cache", "hdrcheck")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"package.json", "package-lock.json", "check.mjs"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		old, _ := os.ReadFile(filepath.Join(dir, f))
		if !bytes.Equal(old, b) {
			if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
				t.Fatal(err)
			}
			_ = os.RemoveAll(filepath.Join(dir, "node_modules"))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "hdr-histogram-js")); err != nil {
		cmd := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("npm ci in %s: %v\n%s", dir, err, out)
		}
	}
	cmd := exec.CommandContext(ctx, node, filepath.Join(dir, "check.mjs"), file)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("node check.mjs: %v\n%s", err, ee.Stderr)
		}
		t.Fatal(err)
	}
	var frames []jsFrame
	if err := json.Unmarshal(out, &frames); err != nil {
		t.Fatalf("node output: %v\n%s", err, out)
	}
	return frames
}
