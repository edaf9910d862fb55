package journal

import (
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

type opKind uint8

const (
	opBarrier   opKind = iota // no write: done runs after the writes before it
	opSnapshot                // append rec to the run's snapshot log
	opRun                     // put the run record val
	opDeleteRun               // delete the run's record and snapshots
)

// write is one queued write. done, if set, runs on the writer goroutine
// once the write is durable (err nil) or failed.
type write struct {
	kind opKind
	run  string
	val  []byte  // opRun: the record
	rec  *[]byte // opSnapshot: the log record, from bufs
	// fn, with opBarrier, runs on the writer goroutine before done (load).
	fn   func(w *writerState)
	done func(error)
}

// writerState is the writer goroutine's own.
type writerState struct {
	logs    map[string]*snapLog // open logs by run
	deleted map[string]bool     // runs deleted by this process (an id each)
	batch   []write
	errs    []error
}

// writer is the journal's goroutine: it takes what is queued (up to
// maxBatch writes), makes it durable together, then runs the
// completions in queue order. It returns once close closed the queue and
// every write queued before was handled, closing the logs.
func (j *Journal) writer() {
	defer close(j.done)
	w := &writerState{logs: map[string]*snapLog{}, deleted: map[string]bool{},
		batch: make([]write, 0, maxBatch), errs: make([]error, 0, maxBatch)}
	defer func() {
		for _, lg := range w.logs {
			_ = lg.f.Close()
		}
	}()
	for op := range j.q {
		w.batch = append(w.batch[:0], op)
	fill:
		for len(w.batch) < maxBatch {
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
			w.batch[i] = write{} // drop the references
		}
	}
}

// commit makes w.batch durable, in order, and returns each write's
// outcome: snapshots appended to their logs, each log synced once (and the
// directory, when a log was created), then the assignment changes in one
// bbolt transaction, then the logs of deleted runs removed. A batch of
// barriers only writes nothing.
func (j *Journal) commit(w *writerState, errs []error) []error {
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
	appended, created, meta := j.appendSnapshots(w, errs)
	j.syncLogs(w, errs, appended, created)
	if len(meta) > 0 {
		j.commitRuns(w, errs, meta)
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

// appendSnapshots appends the batch's snapshots to their logs and returns
// the batch indices appended to each log, whether a log was created, and
// the indices of the run record puts and deletes, in order. Writes for a
// run deleted before them fail with errRunDeleted.
func (j *Journal) appendSnapshots(w *writerState, errs []error) (appended map[*snapLog][]int, created bool, meta []int) {
	deleting := map[string]bool{} // deletions in this batch so far
	appended = map[*snapLog][]int{}
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
	return appended, created, meta
}

// syncLogs syncs each appended log once, and the directory when a log was
// created; a failed sync fails the snapshots appended to it.
func (j *Journal) syncLogs(w *writerState, errs []error, appended map[*snapLog][]int, created bool) {
	for lg, ops := range appended {
		if err := lg.f.Sync(); err != nil {
			for _, i := range ops {
				errs[i] = fmt.Errorf("journal snapshot of %s: sync: %w", w.batch[i].run, err)
			}
		}
	}
	if !created {
		return
	}
	if err := syncDir(j.dir); err != nil {
		for _, ops := range appended {
			for _, i := range ops {
				errs[i] = cmpErr(errs[i], fmt.Errorf("journal snapshot of %s: %w", w.batch[i].run, err))
			}
		}
	}
}

// commitRuns puts and deletes the run records of w.batch[meta] in one bbolt
// transaction, then removes the logs of the deleted runs.
func (j *Journal) commitRuns(w *writerState, errs []error, meta []int) {
	err := j.db.Update(func(tx *bolt.Tx) error {
		runs, snaps := tx.Bucket(bucketRuns), tx.Bucket(bucketSnaps)
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

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}
