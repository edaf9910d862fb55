package controller

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
	"google.golang.org/protobuf/proto"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
)

// journal keeps what a restarted controller needs to finish the runs a
// previous process left running: each running run's assignment (plan,
// start, members, shares, epochs) and every snapshot the controller merged,
// written before the snapshot is acknowledged. A restarted controller
// replays the snapshots into a fresh aggregation (snapshots are idempotent
// by agent and seq, so what the agents resend afterwards is counted once),
// re-attaches the agents and finishes the run. A run's entries are deleted
// when it ends; the run store keeps the result.
type journal struct {
	db *bolt.DB
}

var (
	journalRuns  = []byte("runs")
	journalSnaps = []byte("snapshots")
)

// journalRun is one running run's assignment.
type journalRun struct {
	ID       string          `json:"id"`
	PlanName string          `json:"plan_name"`
	PlanYAML []byte          `json:"plan_yaml"`
	PlanJSON []byte          `json:"plan_json"`
	Start    time.Time       `json:"start"`
	Interval time.Duration   `json:"interval"`
	Total    time.Duration   `json:"total"`
	Deadline time.Time       `json:"deadline"`
	MaxIdx   int64           `json:"max_idx"`
	Epoch    uint64          `json:"epoch"`
	OnLoss   string          `json:"on_loss"`
	Order    []string        `json:"order"`
	Members  []journalMember `json:"members"`
	Notes    []string        `json:"notes"`
}

type journalMember struct {
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

func openJournal(path string) (*journal, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open journal %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{journalRuns, journalSnaps} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open journal %s: %w", path, err)
	}
	return &journal{db: db}, nil
}

func (j *journal) close() error { return j.db.Close() }

func (j *journal) putRun(r *journalRun) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("journal run %s: %w", r.ID, err)
	}
	if err := j.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(journalRuns).Put([]byte(r.ID), b) }); err != nil {
		return fmt.Errorf("journal run %s: %w", r.ID, err)
	}
	return nil
}

func snapKey(agent string, seq uint64) []byte {
	k := make([]byte, 0, len(agent)+9)
	k = append(k, agent...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint64(k, seq)
}

// putSnapshot stores a merged snapshot; it returns once the write is
// durable, so an acknowledged snapshot survives a controller crash.
func (j *journal) putSnapshot(run string, s *surgev1.Snapshot) error {
	b, err := proto.Marshal(s)
	if err != nil {
		return fmt.Errorf("journal snapshot: %w", err)
	}
	err = j.db.Update(func(tx *bolt.Tx) error {
		rb, err := tx.Bucket(journalSnaps).CreateBucketIfNotExists([]byte(run))
		if err != nil {
			return err
		}
		return rb.Put(snapKey(s.GetAgentId(), s.GetSeq()), b)
	})
	if err != nil {
		return fmt.Errorf("journal snapshot %s/%s/%d: %w", run, s.GetAgentId(), s.GetSeq(), err)
	}
	return nil
}

func (j *journal) deleteRun(id string) error {
	err := j.db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(journalRuns).Delete([]byte(id)); err != nil {
			return err
		}
		if err := tx.Bucket(journalSnaps).DeleteBucket([]byte(id)); err != nil && !errors.Is(err, berrors.ErrBucketNotFound) {
			return err
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("journal delete %s: %w", id, err)
	}
	return nil
}

// restoredRun is a journaled run with its snapshots in journal order.
type restoredRun struct {
	run   *journalRun
	snaps []*surgev1.Snapshot
}

// load returns every journaled run. A record that does not decode is
// skipped and reported in errs.
func (j *journal) load() (out []restoredRun, errs []error) {
	_ = j.db.View(func(tx *bolt.Tx) error {
		sb := tx.Bucket(journalSnaps)
		return tx.Bucket(journalRuns).ForEach(func(k, v []byte) error {
			var r journalRun
			if err := json.Unmarshal(v, &r); err != nil {
				errs = append(errs, fmt.Errorf("journal run %s: %w", k, err))
				return nil
			}
			rr := restoredRun{run: &r}
			if b := sb.Bucket(k); b != nil {
				_ = b.ForEach(func(_, v []byte) error {
					s := &surgev1.Snapshot{}
					if err := proto.Unmarshal(v, s); err != nil {
						errs = append(errs, fmt.Errorf("journal snapshot of %s: %w", k, err))
						return nil
					}
					rr.snaps = append(rr.snaps, s)
					return nil
				})
			}
			out = append(out, rr)
			return nil
		})
	})
	return out, errs
}
