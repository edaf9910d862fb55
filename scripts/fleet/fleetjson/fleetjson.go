// Package fleetjson is the JSON that `scripts/fleet -json FILE` writes and
// scripts/bench reads: one mode's figures (wire, fleet or soak) and the
// Markdown fleet printed.
package fleetjson

import "time"

// Output is one run of scripts/fleet.
type Output struct {
	Mode     string    `json:"mode"` // wire, fleet or soak
	When     time.Time `json:"when"`
	Machine  string    `json:"machine"`
	Wire     []Wire    `json:"wire,omitempty"`
	Fleet    *Fleet    `json:"fleet,omitempty"`
	Soak     *Soak     `json:"soak,omitempty"`
	Markdown string    `json:"markdown"` // what stdout got
}

// Wire is one compression of the snapshot stream (fleet -wire).
type Wire struct {
	// Compression is "", "gzip" (gRPC's), "gzip-surge" (controller.Gzip,
	// what agents used before zstd), "zstd" (controller.Zstd at the
	// fastest level, what agents use) or "zstd-default".
	Compression      string  `json:"compression"`
	Description      string  `json:"description"`
	Series           int     `json:"series"`
	Snapshots        int     `json:"snapshots"`
	BytesPerSnapshot float64 `json:"bytes_per_snapshot"`
	CPUPerSnapshotUS float64 `json:"cpu_per_snapshot_us"`
	ProtoBytes       int     `json:"proto_bytes"`
	// Agents marks the row of the compression agents use.
	Agents bool `json:"agents"`
	// KBPerAgentS is BytesPerSnapshot at one snapshot a second, in KB/s.
	KBPerAgentS float64 `json:"kb_s_per_agent"`
	// The codec alone, outside gRPC (zero for none): compressed bytes and
	// CPU per snapshot to compress and to decompress.
	CodecBytes   float64 `json:"codec_bytes_per_snapshot"`
	CompressUS   float64 `json:"compress_us"`
	DecompressUS float64 `json:"decompress_us"`
}

// Fleet is a simulated fleet against a real controller (fleet's default
// mode).
type Fleet struct {
	Agents          int     `json:"agents"`
	Series          int     `json:"series"`
	Values          int     `json:"values"`
	Compressed      bool    `json:"compressed"` // as agents do (zstd)
	DurationS       float64 `json:"duration_s"`
	IntervalS       float64 `json:"interval_s"`
	Expected        int     `json:"intervals_expected"`
	Emitted         int     `json:"intervals_emitted"`
	SnapshotsSent   int64   `json:"snapshots_sent"`
	SnapshotsAcked  int64   `json:"snapshots_acked"`
	Requests        int64   `json:"summary_requests"`
	RequestsSent    int64   `json:"agents_requests"`
	WindowS         float64 `json:"window_s"`
	ControllerCores float64 `json:"controller_cores"` // mean over the window
	PeakCores       float64 `json:"controller_peak_cores"`
	LagP50MS        float64 `json:"lag_p50_ms"`
	LagP99MS        float64 `json:"lag_p99_ms"`
	LagMaxMS        float64 `json:"lag_max_ms"`
	LagsMS          []int64 `json:"lags_ms"` // per emitted interval, in order
	BytesPerAgentS  float64 `json:"bytes_per_agent_s"`
	CtrlRSSPeakMiB  float64 `json:"controller_rss_peak_mib"`
	SimulatorCores  float64 `json:"simulator_cores"`
	Status          string  `json:"status"`
	Verdict         string  `json:"verdict"`
	Warnings        int     `json:"controller_warnings"`
	Errors          int     `json:"controller_errors"`
}

// KeptUp reports whether the controller acknowledged every snapshot and
// its summary counts every request the agents reported.
func (f *Fleet) KeptUp() bool {
	return f.SnapshotsAcked == f.SnapshotsSent && f.Requests == f.RequestsSent
}

// Soak is a constant-rate run of a real controller and agent (fleet
// -soak).
type Soak struct {
	DurationS        float64  `json:"duration_s"`
	Rate             int      `json:"rate"`
	SampleS          float64  `json:"sample_s"`
	Samples          int      `json:"samples"`
	Status           string   `json:"status"`
	Requests         int64    `json:"requests"`
	Failures         int64    `json:"failures"`
	ControllerCPUPct float64  `json:"controller_cpu_pct"`
	AgentCPUPct      float64  `json:"agent_cpu_pct"`
	Growth           []Growth `json:"growth"` // empty when the run was shorter than a minute plus a sample
}

// Growth is one daemon's RSS (or its anonymous part, or its Go heap live
// after GC) after the first minute, in percent of its value then.
type Growth struct {
	Name     string  `json:"name"` // controller, controller anonymous, controller live heap, agent, agent anonymous, agent live heap
	BaseAtS  float64 `json:"base_at_s"`
	BaseMiB  float64 `json:"base_mib"`
	TrendPct float64 `json:"trend_pct"` // least-squares trend over the rest of the run
	LastPct  float64 `json:"last_pct"`
	PeakPct  float64 `json:"peak_pct"`
}

// GrowthOf is the growth figure named name, if the soak has it.
func (s *Soak) GrowthOf(name string) (Growth, bool) {
	for _, g := range s.Growth {
		if g.Name == name {
			return g, true
		}
	}
	return Growth{}, false
}

// WireRow is the row of compression c, if the wire figures have it.
func (o *Output) WireRow(c string) (Wire, bool) {
	for _, r := range o.Wire {
		if r.Compression == c {
			return r, true
		}
	}
	return Wire{}, false
}
