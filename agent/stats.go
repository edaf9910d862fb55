package agent

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
)

// statsSampler reports this process's health; CPU is the share of one core
// used since the sampler's previous call. Each user keeps its own sampler.
type statsSampler struct {
	conns    *atomic.Int64
	lastWall time.Time
	lastCPU  time.Duration
}

func newStatsSampler(conns *atomic.Int64) *statsSampler {
	return &statsSampler{conns: conns, lastWall: time.Now(), lastCPU: processCPU()}
}

func (s *statsSampler) sample() *surgev1.AgentStats {
	now, cpu := time.Now(), processCPU()
	var pct float64
	if wall := now.Sub(s.lastWall); wall > 0 {
		pct = 100 * float64(cpu-s.lastCPU) / float64(wall)
	}
	s.lastWall, s.lastCPU = now, cpu
	st := &surgev1.AgentStats{
		CpuPercent: max(pct, 0),
		RssBytes:   rss(),
		Goroutines: int64(runtime.NumGoroutine()),
	}
	if s.conns != nil {
		st.ConnsOpen = s.conns.Load()
	}
	return st
}

// processCPU is the user plus system CPU time of this process.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
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
