package report_test

import (
	"strings"
	"testing"
	"time"

	"github.com/surgeload/surge/controller/report"
	surgev1 "github.com/surgeload/surge/gen/surge/v1"
	"github.com/surgeload/surge/hist"
)

// Frames serve a phase's histograms (`surge report --format hdr --metric
// ttfb`), merged exactly over regions; a run without the phase gives empty
// frames, an unknown metric an error.
func TestFramesPhase(t *testing.T) {
	want := hist.New()
	regions := map[string][]*surgev1.Series{}
	for i, region := range []string{"us", "eu"} {
		set := hist.NewSet()
		sr := set.Get(hist.Key{Scenario: "s", Request: "r", Status: "2xx"})
		for v := int64(1); v <= 100; v++ {
			_ = sr.Latency.RecordValue(v * 1000)
			sr.RecordPhase(hist.PhaseTTFB, v*int64(100*(i+1)))
			_ = want.RecordValue(v * int64(100*(i+1)))
		}
		regions[region] = set.ToProto()
	}
	d := &report.RunData{ID: "r", Start: time.UnixMilli(1767225600000), Duration: 5 * time.Second, Whole: regions}
	frames, err := report.Frames(d, false, "ttfb")
	if err != nil || len(frames) != 1 {
		t.Fatalf("frames %v, %v", frames, err)
	}
	if f := frames[0]; f.GetCount() != want.TotalCount() {
		t.Errorf("ttfb frame count %d, want %d", f.GetCount(), want.TotalCount())
	}
	h, err := hist.DecodeV2([]byte(frames[0].GetHdrBase64()))
	if err != nil {
		t.Fatal(err)
	}
	if h.ValueAtQuantile(99) != want.ValueAtQuantile(99) || h.Max() != want.Max() {
		t.Errorf("ttfb p99 %d max %d, want %d %d", h.ValueAtQuantile(99), h.Max(), want.ValueAtQuantile(99), want.Max())
	}
	if frames, err := report.Frames(d, true, "tls"); err != nil || len(frames) != 2 || frames[0].GetCount() != 0 {
		t.Errorf("tls frames %v, %v: want two empty frames", frames, err)
	}
	if _, err := report.Frames(d, false, "bogus"); err == nil || !strings.Contains(err.Error(), "ttfb") {
		t.Errorf("unknown metric: %v", err)
	}
}
