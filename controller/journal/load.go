package journal

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
)

// loadOn is load on the writer goroutine: logs this process has open hold
// whole records only and are neither cut nor removed.
func (j *Journal) loadOn(w *writerState) (out []Restored, errs []error) {
	_ = j.db.View(func(tx *bolt.Tx) error {
		sb := tx.Bucket(bucketSnaps)
		return tx.Bucket(bucketRuns).ForEach(func(k, v []byte) error {
			var r Run
			if err := json.Unmarshal(v, &r); err != nil {
				errs = append(errs, fmt.Errorf("journal run %s: %w", k, err))
				return nil
			}
			rr := Restored{Run: &r}
			if b := sb.Bucket(k); b != nil { // an earlier version's
				_ = b.ForEach(func(_, v []byte) error {
					s := &surgev1.Snapshot{}
					if err := proto.Unmarshal(v, s); err != nil {
						errs = append(errs, fmt.Errorf("journal snapshot of %s: %w", k, err))
						return nil
					}
					rr.Snaps = append(rr.Snaps, s)
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
		name := logName(rr.Run.ID)
		names[name] = true
		snaps, err := j.readLog(filepath.Join(j.dir, name), w.logs[rr.Run.ID] == nil)
		if err != nil {
			errs = append(errs, fmt.Errorf("journal snapshots of %s: %w", rr.Run.ID, err))
		}
		rr.Snaps = append(rr.Snaps, snaps...)
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
