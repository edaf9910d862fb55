package plan

import (
	"strings"
	"testing"
	"time"
)

func TestSaturationBounds(t *testing.T) {
	const base = "name: x\nscenarios:\n  s:\n    executor: constant-vus\n    vus: 1\n    duration: 1s\n    requests: [{url: 'http://127.0.0.1:1/'}]\n"
	p, err := Parse("p.yaml", []byte(base))
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Saturation; got.CPU != 90 || got.SendLateness.D() != 10*time.Millisecond || got.Dropped != 0 {
		t.Errorf("default saturation bounds %+v, want cpu 90, send_lateness 10ms, dropped 0", got)
	}
	p, err = Parse("p.yaml", []byte(base+"saturation: {cpu: 180, send_lateness: 25ms, dropped: 3}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Saturation; got.CPU != 180 || got.SendLateness.D() != 25*time.Millisecond || got.Dropped != 3 {
		t.Errorf("saturation bounds %+v, want cpu 180, send_lateness 25ms, dropped 3", got)
	}
	back, err := FromJSON(mustCanonical(t, p))
	if err != nil || back.Saturation != p.Saturation {
		t.Errorf("saturation through canonical JSON: %+v, %v", back.Saturation, err)
	}

	// Every bad bound is reported, each at its own line.
	_, err = Parse("p.yaml", []byte(base+"saturation:\n  cpu: -1\n  send_lateness: -5ms\n  dropped: -2\n"))
	for _, want := range []string{"p.yaml:9:8: saturation.cpu", "p.yaml:10:18: saturation.send_lateness", "p.yaml:11:12: saturation.dropped"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("bad bounds: %v, want %q", err, want)
		}
	}
	_, err = Parse("p.yaml", []byte(base+"saturation: {cpus: 50}\n"))
	if err == nil || !strings.Contains(err.Error(), `unknown key "cpus"`) {
		t.Errorf("misspelt key: %v", err)
	}
}

func mustCanonical(t *testing.T, p *Plan) []byte {
	t.Helper()
	b, err := MarshalCanonical(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
