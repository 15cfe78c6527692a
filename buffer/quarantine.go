package buffer

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// QuarantineItem is an input that could not be turned into an event, kept
// with the reason for a person to inspect or replay.
type QuarantineItem struct {
	ID      uint64 // assigned by Quarantine; increasing
	Source  string
	Reason  string
	Time    time.Time // zero means now
	Payload []byte
}

// Quarantine durably stores q under a new ID (q.ID is ignored). When
// Options.QuarantineMax items are held, the oldest is dropped and counted.
func (db *DB) Quarantine(ctx context.Context, q QuarantineItem) error {
	q.Payload = append([]byte{}, q.Payload...)
	r := &request{n: 1, apply: func(s *stage) error { return s.quarantine(q) }}
	return db.submit(ctx, r)
}

func (s *stage) quarantine(q QuarantineItem) error {
	s.heavy = true // QuarantineList reads the file
	b := s.tx.Bucket(bktQuarantine)
	id, err := b.NextSequence()
	if err != nil {
		return fatal(err)
	}
	q.ID = id
	if q.Time.IsZero() {
		q.Time = s.now
	}
	if err := putJSON(b, seqKey(id), q); err != nil {
		return fatal(err)
	}
	s.dirty = true
	s.store.QCount++
	for s.store.QCount > int64(s.db.opts.QuarantineMax) {
		c := b.Cursor()
		if k, _ := c.First(); k == nil {
			break
		}
		if err := c.Delete(); err != nil {
			return fatal(err)
		}
		s.store.QCount--
		s.store.QDropped++
	}
	return nil
}

// QuarantineList returns up to max items, oldest first.
func (db *DB) QuarantineList(max int) ([]QuarantineItem, error) {
	var out []QuarantineItem
	err := db.view(func(v *viewTx) error {
		c := v.tx.Bucket(bktQuarantine).Cursor()
		for k, val := c.First(); k != nil && len(out) < max; k, val = c.Next() {
			var q QuarantineItem
			if err := json.Unmarshal(val, &q); err != nil {
				return fmt.Errorf("%w: quarantine record: %v", ErrCorrupt, err)
			}
			out = append(out, q)
		}
		return nil
	})
	return out, err
}

// QuarantineReplay durably removes the item with the given ID and returns it,
// so the caller can feed it through the pipeline again. A missing ID gives
// ErrNotFound.
func (db *DB) QuarantineReplay(id uint64) (QuarantineItem, error) {
	var q QuarantineItem
	r := &request{apply: func(s *stage) error {
		s.heavy = true
		b := s.tx.Bucket(bktQuarantine)
		val := b.Get(seqKey(id))
		if val == nil {
			return fmt.Errorf("%w: quarantine item %d", ErrNotFound, id)
		}
		if err := json.Unmarshal(val, &q); err != nil {
			return fmt.Errorf("%w: quarantine record: %v", ErrCorrupt, err)
		}
		s.dirty = true
		s.store.QCount--
		return fatal(b.Delete(seqKey(id)))
	}}
	err := db.submit(context.Background(), r)
	return q, err
}
