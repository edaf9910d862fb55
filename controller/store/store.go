// Package store is the controller's embedded run store: one bbolt file with
// every run's plan, status, summary and whole-run merged series per region,
// so reports and comparisons can re-merge histograms exactly after a restart.
package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/encoding/protodelim"
	"google.golang.org/protobuf/proto"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
)

// Run statuses as stored. StatusInterrupted marks a run that was running
// when the controller stopped without finalizing it.
const (
	StatusRunning     = "running"
	StatusInterrupted = "interrupted"
)

// ErrNotFound is returned (wrapped) for an unknown run id.
var ErrNotFound = errors.New("run not found")

// Layout: bucket "runs" holds one sub-bucket per run id with the keys below;
// series are kept under "series/<region>" as length-delimited surgev1.Series,
// scenario stats under "scenarios/<region>" and WebSocket stats under
// "websockets/<region>" the same way (runs stored before those existed
// have none).
var (
	bucketRuns       = []byte("runs")
	keyMeta          = []byte("meta")
	keyPlan          = []byte("plan")
	keySummary       = []byte("summary")
	seriesPrefix     = "series/"
	scenariosPrefix  = "scenarios/"
	websocketsPrefix = "websockets/"
)

// maxSeriesSize bounds one stored series message, bytes.
const maxSeriesSize int64 = 64 << 20

// Info is a run's metadata.
type Info struct {
	ID        string    `json:"id"`
	PlanName  string    `json:"plan_name"`
	Status    string    `json:"status"`
	Verdict   string    `json:"verdict,omitempty"`
	StartedAt time.Time `json:"started_at"`
	// Tags are the run's tags (the plan's and the submitter's).
	Tags map[string]string `json:"tags,omitempty"`
}

// Run is everything stored about one run.
type Run struct {
	Info
	// PlanYAML is the plan's source as submitted.
	PlanYAML []byte
	// Summary is nil until the run has one.
	Summary *surgev1.RunSummary
	// Series is the whole-run merged series per region.
	Series map[string][]*surgev1.Series
	// Scenarios are the whole-run scenario stats per region: counters
	// summed over the run, gauges (conns_open, VUs) as at its end; nil for
	// runs stored without them.
	Scenarios map[string][]*surgev1.ScenarioStats
	// WebSockets are the whole-run WebSocket stats per region and step:
	// counters summed, histograms merged, sessions_active as at the end.
	WebSockets map[string][]*surgev1.WebSocketStats
}

// delimited encodes messages back to back, length-delimited.
func delimited[M proto.Message](list []M) ([]byte, error) {
	var buf bytes.Buffer
	for _, m := range list {
		if _, err := protodelim.MarshalTo(&buf, m); err != nil {
			return nil, err
		}
	}
	return buf.Bytes(), nil
}

// undelimited decodes what delimited encoded; newM makes an empty message.
func undelimited[M proto.Message](data []byte, newM func() M) ([]M, error) {
	rd := bytes.NewReader(data)
	opts := protodelim.UnmarshalOptions{MaxSize: maxSeriesSize}
	var out []M
	for rd.Len() > 0 {
		m := newM()
		if err := opts.UnmarshalFrom(rd, m); err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

// Store is a bbolt-backed run store, safe for concurrent use.
type Store struct {
	db *bolt.DB
}

// Open opens (creating if needed) the store at path.
func Open(path string) (*Store, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketRuns)
		return err
	}); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("store: init: %w", err)
	}
	return &Store{db: db}, nil
}

// Close closes the store.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("store: close: %w", err)
	}
	return nil
}

// Put writes r entirely, replacing what was stored under its id.
func (s *Store) Put(r *Run) error {
	if r.ID == "" {
		return errors.New("store: put: empty run id")
	}
	meta, err := json.Marshal(r.Info)
	if err != nil {
		return fmt.Errorf("store: put %s: %w", r.ID, err)
	}
	var summary []byte
	if r.Summary != nil {
		if summary, err = proto.Marshal(r.Summary); err != nil {
			return fmt.Errorf("store: put %s: summary: %w", r.ID, err)
		}
	}
	series := make(map[string][]byte, len(r.Series)+len(r.Scenarios)+len(r.WebSockets))
	for region, list := range r.Series {
		if series[seriesPrefix+region], err = delimited(list); err != nil {
			return fmt.Errorf("store: put %s: series %s: %w", r.ID, region, err)
		}
	}
	for region, list := range r.Scenarios {
		if series[scenariosPrefix+region], err = delimited(list); err != nil {
			return fmt.Errorf("store: put %s: scenarios %s: %w", r.ID, region, err)
		}
	}
	for region, list := range r.WebSockets {
		if series[websocketsPrefix+region], err = delimited(list); err != nil {
			return fmt.Errorf("store: put %s: websockets %s: %w", r.ID, region, err)
		}
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		root := tx.Bucket(bucketRuns)
		if root.Bucket([]byte(r.ID)) != nil {
			if err := root.DeleteBucket([]byte(r.ID)); err != nil {
				return err
			}
		}
		b, err := root.CreateBucket([]byte(r.ID))
		if err != nil {
			return err
		}
		if err := b.Put(keyMeta, meta); err != nil {
			return err
		}
		if err := b.Put(keyPlan, r.PlanYAML); err != nil {
			return err
		}
		if summary != nil {
			if err := b.Put(keySummary, summary); err != nil {
				return err
			}
		}
		for key, data := range series {
			if err := b.Put([]byte(key), data); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: put %s: %w", r.ID, err)
	}
	return nil
}

// Get reads one run, series included.
func (s *Store) Get(id string) (*Run, error) {
	var r *Run
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRuns).Bucket([]byte(id))
		if b == nil {
			return fmt.Errorf("%w: %q", ErrNotFound, id)
		}
		var err error
		r, err = decodeRun(b)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: get: %w", err)
	}
	return r, nil
}

