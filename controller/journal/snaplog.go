package journal

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
)

// snapLog is one run's open snapshot log; size is its length after the
// last complete record.
type snapLog struct {
	f    *os.File
	size int64
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
func (j *Journal) openLog(w *writerState, run string) (lg *snapLog, created bool, err error) {
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
func (j *Journal) removeLog(w *writerState, run string) error {
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

// readLog decodes the snapshots of the log at path (none if it does not
// exist). It stops at a torn or corrupt record, reporting it; with cut it
// also truncates the log there, so later records append to whole ones.
func (j *Journal) readLog(path string, cut bool) ([]*surgev1.Snapshot, error) {
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
		if n > MaxRecord {
			bad = fmt.Errorf("record at byte %d: length %d, at most %d", off, n, MaxRecord)
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
