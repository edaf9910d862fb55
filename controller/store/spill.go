package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"
)

// Spill queues are durable FIFO queues of opaque items, for sinks whose
// in-memory queue is full (InfluxDB down): bucket "spill" holds one
// sub-bucket per queue name, keyed by a sequence number (8 bytes, big
// endian), so items come back in the order they were appended, across
// controller restarts.
var bucketSpill = []byte("spill")

// SpillItem is one queued item and its position.
type SpillItem struct {
	Seq  uint64
	Data []byte
}

// SpillAppend appends items to queue, in order.
func (s *Store) SpillAppend(queue string, items ...[]byte) error {
	if queue == "" {
		return errors.New("store: spill append: empty queue name")
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		root, err := tx.CreateBucketIfNotExists(bucketSpill)
		if err != nil {
			return err
		}
		b, err := root.CreateBucketIfNotExists([]byte(queue))
		if err != nil {
			return err
		}
		for _, it := range items {
			seq, err := b.NextSequence()
			if err != nil {
				return err
			}
			if err := b.Put(binary.BigEndian.AppendUint64(nil, seq), it); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: spill append %s: %w", queue, err)
	}
	return nil
}

// SpillPeek returns up to n of queue's oldest items without removing them.
func (s *Store) SpillPeek(queue string, n int) ([]SpillItem, error) {
	var out []SpillItem
	err := s.db.View(func(tx *bolt.Tx) error {
		b := spillBucket(tx, queue)
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for k, v := c.First(); k != nil && len(out) < n; k, v = c.Next() {
			out = append(out, SpillItem{Seq: binary.BigEndian.Uint64(k), Data: slices.Clone(v)})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: spill peek %s: %w", queue, err)
	}
	return out, nil
}

// SpillDelete removes queue's items with a sequence number ≤ upTo.
func (s *Store) SpillDelete(queue string, upTo uint64) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := spillBucket(tx, queue)
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for k, _ := c.First(); k != nil && binary.BigEndian.Uint64(k) <= upTo; k, _ = c.First() {
			if err := c.Delete(); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: spill delete %s: %w", queue, err)
	}
	return nil
}

// SpillLen counts queue's items.
func (s *Store) SpillLen(queue string) (int, error) {
	var n int
	err := s.db.View(func(tx *bolt.Tx) error {
		if b := spillBucket(tx, queue); b != nil {
			n = b.Stats().KeyN
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("store: spill len %s: %w", queue, err)
	}
	return n, nil
}

func spillBucket(tx *bolt.Tx, queue string) *bolt.Bucket {
	root := tx.Bucket(bucketSpill)
	if root == nil {
		return nil
	}
	return root.Bucket([]byte(queue))
}
