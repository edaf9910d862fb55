package aggregate

import (
	"strings"
	"testing"
	"time"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
	"github.com/surgeload/surge/hist"
	"github.com/surgeload/surge/plan"
)

// hotSnapshot is agent b's interval 0 at 97% CPU, 50 ms send lateness
// and 3 dropped iterations.
func hotSnapshot() *surgev1.Snapshot {
	late := hist.New()
	for range 100 {
		_ = late.RecordValue(50_000)
	}
	s := checkSnap("b", 1, 0, "", 0, 0)
	s.Agent = &surgev1.AgentStats{CpuPercent: 97}
	s.Scenarios[0].Lateness = hist.ToProto(late)
	s.Scenarios[0].Dropped = 3
	return s
}

// The plan's saturation bounds decide what is flagged, and the note
// names them.
func TestSaturationPlanBounds(t *testing.T) {
	for _, tc := range []struct {
		name    string
		bounds  plan.Saturation
		reasons []string
	}{
		{"defaults", plan.Saturation{}, []string{"cpu 97% > 90%", "send lateness p99 50.015ms > 10ms", "3 dropped iterations > 0"}},
		{"loose", plan.Saturation{CPU: 99, SendLateness: plan.Duration(100 * time.Millisecond), Dropped: 3}, nil},
		{"cpu only", plan.Saturation{CPU: 95, SendLateness: plan.Duration(time.Second), Dropped: 10}, []string{"cpu 97% > 95%"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := New(Config{RunID: "run", Start: time.Unix(0, 0), Interval: time.Second, MaxInterval: 10, Epoch: 1,
				Agents: map[string]string{"b": "eu"}, Saturation: tc.bounds})
			if _, err := r.Add(hotSnapshot()); err != nil {
				t.Fatal(err)
			}
			flags := r.Emit(0).GetSaturation()
			if len(tc.reasons) == 0 {
				if len(flags) != 0 || r.SaturationNote() != "" {
					t.Fatalf("flagged within the bounds: %v, note %q", flags, r.SaturationNote())
				}
				return
			}
			if len(flags) != 1 || flags[0].GetAgentId() != "b" || flags[0].GetRegion() != "eu" || flags[0].GetInterval() != 0 {
				t.Fatalf("flags %v, want one for agent b, region eu, interval 0", flags)
			}
			if got := strings.Join(flags[0].GetReasons(), "; "); got != strings.Join(tc.reasons, "; ") {
				t.Errorf("reasons %q, want %q", got, strings.Join(tc.reasons, "; "))
			}
			if note := r.SaturationNote(); !strings.Contains(note, "1 interval(s)") {
				t.Errorf("note %q", note)
			}
		})
	}
}
