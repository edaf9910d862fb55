package agent

import (
	"testing"
	"time"
)

// fakeProcess is a clock and a CPU counter a test moves by hand.
type fakeProcess struct {
	wall time.Time
	cpu  time.Duration
}

func (f *fakeProcess) advance(wall, cpu time.Duration) {
	f.wall = f.wall.Add(wall)
	f.cpu += cpu
}

func TestStatsSamplerCPU(t *testing.T) {
	p := &fakeProcess{wall: time.Unix(1_000, 0)}
	s := newSamplerWith(nil, func() time.Time { return p.wall }, func() time.Duration { return p.cpu })
	steps := []struct {
		name      string
		wall, cpu time.Duration
		want      float64
	}{
		{"first interval", time.Second, 300 * time.Millisecond, 30},
		{"second interval", time.Second, 500 * time.Millisecond, 50},
		// A final snapshot 10 ms after the last boundary with 20 ms of
		// teardown: measured with the interval before it, not as 200%.
		{"short final", 10 * time.Millisecond, 20 * time.Millisecond, 100 * 520.0 / 1010},
		// A real saturated interval still reads as such.
		{"busy interval", time.Second, 950 * time.Millisecond, 95},
	}
	for _, st := range steps {
		p.advance(st.wall, st.cpu)
		got := s.sample().GetCpuPercent()
		if diff := got - st.want; diff > 0.01 || diff < -0.01 {
			t.Errorf("%s: cpu %.2f%%, want %.2f%%", st.name, got, st.want)
		}
	}
}
