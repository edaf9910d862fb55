//go:build !unix

package hist

import "time"

// processCPU is unavailable here: benchmarks report no cpu-ns/op.
func processCPU() time.Duration { return 0 }
