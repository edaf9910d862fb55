package main

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// The target's windows: one request a millisecond at 1000/s for 5 s,
// shuffled, counted in the three inner seconds; a second with ten fewer
// is 1% short; requests after the run's duration are in no window.
func TestTargetWindows(t *testing.T) {
	const origin = 1733000000123
	var ms []int64
	for i := range int64(5000) {
		if i >= 2000 && i < 2010 {
			continue // ten missing in the third second
		}
		ms = append(ms, origin+i)
	}
	ms = append(ms, origin+5000, origin+7300) // late: past the 5 s
	rand.Shuffle(len(ms), func(i, j int) { ms[i], ms[j] = ms[j], ms[i] })
	got := targetWindows(ms, 1000, 5*time.Second)
	want := windows{{1000, 1000}, {990, 1000}, {1000, 1000}}
	if !slices.Equal(got, want) {
		t.Fatalf("windows %v, want %v", got, want)
	}
	if got.Within(0.001) != 2 || got.Worst() != 0.01 {
		t.Errorf("within %d, worst %v", got.Within(0.001), got.Worst())
	}
	if w := targetWindows(nil, 1000, 5*time.Second); w != nil {
		t.Errorf("no requests: %v", w)
	}
	// Two windows are kept whole.
	if w := targetWindows([]int64{0, 500, 1000, 1999}, 2, 2*time.Second); !slices.Equal(w, windows{{2, 2}, {2, 2}}) {
		t.Errorf("two windows: %v", w)
	}
}

func TestParseAccessLog(t *testing.T) {
	got, err := parseAccessLog(strings.NewReader("1733561234.567\n1733561235.008\n"), "access.log")
	if err != nil || !slices.Equal(got, []int64{1733561234567, 1733561235008}) {
		t.Errorf("got %v, %v", got, err)
	}
	for _, bad := range []string{"1733561234.5\n", "1733561234\n", "x.123\n", "1733561234.56a\n"} {
		_, err := parseAccessLog(strings.NewReader("1733561234.567\n"+bad), "access.log")
		if err == nil || !strings.Contains(err.Error(), "access.log:2:") {
			t.Errorf("%q: err %v, want one naming access.log:2", bad, err)
		}
	}
}

// Surge's progress lines: planned-nothing intervals left out, ends
// trimmed.
func TestProgressWindows(t *testing.T) {
	out := strings.Join([]string{
		"[1.0s/4.0s running] agents=1 rps=999.0 arrivals=999.0/1000.0 p50=0.20ms requests=999 errors=0 conns=3",
		"[2.0s/4.0s running] agents=1 rps=1000.0 arrivals=1000.0/1000.0 p50=0.20ms requests=1000 errors=0 conns=3",
		"[2.0s/4.0s running] thresholds p99<500: ok",
		"[3.0s/4.0s running] agents=1 rps=998.0 arrivals=998.0/1000.0 p50=0.20ms requests=998 errors=0 conns=3",
		"[4.0s/4.0s running] agents=1 rps=1001.0 arrivals=1001.0/1000.0 p50=0.20ms requests=1001 errors=0 conns=3",
		"[5.0s/4.0s running] agents=1 rps=0.0 p50=0.20ms requests=0 errors=0 conns=3",
	}, "\n")
	if got := progressWindows(out); !slices.Equal(got, windows{{1000, 1000}, {998, 1000}}) {
		t.Errorf("progress windows %v", got)
	}
}
