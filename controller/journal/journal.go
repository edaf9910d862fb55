// Package journal keeps what a restarted controller needs to finish the
// runs a previous process left running: each running run's assignment
// (PutRun) and every snapshot the controller merged (PutSnapshot). A
// write's completion runs once it is durable, so a snapshot acked from
// there is never lost; writes are applied in the order they were queued,
// and a write for a run deleted earlier (DeleteRun) is skipped. Load
// returns what is journaled. docs/architecture.md tells how (group commit,
// the snapshot logs, backpressure, torn records).
package journal

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
)

// Journal is the journal of one data directory. Its writer goroutine starts
// in Open and ends in Close, after handling what is queued.
type Journal struct {
	db  *bolt.DB
	dir string // the snapshot logs
	crc *crc32.Table
	// bufs are record buffers (*[]byte): PutSnapshot encodes into one, the
	// writer returns it once the record is written.
	bufs sync.Pool

	// mu guards closed against sends on q: enqueue holds it shared while it
	// sends (and may block on a full q), close takes it exclusively to close
	// q, so nothing is sent on a closed q.
	mu     sync.RWMutex
	closed bool
	q      chan write
	done   chan struct{} // closed when the writer returned

	// beforeCommit, when set (by tests before any write), runs on the
	// writer goroutine before each batch is written.
	beforeCommit func()

	stats counters
}

// counters are the journal's counters, for logs and tests.
type counters struct {
	commits     atomic.Int64 // batches written (group commits)
	writes      atomic.Int64 // writes made durable
	failed      atomic.Int64 // writes that failed
	waits       atomic.Int64 // enqueues that found the queue full and waited
	afterDelete atomic.Int64 // writes for a deleted run, skipped
	orphans     atomic.Int64 // snapshot logs without a run, removed by load
}

// Stats are the journal's counters at one moment.
type Stats struct {
	Commits     int64 // batches written (group commits)
	Writes      int64 // writes made durable
	Failed      int64 // writes that failed
	Waits       int64 // enqueues that found the queue full and waited
	AfterDelete int64 // writes for a deleted run, skipped
	Orphans     int64 // snapshot logs without a run, removed by Load
}

// Stats returns the journal's counters.
func (j *Journal) Stats() Stats {
	c := &j.stats
	return Stats{Commits: c.commits.Load(), Writes: c.writes.Load(), Failed: c.failed.Load(),
		Waits: c.waits.Load(), AfterDelete: c.afterDelete.Load(), Orphans: c.orphans.Load()}
}

const (
	// queueLen bounds the writes waiting for the writer; a full queue
	// blocks the enqueuing run goroutine (backpressure, counted).
	queueLen = 2048
	// maxBatch bounds the writes of one group commit.
	maxBatch = 1024
	// snapLogExt names a run's snapshot log in the journal directory.
	snapLogExt = ".snaps"
	// recordHeader is a log record's length and CRC-32C (Castagnoli) of
	// the encoded snapshot that follows, both big-endian uint32.
	recordHeader = 8
	// MaxRecord bounds a record's length (four times the largest message
	// the controller receives a snapshot in); a larger one is corrupt.
	MaxRecord = 64 << 20
	// maxPooledRecord: larger record buffers are not kept for reuse.
	maxPooledRecord = 1 << 20
)

// errClosed is what a write to a closed journal gets.
var errClosed = errors.New("journal is closed")

// errRunDeleted is what a write for a run deleted earlier gets.
var errRunDeleted = errors.New("run was deleted from the journal")

var (
	bucketRuns  = []byte("runs")
	bucketSnaps = []byte("snapshots")
)

