package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/encoding/protodelim"
	"google.golang.org/protobuf/proto"

	surgev1 "github.com/surgeload/surge/gen/surge/v1"
)

// Interval records live apart from the runs bucket (Put replaces a run's
// bucket whole): bucket "intervals" holds one sub-bucket per run id, keyed by
// the interval index (8 bytes, big endian, so a cursor walks them in order).
var bucketIntervals = []byte("intervals")

// IntervalRecord is one emitted interval of a run: the merged series of every
// region over [Start, Start+interval). A late snapshot rewrites the record.
type IntervalRecord struct {
	// Index is the interval index since the run's start.
	Index int64
	// Start is the interval's start in the controller's clock.
	Start time.Time
	// EmittedAt is when the controller first emitted the interval (a
	// rewrite keeps it), so emission lag is Start+interval → EmittedAt.
	EmittedAt time.Time
	// Regions maps each region to its merged series, sorted by key. Only
	// regions with measurements appear; there is no "all" entry.
	Regions map[string][]*surgev1.Series
	// Scenarios and WebSockets are the interval's merged scenario stats
	// (connections, iterations, VUs) and WebSocket stats per region; nil
	// in records stored before they existed.
	Scenarios  map[string][]*surgev1.ScenarioStats
	WebSockets map[string][]*surgev1.WebSocketStats
}

// PutInterval stores rec under run id, replacing the record of the same index
// but keeping the first EmittedAt.
func (s *Store) PutInterval(runID string, rec IntervalRecord) error {
	if runID == "" {
		return errors.New("store: put interval: empty run id")
	}
	key := indexKey(rec.Index)
	err := s.db.Update(func(tx *bolt.Tx) error {
		root, err := tx.CreateBucketIfNotExists(bucketIntervals)
		if err != nil {
			return err
		}
		b, err := root.CreateBucketIfNotExists([]byte(runID))
		if err != nil {
			return err
		}
		if old := b.Get(key); old != nil {
			if prev, err := decodeInterval(old); err == nil && !prev.EmittedAt.IsZero() {
				rec.EmittedAt = prev.EmittedAt
			}
		}
		data, err := encodeInterval(rec)
		if err != nil {
			return err
		}
		return b.Put(key, data)
	})
	if err != nil {
		return fmt.Errorf("store: put interval %d of %s: %w", rec.Index, runID, err)
	}
	return nil
}

