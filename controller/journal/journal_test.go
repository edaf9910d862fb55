package journal

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	"github.com/surgeload/surge/cluster/clustertest"
	surgev1 "github.com/surgeload/surge/gen/surge/v1"
)

// TestMain checks that no writer goroutine outlives the tests.
func TestMain(m *testing.M) {
	clustertest.VerifyTestMain(m)
}

const waitFor = 15 * time.Second

// heldJournal opens a journal whose writer stops before its first
// transaction until release is closed; inFlight closes when it got there.
func heldJournal(t *testing.T) (j *Journal, inFlight <-chan struct{}, release chan struct{}) {
	t.Helper()
	j, err := Open(filepath.Join(t.TempDir(), "journal.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := j.Close(); err != nil {
			t.Error(err)
		}
	})
	in, rel := make(chan struct{}), make(chan struct{})
	var once sync.Once
	j.beforeCommit = func() {
		once.Do(func() {
			close(in)
			<-rel
		})
	}
	return j, in, rel
}

func waitClosed(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(waitFor):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// readable says whether the journal holds run's snapshot (agent, seq).
// Call it on the writer goroutine (a completion), or with no writes
// queued.
func readable(j *Journal, run, agent string, seq uint64) bool {
	snaps, err := j.readLog(filepath.Join(j.dir, logName(run)), false)
	if err != nil {
		return false
	}
	return slices.ContainsFunc(snaps, func(s *surgev1.Snapshot) bool { return s.GetAgentId() == agent && s.GetSeq() == seq })
}

// ackLog records completions in the order they ran, and whether each
// snapshot was readable from the journal when its ack went.
type ackLog struct {
	mu     sync.Mutex
	seqs   []uint64
	unread []uint64
	errs   []error
}

func (l *ackLog) ack(j *Journal, run, agent string, seq uint64) func(error) {
	return func(err error) {
		ok := j == nil || readable(j, run, agent, seq)
		l.mu.Lock()
		defer l.mu.Unlock()
		l.seqs = append(l.seqs, seq)
		if err != nil {
			l.errs = append(l.errs, err)
		}
		if !ok {
			l.unread = append(l.unread, seq)
		}
	}
}

func (l *ackLog) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.seqs)
}

func waitCount(t *testing.T, l *ackLog, n int) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for l.count() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d completions ran", l.count(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

func snap(agent string, seq uint64) *surgev1.Snapshot {
	return &surgev1.Snapshot{RunId: "r1", AgentId: agent, Seq: seq, Epoch: 1, Interval: int64(seq)}
}

// Snapshots queued while a commit is in flight are committed together, in
// fewer transactions than snapshots, and each ack runs only once its
// snapshot is readable from the journal, in queue order; a barrier (a
// duplicate's ack) runs after every write queued before it.
func TestJournalGroupCommit(t *testing.T) {
	j, inFlight, release := heldJournal(t)
	var l ackLog
	j.PutSnapshot("r1", snap("a", 0), l.ack(j, "r1", "a", 0))
	waitClosed(t, inFlight, "the first commit")
	const n = 300
	for seq := uint64(1); seq <= n; seq++ {
		agent := []string{"a", "b", "c"}[seq%3]
		j.PutSnapshot("r1", snap(agent, seq), l.ack(j, "r1", agent, seq))
	}
	barrier := make(chan int, 1)
	j.After(func() { barrier <- l.count() })
	close(release)
	waitCount(t, &l, n+1)
	select {
	case got := <-barrier:
		if got != n+1 {
			t.Errorf("barrier ran after %d of %d acks", got, n+1)
		}
	case <-time.After(waitFor):
		t.Fatal("barrier never ran")
	}

	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.errs) > 0 || len(l.unread) > 0 {
		t.Fatalf("errors %v; acked before readable: %v", l.errs, l.unread)
	}
	for i, seq := range l.seqs {
		if seq != uint64(i) {
			t.Fatalf("ack %d was for seq %d: acks out of queue order", i, seq)
		}
	}
	commits, writes := j.stats.commits.Load(), j.stats.writes.Load()
	t.Logf("%d snapshots in %d group commits", writes, commits)
	if writes != n+1 || commits > 3 {
		t.Errorf("%d writes in %d transactions; want %d writes in at most 3 (one in flight, the rest grouped)", writes, commits, n+1)
	}
}

