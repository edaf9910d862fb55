package agent

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
	"github.com/surgeload/surge/internal/cputime"
)

// statsSampler reports this process's health; CPU is the share of one core
// used since the sampler's previous call. A call that comes less than half
// the previous gap after the one before (a run's final, partial interval)
// measures from the call before that instead: a few milliseconds of
// teardown would otherwise read as a saturated core. Each user keeps its
// own sampler.
type statsSampler struct {
	conns *atomic.Int64
	now   func() time.Time
	cpu   func() time.Duration
	// last is the previous call's reading, prior the one before it.
	last, prior cpuReading
}

// cpuReading is the process CPU time used by a wall-clock time.
type cpuReading struct {
	wall time.Time
	cpu  time.Duration
}

func newStatsSampler(conns *atomic.Int64) *statsSampler {
	return newSamplerWith(conns, time.Now, cputime.Process)
}

func newSamplerWith(conns *atomic.Int64, now func() time.Time, cpu func() time.Duration) *statsSampler {
	r := cpuReading{wall: now(), cpu: cpu()}
	return &statsSampler{conns: conns, now: now, cpu: cpu, last: r, prior: r}
}

// cpuPercent is the share of one core used since the previous reading, or
// since the one before it when the previous gap is under half its own.
func (s *statsSampler) cpuPercent() float64 {
	now := cpuReading{wall: s.now(), cpu: s.cpu()}
	from := s.last
	if gap, prev := now.wall.Sub(s.last.wall), s.last.wall.Sub(s.prior.wall); gap < prev/2 {
		from = s.prior
	}
	s.prior, s.last = s.last, now
	wall := now.wall.Sub(from.wall)
	if wall <= 0 {
		return 0
	}
	return max(100*float64(now.cpu-from.cpu)/float64(wall), 0)
}

func (s *statsSampler) sample() *surgev1.AgentStats {
	st := &surgev1.AgentStats{
		CpuPercent: s.cpuPercent(),
		RssBytes:   rss(),
		Goroutines: int64(runtime.NumGoroutine()),
	}
	if s.conns != nil {
		st.ConnsOpen = s.conns.Load()
	}
	return st
}

// rss is the resident set size from /proc/self/statm, or the memory the Go
// runtime holds from the OS where /proc is missing.
func rss() int64 {
	if b, err := os.ReadFile("/proc/self/statm"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 1 {
			if pages, err := strconv.ParseInt(f[1], 10, 64); err == nil {
				return pages * int64(os.Getpagesize())
			}
		}
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.Sys)
}
