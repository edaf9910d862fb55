package journal

import (
	"time"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
)

// Run is one running run's assignment.
type Run struct {
	ID       string        `json:"id"`
	PlanName string        `json:"plan_name"`
	PlanYAML []byte        `json:"plan_yaml"`
	PlanJSON []byte        `json:"plan_json"`
	Start    time.Time     `json:"start"`
	Interval time.Duration `json:"interval"`
	Total    time.Duration `json:"total"`
	Deadline time.Time     `json:"deadline"`
	MaxIdx   int64         `json:"max_idx"`
	Epoch    uint64        `json:"epoch"`
	OnLoss   string        `json:"on_loss"`
	Order    []string      `json:"order"`
	Members  []Member      `json:"members"`
	Notes    []string      `json:"notes"`
}

type Member struct {
	ID          string `json:"id"`
	Region      string `json:"region"`
	Incarnation string `json:"incarnation"`
	Share       []byte `json:"share"` // surgev1.Share: own scenarios and takeovers
	Epoch       uint64 `json:"epoch"`
	OffsetNs    int64  `json:"offset_ns"`
	StartedNs   int64  `json:"started_ns"`
	Lost        bool   `json:"lost"`
	Failed      string `json:"failed"`
	// LostAt is the interval it was lost in; LossLeft, LossUntil, LossOpen
	// and LossWindow its lossAccount (the handled counts are replayed from
	// the journaled snapshots).
	LostAt     int64         `json:"lost_at,omitempty"`
	LossLeft   bool          `json:"loss_left,omitempty"`
	LossUntil  time.Duration `json:"loss_until,omitempty"`
	LossOpen   bool          `json:"loss_open,omitempty"`
	LossWindow time.Duration `json:"loss_window,omitempty"`
}

// Restored is a journaled run with its snapshots in journal order.
type Restored struct {
	Run   *Run
	Snaps []*surgev1.Snapshot
}
