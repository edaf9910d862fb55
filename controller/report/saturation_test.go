package report_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/surgeload/surge/controller/report"
	surgev1 "github.com/surgeload/surge/gen/surge/v1"
)

func saturated() *surgev1.RunSummary {
	return &surgev1.RunSummary{
		RunId: "r-sat", Status: "finished", Verdict: "pass",
		Saturation: []*surgev1.SaturationFlag{
			{Interval: 3, AgentId: "a1", Region: "us-east", LatenessP99Us: 41_000, Reasons: []string{"send lateness p99 41ms > 10ms"}},
			{Interval: 4, AgentId: "a2", Region: "eu-west", CpuPercent: 97, DroppedIterations: 12,
				Reasons: []string{"cpu 97% > 90%", "12 dropped iterations"}},
		},
	}
}

func TestSaturationJSON(t *testing.T) {
	b, err := report.JSON(saturated())
	if err != nil {
		t.Fatal(err)
	}
	s, err := report.ParseJSON(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Saturation) != 2 {
		t.Fatalf("saturation = %+v, want 2 flags", s.Saturation)
	}
	got := s.Saturation[1]
	if got.Interval != 4 || got.Agent != "a2" || got.Region != "eu-west" || got.CPUPercent != 97 ||
		got.DroppedIterations != 12 || len(got.Reasons) != 2 {
		t.Errorf("saturation[1] = %+v", got)
	}
	if s.Saturation[0].LatenessP99US != 41_000 {
		t.Errorf("saturation[0].send_lateness_p99_us = %d, want 41000", s.Saturation[0].LatenessP99US)
	}

	// A run without flags has an empty list, not null.
	b, err = report.JSON(&surgev1.RunSummary{RunId: "r-ok"})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(`"saturation": []`)) {
		t.Errorf("JSON without flags has no empty saturation list:\n%s", b)
	}
}

func TestSaturationText(t *testing.T) {
	var buf bytes.Buffer
	if err := report.Text(&buf, saturated()); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{
		"saturation\n",
		"3         a1     us-east  send lateness p99 41ms > 10ms",
		"4         a2     eu-west  cpu 97% > 90%; 12 dropped iterations",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("text summary lacks %q:\n%s", want, out)
		}
	}
}
