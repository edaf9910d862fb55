package controller

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
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
//
// The assignments are records in a bbolt file (journal.db). The snapshots
// go to one append-only log per running run (journal/RUN.snaps: records of
// length, CRC-32C and the encoded snapshot), removed when the run ends: a
// large fleet journals tens of MB/s, which bbolt copied several times over
// (into its pages, then the file) and kept mapped, and its file never
// shrinks; a log is written once, read only by a restart, and deleted
// whole. Journals of earlier versions kept snapshots in journal.db; those
// still load.
//
// Writes go through one queue to the journal's writer goroutine, which
// takes everything queued (group commit): it appends the batch's
// snapshots, syncs each log it appended to once, commits the batch's
// assignment changes in one bbolt transaction, and then runs each write's
// completion in queue order. The queue is FIFO for every kind of write, so
// a run's deletion comes after every write queued before it; the writer
// also remembers the runs it deleted and skips (and counts) a later write
// for one of them, so a late write cannot recreate a deleted run's
// entries. The writer starts in openJournal and ends in close, after
// handling what is queued.
type journal struct {
	db  *bolt.DB
	dir string // the snapshot logs
	crc *crc32.Table
	// bufs are record buffers (*[]byte): putSnapshot encodes into one, the
	// writer returns it once the record is written.
	bufs sync.Pool

	// mu guards closed against sends on q: enqueue holds it shared while it
	// sends (and may block on a full q), close takes it exclusively to close
	// q, so nothing is sent on a closed q.
	mu     sync.RWMutex
	closed bool
	q      chan journalOp
	done   chan struct{} // closed when the writer returned

	// beforeCommit, when set (by tests before any write), runs on the
	// writer goroutine before each batch is written.
	beforeCommit func()

	stats journalStats
}

// journalStats are the journal's counters, for logs and tests.
type journalStats struct {
	commits     atomic.Int64 // batches written (group commits)
	writes      atomic.Int64 // writes made durable
	failed      atomic.Int64 // writes that failed
	waits       atomic.Int64 // enqueues that found the queue full and waited
	afterDelete atomic.Int64 // writes for a deleted run, skipped
	orphans     atomic.Int64 // snapshot logs without a run, removed by load
}

const (
	// journalQueue bounds the writes waiting for the writer; a full queue
	// blocks the enqueuing run goroutine (backpressure, counted).
	journalQueue = 2048
	// journalMaxBatch bounds the writes of one group commit.
	journalMaxBatch = 1024
	// snapLogExt names a run's snapshot log in the journal directory.
	snapLogExt = ".snaps"
	// recordHeader is a log record's length and CRC-32C (Castagnoli) of
	// the encoded snapshot that follows, both big-endian uint32.
	recordHeader = 8
	// maxRecord bounds a record's length on reading (a snapshot is at most
	// MaxRecvMsgSize); a larger one is corrupt.
	maxRecord = 4 * MaxRecvMsgSize
	// maxPooledRecord: larger record buffers are not kept for reuse.
	maxPooledRecord = 1 << 20
)

type journalOpKind uint8

const (
	opBarrier   journalOpKind = iota // no write: done runs after the writes before it
	opSnapshot                       // append rec to the run's snapshot log
	opRun                            // put the run record val
	opDeleteRun                      // delete the run's record and snapshots
)

// journalOp is one queued write. done, if set, runs on the writer goroutine
// once the write is durable (err nil) or failed.
type journalOp struct {
	kind journalOpKind
	run  string
	val  []byte  // opRun: the record
	rec  *[]byte // opSnapshot: the log record, from bufs
	// fn, with opBarrier, runs on the writer goroutine before done (load).
	fn   func(w *writerState)
	done func(error)
}

// errJournalClosed is what a write to a closed journal gets.
var errJournalClosed = errors.New("journal is closed")

// errRunDeleted is what a write for a run deleted earlier gets.
var errRunDeleted = errors.New("run was deleted from the journal")

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

// openJournal opens the journal at path (DATA_DIR/journal.db, and the
// snapshot logs in DATA_DIR/journal) and starts its writer.
func openJournal(path string) (*journal, error) {
	dir := filepath.Join(filepath.Dir(path), "journal")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open journal %s: %w", dir, err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second, FreelistType: bolt.FreelistMapType})
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
	j := &journal{db: db, dir: dir, crc: crc32.MakeTable(crc32.Castagnoli),
		q: make(chan journalOp, journalQueue), done: make(chan struct{})}
	go j.writer()
	return j, nil
}

