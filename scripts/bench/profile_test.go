package main

import (
	"bytes"
	"reflect"
	"runtime"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/klauspost/compress/zstd"

	"github.com/surgeload/surge/agent/executor"
	"github.com/surgeload/surge/hist"
	"github.com/surgeload/surge/internal/cputime"
)

// spin does n rounds of xorshift: CPU work proportional to n.
func spin(n int) uint64 {
	x := uint64(88172645463325252)
	for range n {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
	}
	return x
}

//go:noinline
func profiledTwice(n int) uint64 { return spin(2 * n) }

//go:noinline
func profiledOnce(n int) uint64 { return spin(n) }

// A real CPU profile of this process, which spends twice the CPU in one
// function as in another: the parser puts about two thirds of the
// samples in the first, a third in the second, and names the prefix no
// frame has.
func TestParseCPUProfile(t *testing.T) {
	// n: about 100 ms of spinning on this machine, in CPU time (the
	// profiler samples CPU time; on a loaded machine wall time runs ahead
	// of it and gave too few samples).
	const probe = 1 << 24
	t0, c0 := time.Now(), cputime.Process()
	warm := spin(probe)
	took := cputime.Process() - c0
	if took <= 0 {
		took = time.Since(t0) // no CPU clock here
	}
	n := int(float64(probe) * float64(100*time.Millisecond) / float64(max(took, time.Microsecond)))
	var buf bytes.Buffer
	if err := pprof.StartCPUProfile(&buf); err != nil {
		t.Skipf("cpu profiler busy: %v", err) // only when another profile runs in this test binary
	}
	sum := warm + profiledTwice(n) + profiledOnce(n)
	pprof.StopCPUProfile()
	const pkg = "github.com/surgeload/surge/scripts/bench."
	p, err := parseCPUProfile(buf.Bytes(), []string{pkg + "profiledTwice", pkg + "profiledOnce", pkg + "notAFunction"})
	if err != nil {
		t.Fatal(err)
	}
	if p.Samples < 20 {
		t.Fatalf("%d samples of %d rounds (sum %d): too few to judge", p.Samples, 3*n, sum)
	}
	twice, once := float64(p.MatchedByPrefix[pkg+"profiledTwice"]), float64(p.MatchedByPrefix[pkg+"profiledOnce"])
	if share := twice / float64(p.TotalNS); share < 0.45 || share > 0.85 {
		t.Errorf("profiledTwice has %.2f of the CPU, want about 2/3 (%+v)", share, p)
	}
	if share := once / float64(p.TotalNS); share < 0.15 || share > 0.5 {
		t.Errorf("profiledOnce has %.2f of the CPU, want about 1/3 (%+v)", share, p)
	}
	if p.MatchedNS != int64(twice+once) || p.Matched > p.Samples || p.Share() < 0.8 {
		t.Errorf("matched %d ns of %d (%d of %d samples): want the two functions' sum, most of the profile", p.MatchedNS, p.TotalNS, p.Matched, p.Samples)
	}
	if len(p.PrefixesWithoutFrame) != 1 || p.PrefixesWithoutFrame[0] != pkg+"notAFunction" {
		t.Errorf("prefixes without a frame: %v", p.PrefixesWithoutFrame)
	}
	if _, err := parseCPUProfile([]byte{0x1f, 0x8b, 1, 2}, nil); err == nil {
		t.Error("a broken gzip stream parsed")
	}
	if _, err := parseCPUProfile([]byte{0x0a, 0x05, 1}, nil); err == nil {
		t.Error("a truncated message parsed")
	}
}

// The recording prefixes name functions of the agent's recording path as
// they are compiled: a renamed recorder fails here, not silently at 0%.
func TestRecordingFuncsNameTheAgent(t *testing.T) {
	name := func(fn any) string { return runtime.FuncForPC(reflect.ValueOf(fn).Pointer()).Name() }
	for i, fn := range []any{(*executor.Recorder).Swap, (*executor.ScenarioRecorder).Request, hist.New,
		(*hdrhistogram.Histogram).RecordValue, zstd.NewWriter} {
		if n := name(fn); !strings.HasPrefix(n, recordingFuncs[i]) {
			t.Errorf("%s does not start with recordingFuncs[%d] %q", n, i, recordingFuncs[i])
		}
	}
}