// A run's deletion is ordered with the writes queued before it, and a
// write for a deleted run is skipped and counted: no bucket is left behind,
// and a restarted controller finds nothing to restore.
func TestJournalDeleteOrdering(t *testing.T) {
	j, inFlight, release := heldJournal(t)
	var l ackLog
	if err := func() error { // the run record, committed first
		go func() { <-inFlight; close(release) }()
		return j.PutRun(&Run{ID: "r1"})
	}(); err != nil {
		t.Fatal(err)
	}

	// Writes queued, then the delete: all in one batch behind a held commit.
	hold := make(chan struct{})
	held := make(chan struct{})
	j.PutSnapshot("r0", snap("a", 1), func(error) { close(held); <-hold })
	waitClosed(t, held, "a completion to hold the writer")
	for seq := uint64(1); seq <= 5; seq++ {
		j.PutSnapshot("r1", snap("a", seq), l.ack(j, "r1", "a", seq))
	}
	delErr := make(chan error, 1)
	go func() { delErr <- j.DeleteRun("r1") }()
	deadline := time.Now().Add(waitFor)
	for len(j.q) < 6 { // the five writes and the delete are queued
		if time.Now().After(deadline) {
			t.Fatalf("%d writes queued, want 6", len(j.q))
		}
		time.Sleep(time.Millisecond)
	}
	close(hold)
	if err := <-delErr; err != nil {
		t.Fatal(err)
	}
	waitCount(t, &l, 5)
	if len(l.errs) > 0 {
		t.Fatalf("writes before the delete: %v", l.errs)
	}

	// A late write after the delete: skipped, counted, no bucket.
	lateErr := make(chan error, 1)
	j.PutSnapshot("r1", snap("a", 6), func(err error) { lateErr <- err })
	if err := <-lateErr; !errors.Is(err, errRunDeleted) {
		t.Errorf("late write: %v, want errRunDeleted", err)
	}
	if err := j.PutRun(&Run{ID: "r1"}); !errors.Is(err, errRunDeleted) {
		t.Errorf("late run record: %v, want errRunDeleted", err)
	}
	if got := j.stats.afterDelete.Load(); got != 2 {
		t.Errorf("writes skipped after delete: %d, want 2", got)
	}
	if _, err := os.Stat(filepath.Join(j.dir, logName("r1"))); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the deleted run's snapshot log is back: %v", err)
	}
	_ = j.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketRuns).Get([]byte("r1")) != nil {
			t.Error("the deleted run's record is back")
		}
		return nil
	})
	if runs, errs := j.Load(); len(runs) != 0 || len(errs) != 0 {
		t.Errorf("load after delete: %d runs, errors %v", len(runs), errs)
	}
}

// A full queue makes the writer's client wait (counted), and nothing is
// dropped; close commits what is queued, and later writes fail. (Acks
// follow durability in TestJournalGroupCommit; here they are counted.)
func TestJournalBackpressureAndClose(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "journal.db")
	j, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	inFlight, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	j.beforeCommit = func() { once.Do(func() { close(inFlight); <-release }) }
	var l ackLog
	j.PutSnapshot("r1", snap("a", 0), l.ack(nil, "r1", "a", 0))
	waitClosed(t, inFlight, "the first commit")
	for seq := uint64(1); seq <= queueLen; seq++ {
		j.PutSnapshot("r1", snap("a", seq), l.ack(nil, "r1", "a", seq))
	}
	if got := j.stats.waits.Load(); got != 0 {
		t.Fatalf("%d waits while the queue had room", got)
	}
	last := uint64(queueLen + 1)
	sent := make(chan struct{})
	go func() {
		j.PutSnapshot("r1", snap("a", last), l.ack(nil, "r1", "a", last))
		close(sent)
	}()
	deadline := time.Now().Add(waitFor)
	for j.stats.waits.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("a write to a full queue did not wait")
		}
		time.Sleep(time.Millisecond)
	}
	closed := make(chan error, 1)
	go func() { <-sent; closed <- j.Close() }()
	close(release)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if got := l.count(); got != int(last)+1 || len(l.errs) > 0 || len(l.unread) > 0 {
		t.Fatalf("%d of %d completions; errors %v; unreadable %d", got, last+1, l.errs, len(l.unread))
	}
	afterClose := make(chan error, 1)
	j.PutSnapshot("r1", snap("a", last+1), func(err error) { afterClose <- err })
	if err := <-afterClose; !errors.Is(err, errClosed) {
		t.Errorf("write after close: %v", err)
	}
	if err := j.DeleteRun("r1"); !errors.Is(err, errClosed) {
		t.Errorf("delete after close: %v", err)
	}

	// Everything acked is in the file.
	j2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := j2.Close(); err != nil {
			t.Error(err)
		}
	}()
	snaps, err := j2.readLog(filepath.Join(j2.dir, logName("r1")), false)
	if n := len(snaps); err != nil || n != int(last)+1 {
		t.Errorf("reopened journal holds %d snapshots (%v), want %d", len(snaps), err, last+1)
	}
}

