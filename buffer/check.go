package buffer

import (
	"context"
	"errors"
	"fmt"
)

// Check runs bbolt's consistency check over the whole file and verifies the
// stream counters against the data: contiguous seqs first..next-1, bytes,
// oldest append time, and the quarantine count. It reads everything: use it
// in tools and tests, not on the hot path. In a writable store it runs between
// commits.
func (db *DB) Check(ctx context.Context) error {
	if db.opts.ReadOnly {
		return db.check()
	}
	return db.submit(ctx, &request{solo: db.check})
}

func (db *DB) check() error {
	db.stateMu.RLock()
	streams := make(map[string]streamState, len(db.streams))
	for n, st := range db.streams {
		streams[n] = *st
	}
	store, total := db.store, db.total
	db.stateMu.RUnlock()
	return db.view(func(v *viewTx) error {
		var errs []error
		for err := range v.tx.Check() {
			errs = append(errs, err)
		}
		var sum int64
		for name, st := range streams {
			sum += st.bytes
			b := db.dataBucket(v.tx, name)
			if b == nil {
				errs = append(errs, fmt.Errorf("stream %q: no data bucket", name))
				continue
			}
			want, bytes, oldest := st.first, int64(0), int64(0)
			err := b.ForEach(func(k, val []byte) error {
				if len(k) != 8 || len(val) < entryHeader || keySeq(k) != want {
					return fmt.Errorf("stream %q: entry %x where seq %d was expected", name, k, want)
				}
				if want == st.first {
					oldest = entryAt(val)
				}
				want++
				bytes += int64(len(val) - entryHeader)
				return nil
			})
			switch {
			case err != nil:
				errs = append(errs, err)
			case want != st.next:
				errs = append(errs, fmt.Errorf("stream %q: entries end before %d, next seq is %d", name, want, st.next))
			case bytes != st.bytes:
				errs = append(errs, fmt.Errorf("stream %q: %d payload bytes, counter says %d", name, bytes, st.bytes))
			case oldest != st.oldestAt:
				errs = append(errs, fmt.Errorf("stream %q: oldest append time %d, counter says %d", name, oldest, st.oldestAt))
			case st.acked >= st.next:
				errs = append(errs, fmt.Errorf("stream %q: acked %d beyond next %d", name, st.acked, st.next))
			}
		}
		if sum != total {
			errs = append(errs, fmt.Errorf("live bytes %d, streams sum to %d", total, sum))
		}
		if n := int64(v.tx.Bucket(bktQuarantine).Stats().KeyN); n != store.QCount {
			errs = append(errs, fmt.Errorf("quarantine holds %d items, counter says %d", n, store.QCount))
		}
		if err := errors.Join(errs...); err != nil {
			return fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
		return nil
	})
}