// close handles what is queued, stops the writer and closes the files.
// Writes after close fail with errJournalClosed.
func (j *journal) close() error {
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
// full. On a closed journal it runs op.done(errJournalClosed) itself.
func (j *journal) enqueue(op journalOp) {
	j.mu.RLock()
	if j.closed {
		j.mu.RUnlock()
		if op.done != nil {
			op.done(errJournalClosed)
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
func (j *journal) wait(op journalOp) error {
	errc := make(chan error, 1)
	op.done = func(err error) { errc <- err }
	j.enqueue(op)
	return <-errc
}

// snapLog is one run's open snapshot log; size is its length after the
// last complete record.
type snapLog struct {
	f    *os.File
	size int64
}

// writerState is the writer goroutine's own.
type writerState struct {
	logs    map[string]*snapLog // open logs by run
	deleted map[string]bool     // runs deleted by this process (an id each)
	batch   []journalOp
	errs    []error
}

// writer is the journal's goroutine: it takes what is queued (up to
// journalMaxBatch writes), makes it durable together, then runs the
// completions in queue order. It returns once close closed the queue and
// every write queued before was handled, closing the logs.
func (j *journal) writer() {
	defer close(j.done)
	w := &writerState{logs: map[string]*snapLog{}, deleted: map[string]bool{},
		batch: make([]journalOp, 0, journalMaxBatch), errs: make([]error, 0, journalMaxBatch)}
	defer func() {
		for _, lg := range w.logs {
			_ = lg.f.Close()
		}
	}()
	for op := range j.q {
		w.batch = append(w.batch[:0], op)
	fill:
		for len(w.batch) < journalMaxBatch {
			select {
			case op, ok := <-j.q:
				if !ok {
					break fill
				}
				w.batch = append(w.batch, op)
			default:
				break fill
			}
		}
		w.errs = j.commit(w, w.errs[:0])
		for i, op := range w.batch {
			if op.rec != nil && cap(*op.rec) <= maxPooledRecord {
				*op.rec = (*op.rec)[:0]
				j.bufs.Put(op.rec)
			}
			if op.fn != nil {
				op.fn(w)
			}
			if op.done != nil {
				op.done(w.errs[i])
			}
			w.batch[i] = journalOp{} // drop the references
		}
	}
}

// commit makes w.batch durable, in order, and returns each write's
// outcome: snapshots appended to their logs, each log synced once (and the
// directory, when a log was created), then the assignment changes in one
// bbolt transaction, then the logs of deleted runs removed. A batch of
// barriers only writes nothing.
func (j *journal) commit(w *writerState, errs []error) []error {
	writes := 0
	for _, op := range w.batch {
		errs = append(errs, nil)
		if op.kind != opBarrier {
			writes++
		}
	}
	if writes == 0 {
		return errs
	}
	if j.beforeCommit != nil {
		j.beforeCommit()
	}
	j.stats.commits.Add(1)
	deleting := map[string]bool{} // deletions in this batch so far
	var meta []int                // run record puts and deletes, in order
	appended := map[*snapLog][]int{}
	created := false
	for i, op := range w.batch {
		if op.kind == opBarrier {
			continue
		}
		if op.kind != opDeleteRun && (w.deleted[op.run] || deleting[op.run]) {
			errs[i] = fmt.Errorf("journal %s: %w", op.run, errRunDeleted)
			continue
		}
		switch op.kind {
		case opSnapshot:
			lg, isNew, err := j.openLog(w, op.run)
			created = created || isNew
			if err == nil {
				err = lg.append(*op.rec)
			}
			if err != nil {
				errs[i] = fmt.Errorf("journal snapshot of %s: %w", op.run, err)
				continue
			}
			appended[lg] = append(appended[lg], i)
		case opRun:
			meta = append(meta, i)
		case opDeleteRun:
			meta = append(meta, i)
			deleting[op.run] = true
		}
	}
	for lg, ops := range appended {
		if err := lg.f.Sync(); err != nil {
			for _, i := range ops {
				errs[i] = fmt.Errorf("journal snapshot of %s: sync: %w", w.batch[i].run, err)
			}
		}
	}
	if created {
		if err := syncDir(j.dir); err != nil {
			for _, ops := range appended {
				for _, i := range ops {
					errs[i] = cmpErr(errs[i], fmt.Errorf("journal snapshot of %s: %w", w.batch[i].run, err))
				}
			}
		}
	}
	if len(meta) > 0 {
		err := j.db.Update(func(tx *bolt.Tx) error {
			runs, snaps := tx.Bucket(journalRuns), tx.Bucket(journalSnaps)
			for _, i := range meta {
				op := w.batch[i]
				if op.kind == opRun {
					if err := runs.Put([]byte(op.run), op.val); err != nil {
						return fmt.Errorf("run %s: %w", op.run, err)
					}
					continue
				}
				if err := runs.Delete([]byte(op.run)); err != nil {
					return fmt.Errorf("delete %s: %w", op.run, err)
				}
				// Snapshots journaled by an earlier version.
				if err := snaps.DeleteBucket([]byte(op.run)); err != nil && !errors.Is(err, berrors.ErrBucketNotFound) {
					return fmt.Errorf("delete %s: %w", op.run, err)
				}
			}
			return nil
		})
		for _, i := range meta {
			if err != nil {
				errs[i] = fmt.Errorf("journal commit: %w", err)
				continue
			}
			if op := w.batch[i]; op.kind == opDeleteRun {
				w.deleted[op.run] = true
				errs[i] = j.removeLog(w, op.run)
			}
		}
	}
	for i, op := range w.batch {
		switch {
		case op.kind == opBarrier:
		case errors.Is(errs[i], errRunDeleted):
			j.stats.afterDelete.Add(1)
		case errs[i] != nil:
			j.stats.failed.Add(1)
		default:
			j.stats.writes.Add(1)
		}
	}
	return errs
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// logName is run's snapshot log's file name: the run id when it is a safe
// file name (letters, digits, '.', '_', '-', not leading '.' or '-'; run
// ids are), else "x" and its hex.
func logName(run string) string {
	safe := run != "" && len(run) <= 200 && run[0] != '.' && run[0] != '-'
	for _, c := range run {
		if !safe {
			break
		}
		safe = c < 0x80 && (c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("._-", c))
	}
	if safe {
		return run + snapLogExt
	}
	return fmt.Sprintf("x%x%s", run, snapLogExt)
}

// openLog returns run's open log, opening (and with created, creating) it.
func (j *journal) openLog(w *writerState, run string) (lg *snapLog, created bool, err error) {
	if lg := w.logs[run]; lg != nil {
		return lg, false, nil
	}
	path := filepath.Join(j.dir, logName(run))
	_, statErr := os.Stat(path)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, false, err
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, false, err
	}
	lg = &snapLog{f: f, size: fi.Size()}
	w.logs[run] = lg
	return lg, errors.Is(statErr, fs.ErrNotExist), nil
}

// append writes one record; a failed write is cut off again, so the log
// holds whole records only.
func (lg *snapLog) append(rec []byte) error {
	n, err := lg.f.Write(rec)
	if err != nil {
		if n > 0 {
			if terr := lg.f.Truncate(lg.size); terr != nil {
				return errors.Join(err, fmt.Errorf("cut off a partial record: %w", terr))
			}
		}
		return err
	}
	lg.size += int64(n)
	return nil
}

// removeLog closes and removes run's log, if any.
func (j *journal) removeLog(w *writerState, run string) error {
	if lg := w.logs[run]; lg != nil {
		_ = lg.f.Close()
		delete(w.logs, run)
	}
	err := os.Remove(filepath.Join(j.dir, logName(run)))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("journal delete %s: %w", run, err)
	}
	return nil
}

// syncDir makes the directory's entries (a created log) durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// putRun stores the run's assignment; it returns once the write is
// durable.
func (j *journal) putRun(r *journalRun) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("journal run %s: %w", r.ID, err)
	}
	if err := j.wait(journalOp{kind: opRun, run: r.ID, val: b}); err != nil {
		return fmt.Errorf("journal run %s: %w", r.ID, err)
	}
	return nil
}

// putSnapshot queues a merged snapshot for the journal and returns; done
// runs exactly once: on the writer goroutine once the snapshot is durable
// (err nil) or its write failed, or here when s does not encode or the
// journal is closed. s is encoded before putSnapshot returns, so the caller
// may change it afterwards; done must not block (it sends the ack).
func (j *journal) putSnapshot(run string, s *surgev1.Snapshot, done func(error)) {
	bp, _ := j.bufs.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	rec, err := proto.MarshalOptions{}.MarshalAppend(append((*bp)[:0], make([]byte, recordHeader)...), s)
	if err == nil && len(rec)-recordHeader > maxRecord {
		err = fmt.Errorf("%d bytes, at most %d", len(rec)-recordHeader, maxRecord)
	}
	if err != nil {
		done(fmt.Errorf("journal snapshot %s/%s/%d: %w", run, s.GetAgentId(), s.GetSeq(), err))
		return
	}
	binary.BigEndian.PutUint32(rec[0:4], uint32(len(rec)-recordHeader))
	binary.BigEndian.PutUint32(rec[4:8], crc32.Checksum(rec[recordHeader:], j.crc))
	*bp = rec
	agent, seq := s.GetAgentId(), s.GetSeq()
	j.enqueue(journalOp{kind: opSnapshot, run: run, rec: bp, done: func(err error) {
		if err != nil {
			err = fmt.Errorf("journal snapshot %s/%s/%d: %w", run, agent, seq, err)
		}
		done(err)
	}})
}

// after runs done on the writer goroutine once every write queued before
// it was handled (a duplicate snapshot's ack waits for the original's
// write this way); on a closed journal it runs done at once.
func (j *journal) after(done func()) {
	j.enqueue(journalOp{kind: opBarrier, done: func(error) { done() }})
}

// deleteRun removes the run's record and snapshots, after every write
// queued before it; later writes for the run are skipped. It returns once
// the record's deletion is durable.
func (j *journal) deleteRun(id string) error {
	if err := j.wait(journalOp{kind: opDeleteRun, run: id}); err != nil {
		return fmt.Errorf("journal delete %s: %w", id, err)
	}
	return nil
}

// restoredRun is a journaled run with its snapshots in journal order.
type restoredRun struct {
	run   *journalRun
	snaps []*surgev1.Snapshot
}

// load returns every journaled run, as of the writes queued before it (it
// runs on the writer goroutine). A record that does not decode is skipped
// and reported in errs; a log's torn or corrupt tail (a write a crash
// interrupted, never acknowledged) is cut off and reported; logs of runs
// without a record (a deletion a crash interrupted) are removed.
func (j *journal) load() (out []restoredRun, errs []error) {
	err := j.wait(journalOp{kind: opBarrier, fn: func(w *writerState) { out, errs = j.loadOn(w) }})
	if err != nil {
		return nil, []error{fmt.Errorf("journal load: %w", err)}
	}
	return out, errs
}

// loadOn is load on the writer goroutine: logs this process has open hold
// whole records only and are neither cut nor removed.
func (j *journal) loadOn(w *writerState) (out []restoredRun, errs []error) {
	_ = j.db.View(func(tx *bolt.Tx) error {
		sb := tx.Bucket(journalSnaps)
		return tx.Bucket(journalRuns).ForEach(func(k, v []byte) error {
			var r journalRun
			if err := json.Unmarshal(v, &r); err != nil {
				errs = append(errs, fmt.Errorf("journal run %s: %w", k, err))
				return nil
			}
			rr := restoredRun{run: &r}
			if b := sb.Bucket(k); b != nil { // an earlier version's
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
	names := map[string]bool{}
	for i := range out {
		rr := &out[i]
		name := logName(rr.run.ID)
		names[name] = true
		snaps, err := j.readLog(filepath.Join(j.dir, name), w.logs[rr.run.ID] == nil)
		if err != nil {
			errs = append(errs, fmt.Errorf("journal snapshots of %s: %w", rr.run.ID, err))
		}
		rr.snaps = append(rr.snaps, snaps...)
	}
	for run := range w.logs {
		names[logName(run)] = true
	}
	ents, err := os.ReadDir(j.dir)
	if err != nil {
		errs = append(errs, fmt.Errorf("journal: %w", err))
	}
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), snapLogExt) || names[e.Name()] {
			continue
		}
		if err := os.Remove(filepath.Join(j.dir, e.Name())); err != nil {
			errs = append(errs, fmt.Errorf("journal: remove the log of an ended run: %w", err))
			continue
		}
		j.stats.orphans.Add(1)
	}
	return out, errs
}

// readLog decodes the snapshots of the log at path (none if it does not
// exist). It stops at a torn or corrupt record, reporting it; with cut it
// also truncates the log there, so later records append to whole ones.
func (j *journal) readLog(path string, cut bool) ([]*surgev1.Snapshot, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var (
		out  []*surgev1.Snapshot
		off  int64
		hdr  [recordHeader]byte
		body []byte
		bad  error
	)
	r := bufio.NewReaderSize(f, 1<<16)
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if !errors.Is(err, io.EOF) {
				bad = fmt.Errorf("torn record header at byte %d", off)
			}
			break
		}
		n := binary.BigEndian.Uint32(hdr[0:4])
		if n > maxRecord {
			bad = fmt.Errorf("record at byte %d: length %d, at most %d", off, n, maxRecord)
			break
		}
		body = slices.Grow(body[:0], int(n))[:n]
		if _, err := io.ReadFull(r, body); err != nil {
			bad = fmt.Errorf("torn record at byte %d", off)
			break
		}
		if crc32.Checksum(body, j.crc) != binary.BigEndian.Uint32(hdr[4:8]) {
			bad = fmt.Errorf("record at byte %d: checksum mismatch", off)
			break
		}
		s := &surgev1.Snapshot{}
		if err := proto.Unmarshal(body, s); err != nil {
			bad = fmt.Errorf("record at byte %d: %w", off, err)
			break
		}
		out = append(out, s)
		off += recordHeader + int64(n)
	}
	if bad == nil {
		return out, nil
	}
	fi, err := f.Stat()
	if err != nil {
		return out, errors.Join(bad, err)
	}
	bad = fmt.Errorf("%w: %d bytes from there on dropped (a write a crash interrupted is never acknowledged)", bad, fi.Size()-off)
	if cut {
		if err := os.Truncate(path, off); err != nil {
			return out, errors.Join(bad, fmt.Errorf("cut the log: %w", err))
		}
	}
	return out, bad
}