// load replays every run's snapshots: those in its log, and those an
// earlier version kept in journal.db; it cuts a torn tail off a log (and
// says so), so what is appended afterwards loads too, and removes the log
// of a run with no record.
func TestJournalLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "journal.db")
	j, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	odd := "run/with spaces"
	for _, id := range []string{"r1", odd} {
		if err := j.PutRun(&Run{ID: id}); err != nil {
			t.Fatal(err)
		}
	}
	put := func(j *Journal, run string, seq uint64) {
		t.Helper()
		errc := make(chan error, 1)
		j.PutSnapshot(run, snap("a", seq), func(err error) { errc <- err })
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	put(j, "r1", 1)
	put(j, "r1", 2)
	put(j, odd, 1)
	put(j, "ended", 1) // no run record: an orphan log
	// An earlier version's snapshot in journal.db.
	legacy, err := proto.Marshal(snap("b", 7))
	if err != nil {
		t.Fatal(err)
	}
	if err := j.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.Bucket(bucketSnaps).CreateBucketIfNotExists([]byte("r1"))
		if err != nil {
			return err
		}
		return b.Put([]byte("b\x00\x00\x00\x00\x00\x00\x00\x00\x07"), legacy)
	}); err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if logName(odd) == odd+snapLogExt || strings.ContainsAny(logName(odd), "/ ") {
		t.Errorf("log name of %q: %q", odd, logName(odd))
	}
	// A crash in the middle of the third record.
	logPath := filepath.Join(dir, "journal", logName("r1"))
	f, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte{0, 0, 0, 40, 1, 2, 3, 4, 5}); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()

	load := func() map[string][]string {
		t.Helper()
		j, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := j.Close(); err != nil {
				t.Error(err)
			}
		}()
		runs, errs := j.Load()
		got := map[string][]string{}
		for _, rr := range runs {
			for _, s := range rr.Snaps {
				got[rr.Run.ID] = append(got[rr.Run.ID], fmt.Sprintf("%s/%d", s.GetAgentId(), s.GetSeq()))
			}
			slices.Sort(got[rr.Run.ID])
		}
		for _, err := range errs {
			got["errors"] = append(got["errors"], err.Error())
		}
		if j.stats.orphans.Load() > 0 {
			got["orphans"] = []string{fmt.Sprint(j.stats.orphans.Load())}
		}
		put(j, "r1", 3)
		return got
	}
	first := load()
	if !slices.Equal(first["r1"], []string{"a/1", "a/2", "b/7"}) || !slices.Equal(first[odd], []string{"a/1"}) {
		t.Errorf("loaded %v", first)
	}
	if len(first["errors"]) != 1 || !strings.Contains(first["errors"][0], "torn record at byte") {
		t.Errorf("errors %q, want the torn tail", first["errors"])
	}
	if !slices.Equal(first["orphans"], []string{"1"}) {
		t.Errorf("orphan logs removed: %v, want 1", first["orphans"])
	}
	// The tail was cut: the record appended after it loads.
	second := load()
	if !slices.Equal(second["r1"], []string{"a/1", "a/2", "a/3", "b/7"}) || len(second["errors"]) != 0 || len(second["orphans"]) != 0 {
		t.Errorf("after the cut: %v", second)
	}
}

// BenchmarkJournalSnapshots measures queued snapshot writes of 20 KB, the
// size of a 20-series snapshot, acked after their group commit.
func BenchmarkJournalSnapshots(b *testing.B) {
	j, err := Open(filepath.Join(b.TempDir(), "journal.db"))
	if err != nil {
		b.Fatal(err)
	}
	s := snap("a", 0)
	s.Series = []*surgev1.Series{{Latency: &surgev1.Histogram{Sparse: make([]byte, 20<<10)}}}
	var wg sync.WaitGroup
	b.SetBytes(20 << 10)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		s.AgentId = []string{"a", "b", "c", "d"}[i%4]
		s.Seq = uint64(i)
		wg.Add(1)
		j.PutSnapshot("r1", s, func(error) { wg.Done() })
	}
	wg.Wait()
	b.ReportMetric(float64(j.stats.writes.Load())/float64(j.stats.commits.Load()), "writes/commit")
	if err := j.Close(); err != nil {
		b.Fatal(err)
	}
}