func decodeRun(b *bolt.Bucket) (*Run, error) {
	r := &Run{Series: map[string][]*surgev1.Series{}}
	if err := json.Unmarshal(b.Get(keyMeta), &r.Info); err != nil {
		return nil, fmt.Errorf("decode meta: %w", err)
	}
	r.PlanYAML = slices.Clone(b.Get(keyPlan))
	if data := b.Get(keySummary); data != nil {
		r.Summary = &surgev1.RunSummary{}
		if err := proto.Unmarshal(data, r.Summary); err != nil {
			return nil, fmt.Errorf("decode summary of %s: %w", r.ID, err)
		}
	}
	err := eachPrefixed(b, seriesPrefix, func(region string, v []byte) (err error) {
		r.Series[region], err = undelimited(v, func() *surgev1.Series { return &surgev1.Series{} })
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("decode series of %s: %w", r.ID, err)
	}
	err = eachPrefixed(b, scenariosPrefix, func(region string, v []byte) (err error) {
		if r.Scenarios == nil {
			r.Scenarios = map[string][]*surgev1.ScenarioStats{}
		}
		r.Scenarios[region], err = undelimited(v, func() *surgev1.ScenarioStats { return &surgev1.ScenarioStats{} })
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("decode scenario stats of %s: %w", r.ID, err)
	}
	err = eachPrefixed(b, websocketsPrefix, func(region string, v []byte) (err error) {
		if r.WebSockets == nil {
			r.WebSockets = map[string][]*surgev1.WebSocketStats{}
		}
		r.WebSockets[region], err = undelimited(v, func() *surgev1.WebSocketStats { return &surgev1.WebSocketStats{} })
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("decode websocket stats of %s: %w", r.ID, err)
	}
	return r, nil
}

// eachPrefixed calls f with the region and value of every key of b under
// prefix, stopping at the first error (which names the region).
func eachPrefixed(b *bolt.Bucket, prefix string, f func(region string, v []byte) error) error {
	c := b.Cursor()
	p := []byte(prefix)
	for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
		region := strings.TrimPrefix(string(k), prefix)
		if err := f(region, v); err != nil {
			return fmt.Errorf("region %s: %w", region, err)
		}
	}
	return nil
}

// List returns every run's metadata, newest first (run ids sort by time).
func (s *Store) List() ([]Info, error) {
	var out []Info
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRuns).ForEachBucket(func(k []byte) error {
			var info Info
			if err := json.Unmarshal(tx.Bucket(bucketRuns).Bucket(k).Get(keyMeta), &info); err != nil {
				return fmt.Errorf("decode meta of %s: %w", k, err)
			}
			out = append(out, info)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store: list: %w", err)
	}
	slices.SortFunc(out, func(a, b Info) int {
		if c := b.StartedAt.Compare(a.StartedAt); c != 0 {
			return c
		}
		return strings.Compare(b.ID, a.ID)
	})
	return out, nil
}

// MarkInterrupted sets every run still marked running to interrupted (and
// its stored summary's status too) and returns their ids.
func (s *Store) MarkInterrupted() ([]string, error) {
	var ids []string
	err := s.db.Update(func(tx *bolt.Tx) error {
		root := tx.Bucket(bucketRuns)
		return root.ForEachBucket(func(k []byte) error {
			b := root.Bucket(k)
			var info Info
			if err := json.Unmarshal(b.Get(keyMeta), &info); err != nil {
				return fmt.Errorf("decode meta of %s: %w", k, err)
			}
			if info.Status != StatusRunning {
				return nil
			}
			info.Status, info.Verdict = StatusInterrupted, "fail"
			meta, err := json.Marshal(info)
			if err != nil {
				return err
			}
			if err := b.Put(keyMeta, meta); err != nil {
				return err
			}
			if data := b.Get(keySummary); data != nil {
				sum := &surgev1.RunSummary{}
				if err := proto.Unmarshal(data, sum); err != nil {
					return fmt.Errorf("decode summary of %s: %w", k, err)
				}
				sum.Status, sum.Verdict = StatusInterrupted, "fail"
				if data, err = proto.Marshal(sum); err != nil {
					return err
				}
				if err := b.Put(keySummary, data); err != nil {
					return err
				}
			}
			ids = append(ids, info.ID)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store: mark interrupted: %w", err)
	}
	return ids, nil
}