// Open opens the journal at path (DATA_DIR/journal.db, and the
// snapshot logs in DATA_DIR/journal) and starts its writer.
func Open(path string) (*Journal, error) {
	dir := filepath.Join(filepath.Dir(path), "journal")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open journal %s: %w", dir, err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second, FreelistType: bolt.FreelistMapType})
	if err != nil {
		return nil, fmt.Errorf("open journal %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketRuns, bucketSnaps} {
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
	j := &Journal{db: db, dir: dir, crc: crc32.MakeTable(crc32.Castagnoli),
		q: make(chan write, queueLen), done: make(chan struct{})}
	go j.writer()
	return j, nil
}

// close handles what is queued, stops the writer and closes the files.
// Writes after close fail with errClosed.
func (j *Journal) Close() error {
	j.mu.Lock()
	if !j.closed {
		j.closed = true
		close(j.q)
	}
	j.mu.Unlock()
	<-j.done
	if err := j.db.Close(); err != nil {
		return fmt.Errorf("close journal: %w", err)
	}
	return nil
}

// enqueue queues op for the writer, waiting for room when the queue is
// full. On a closed journal it runs op.done(errClosed) itself.
func (j *Journal) enqueue(op write) {
	j.mu.RLock()
	if j.closed {
		j.mu.RUnlock()
		if op.done != nil {
			op.done(errClosed)
		}
		return
	}
	select {
	case j.q <- op:
	default:
		j.stats.waits.Add(1)
		j.q <- op
	}
	j.mu.RUnlock()
}

// wait queues op and returns its outcome once it is durable.
func (j *Journal) wait(op write) error {
	errc := make(chan error, 1)
	op.done = func(err error) { errc <- err }
	j.enqueue(op)
	return <-errc
}

// snapLog is one run's open snapshot log; size is its length after the

// PutRun stores the run's assignment; it returns once the write is
// durable.
func (j *Journal) PutRun(r *Run) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("journal run %s: %w", r.ID, err)
	}
	if err := j.wait(write{kind: opRun, run: r.ID, val: b}); err != nil {
		return fmt.Errorf("journal run %s: %w", r.ID, err)
	}
	return nil
}

// PutSnapshot queues a merged snapshot for the journal and returns; done
// runs exactly once: on the writer goroutine once the snapshot is durable
// (err nil) or its write failed, or here when s does not encode or the
// journal is closed. s is encoded before PutSnapshot returns, so the caller
// may change it afterwards; done must not block (it sends the ack).
func (j *Journal) PutSnapshot(run string, s *surgev1.Snapshot, done func(error)) {
	bp, _ := j.bufs.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	rec, err := proto.MarshalOptions{}.MarshalAppend(append((*bp)[:0], make([]byte, recordHeader)...), s)
	if err == nil && len(rec)-recordHeader > MaxRecord {
		err = fmt.Errorf("%d bytes, at most %d", len(rec)-recordHeader, MaxRecord)
	}
	if err != nil {
		done(fmt.Errorf("journal snapshot %s/%s/%d: %w", run, s.GetAgentId(), s.GetSeq(), err))
		return
	}
	binary.BigEndian.PutUint32(rec[0:4], uint32(len(rec)-recordHeader))
	binary.BigEndian.PutUint32(rec[4:8], crc32.Checksum(rec[recordHeader:], j.crc))
	*bp = rec
	agent, seq := s.GetAgentId(), s.GetSeq()
	j.enqueue(write{kind: opSnapshot, run: run, rec: bp, done: func(err error) {
		if err != nil {
			err = fmt.Errorf("journal snapshot %s/%s/%d: %w", run, agent, seq, err)
		}
		done(err)
	}})
}

// after runs done on the writer goroutine once every write queued before
// it was handled (a duplicate snapshot's ack waits for the original's
// write this way); on a closed journal it runs done at once.
func (j *Journal) After(done func()) {
	j.enqueue(write{kind: opBarrier, done: func(error) { done() }})
}

// DeleteRun removes the run's record and snapshots, after every write
// queued before it; later writes for the run are skipped. It returns once
// the record's deletion is durable.
func (j *Journal) DeleteRun(id string) error {
	if err := j.wait(write{kind: opDeleteRun, run: id}); err != nil {
		return fmt.Errorf("journal delete %s: %w", id, err)
	}
	return nil
}

// runs on the writer goroutine). A record that does not decode is skipped
// and reported in errs; a log's torn or corrupt tail (a write a crash
// interrupted, never acknowledged) is cut off and reported; logs of runs
// without a record (a deletion a crash interrupted) are removed.
func (j *Journal) Load() (out []Restored, errs []error) {
	err := j.wait(write{kind: opBarrier, fn: func(w *writerState) { out, errs = j.loadOn(w) }})
	if err != nil {
		return nil, []error{fmt.Errorf("journal load: %w", err)}
	}
	return out, errs
}
