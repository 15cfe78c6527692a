package buffer

import (
	"context"
	"errors"
	"fmt"
)

// Batch is the records of one stream in an AppendBatch call.
type Batch struct {
	Stream  string
	Records []Record
}

// AppendBatch appends records to several streams in one transaction: either
// every batch is stored or none is. The batches are applied in order, so an
// encoder of a later batch may use the seqs its predecessors got (an alert
// event that names the event that caused it, in the same commit: a crash
// keeps both or neither). Each batch is checked and stored as AppendRecords
// stores its records; the result has one slice per batch, one Appended per
// record. A stream named by two batches gets the seqs of the first batch
// before those of the second.
func (db *DB) AppendBatch(ctx context.Context, batches []Batch) ([][]Appended, error) {
	n := 0
	own := make([][]Record, len(batches))
	for i, b := range batches {
		recs, err := ownRecords(b.Records)
		if err != nil {
			return nil, fmt.Errorf("stream %q: %w", b.Stream, err)
		}
		own[i] = recs
		n += len(recs)
	}
	if n == 0 {
		return make([][]Appended, len(batches)), nil
	}
	out := make([][]Appended, len(batches))
	for i := range batches {
		out[i] = make([]Appended, len(own[i]))
	}
	r := &request{n: n, isAppend: true}
	r.apply = func(s *stage) error {
		wrote := false
		for i, b := range batches {
			if len(own[i]) == 0 {
				continue
			}
			if err := s.appendRecords(b.Stream, own[i], out[i]); err != nil {
				var fe *fatalError
				if wrote && !errors.As(err, &fe) {
					return &partialError{err: err}
				}
				return err
			}
			wrote = true
		}
		return nil
	}
	if err := db.submit(ctx, r); err != nil {
		return nil, err
	}
	return out, nil
}