// Intervals returns run id's interval records in index order; none (and no
// error) for a run without any.
func (s *Store) Intervals(runID string) ([]IntervalRecord, error) {
	var out []IntervalRecord
	err := s.db.View(func(tx *bolt.Tx) error {
		root := tx.Bucket(bucketIntervals)
		if root == nil {
			return nil
		}
		b := root.Bucket([]byte(runID))
		if b == nil {
			return nil
		}
		return b.ForEach(func(_, v []byte) error {
			rec, err := decodeInterval(v)
			if err != nil {
				return err
			}
			out = append(out, rec)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store: intervals of %s: %w", runID, err)
	}
	return out, nil
}

func indexKey(i int64) []byte {
	return binary.BigEndian.AppendUint64(nil, uint64(i))
}

// Record layout: index (varint), start and emitted (varint Unix ns), then
// the series section; since scenario and WebSocket stats were added, a
// scenarios section and a websockets section follow (older records end
// after the series). A section is a region count (uvarint), then per region
// (sorted): name length (uvarint), name, message count (uvarint),
// length-delimited messages.
func encodeInterval(rec IntervalRecord) ([]byte, error) {
	var buf bytes.Buffer
	buf.Write(binary.AppendVarint(nil, rec.Index))
	buf.Write(binary.AppendVarint(nil, unixNano(rec.Start)))
	buf.Write(binary.AppendVarint(nil, unixNano(rec.EmittedAt)))
	if err := encodeSection(&buf, rec.Regions); err != nil {
		return nil, fmt.Errorf("encode series: %w", err)
	}
	if err := encodeSection(&buf, rec.Scenarios); err != nil {
		return nil, fmt.Errorf("encode scenario stats: %w", err)
	}
	if err := encodeSection(&buf, rec.WebSockets); err != nil {
		return nil, fmt.Errorf("encode websocket stats: %w", err)
	}
	return buf.Bytes(), nil
}

func encodeSection[M proto.Message](buf *bytes.Buffer, byRegion map[string][]M) error {
	regions := slices.Sorted(maps.Keys(byRegion))
	buf.Write(binary.AppendUvarint(nil, uint64(len(regions))))
	for _, r := range regions {
		buf.Write(binary.AppendUvarint(nil, uint64(len(r))))
		buf.WriteString(r)
		list := byRegion[r]
		buf.Write(binary.AppendUvarint(nil, uint64(len(list))))
		for _, m := range list {
			if _, err := protodelim.MarshalTo(buf, m); err != nil {
				return fmt.Errorf("region %s: %w", r, err)
			}
		}
	}
	return nil
}

// decodeSection reads what encodeSection wrote; newM makes an empty message.
func decodeSection[M proto.Message](rd *bytes.Reader, newM func() M) (map[string][]M, error) {
	n, err := binary.ReadUvarint(rd)
	if err != nil || n > uint64(rd.Len()) {
		return nil, fmt.Errorf("%w: region count", errCorrupt)
	}
	out := make(map[string][]M, n)
	opts := protodelim.UnmarshalOptions{MaxSize: maxSeriesSize}
	for range n {
		l, err := binary.ReadUvarint(rd)
		if err != nil || l > uint64(rd.Len()) {
			return nil, fmt.Errorf("%w: region name", errCorrupt)
		}
		name := make([]byte, l)
		if _, err := io.ReadFull(rd, name); err != nil {
			return nil, fmt.Errorf("%w: region name: %w", errCorrupt, err)
		}
		cnt, err := binary.ReadUvarint(rd)
		if err != nil || cnt > uint64(rd.Len()) {
			return nil, fmt.Errorf("%w: message count", errCorrupt)
		}
		list := make([]M, 0, cnt)
		for range cnt {
			m := newM()
			if err := opts.UnmarshalFrom(rd, m); err != nil {
				return nil, fmt.Errorf("%w: message of %s: %w", errCorrupt, name, err)
			}
			list = append(list, m)
		}
		out[string(name)] = list
	}
	return out, nil
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNano(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

var errCorrupt = errors.New("corrupt interval record")

func decodeInterval(data []byte) (IntervalRecord, error) {
	rd := bytes.NewReader(data)
	var rec IntervalRecord
	idx, err := binary.ReadVarint(rd)
	if err != nil {
		return rec, fmt.Errorf("%w: index: %w", errCorrupt, err)
	}
	start, err := binary.ReadVarint(rd)
	if err != nil {
		return rec, fmt.Errorf("%w: start: %w", errCorrupt, err)
	}
	emitted, err := binary.ReadVarint(rd)
	if err != nil {
		return rec, fmt.Errorf("%w: emitted: %w", errCorrupt, err)
	}
	rec.Index, rec.Start, rec.EmittedAt = idx, fromUnixNano(start), fromUnixNano(emitted)
	if rec.Regions, err = decodeSection(rd, func() *surgev1.Series { return &surgev1.Series{} }); err != nil {
		return rec, fmt.Errorf("series: %w", err)
	}
	if rd.Len() == 0 { // stored before scenario and WebSocket stats
		return rec, nil
	}
	if rec.Scenarios, err = decodeSection(rd, func() *surgev1.ScenarioStats { return &surgev1.ScenarioStats{} }); err != nil {
		return rec, fmt.Errorf("scenario stats: %w", err)
	}
	if rec.WebSockets, err = decodeSection(rd, func() *surgev1.WebSocketStats { return &surgev1.WebSocketStats{} }); err != nil {
		return rec, fmt.Errorf("websocket stats: %w", err)
	}
	if rd.Len() != 0 {
		return rec, fmt.Errorf("%w: %d trailing bytes", errCorrupt, rd.Len())
	}
	return rec, nil
}
