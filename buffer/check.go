package buffer

import (
	"context"
	"errors"
	"fmt"
	"maps"

	bolt "go.etcd.io/bbolt"
)

// Check runs bbolt's consistency check over the whole file and verifies the
// stream counters against the data: contiguous seqs first..next-1 after
// the pinned gap events, the gap events, bytes,
// oldest append time, the quarantine count, and each stream's dedup FIFO
// (and in-memory index, if loaded). It reads everything: use it
// in tools and tests, not on the hot path. In a writable store it runs between
// commits.
func (db *DB) Check(ctx context.Context) error {
	if db.opts.ReadOnly {
		return db.check()
	}
	// The store is the file and the journal's commits not yet moved into
	// it: check them in the open write transaction, which holds both
	// (a move could fail on a full disk, and the check should not).
	return db.submit(ctx, &request{inTx: true, solo: func() error {
		tx, err := db.writeTx()
		if err != nil {
			return err
		}
		return db.checkTx(tx)
	}})
}

func (db *DB) check() error {
	return db.view(func(v *viewTx) error { return db.checkTx(v.tx) })
}

func (db *DB) checkTx(tx *bolt.Tx) error {
	db.stateMu.RLock()
	streams := make(map[string]streamState, len(db.streams))
	for n, st := range db.streams {
		streams[n] = *st
	}
	store, total, gapTotal := db.store, db.total, db.gapTotal
	db.stateMu.RUnlock()
	v := &viewTx{tx}
	return func() error {
		var errs []error
		for err := range v.tx.Check() {
			errs = append(errs, err)
		}
		var sum, gapSum int64
		for name, st := range streams {
			sum += st.bytes
			b := db.dataBucket(v.tx, name)
			if b == nil {
				errs = append(errs, fmt.Errorf("stream %q: no data bucket", name))
				continue
			}
			want, bytes, oldest := st.first, int64(0), int64(0)
			gaps, gapBytes := 0, int64(0) // gap events seen, and their bytes
			err := b.ForEach(func(k, val []byte) error {
				if len(k) != 8 || len(val) < entryHeader {
					return fmt.Errorf("stream %q: entry %x malformed", name, k)
				}
				seq, size := keySeq(k), int64(len(val)-entryHeader)
				isGap := gaps < len(st.gapEnts) && st.gapEnts[gaps].Seq == seq
				switch {
				case seq < st.first && !isGap:
					return fmt.Errorf("stream %q: entry %d below first seq %d is not a gap event", name, seq, st.first)
				case seq >= st.first && seq != want:
					return fmt.Errorf("stream %q: entry %x where seq %d was expected", name, k, want)
				case isGap && size != st.gapEnts[gaps].Size:
					return fmt.Errorf("stream %q: gap event %d has %d bytes, counter says %d", name, seq, size, st.gapEnts[gaps].Size)
				case seq == st.first && isGap:
					return fmt.Errorf("stream %q: first evictable seq %d is a gap event", name, seq)
				}
				if isGap {
					gaps++
					gapBytes += size
				}
				if seq == st.first {
					oldest = entryAt(val)
				}
				if seq >= st.first {
					want++
				}
				bytes += size
				return nil
			})
			switch {
			case err != nil:
				errs = append(errs, err)
			case want != st.next:
				errs = append(errs, fmt.Errorf("stream %q: entries end before %d, next seq is %d", name, want, st.next))
			case gaps != len(st.gapEnts):
				errs = append(errs, fmt.Errorf("stream %q: %d gap events found, counter says %d", name, gaps, len(st.gapEnts)))
			case bytes != st.bytes:
				errs = append(errs, fmt.Errorf("stream %q: %d payload bytes, counter says %d", name, bytes, st.bytes))
			case oldest != st.oldestAt:
				errs = append(errs, fmt.Errorf("stream %q: oldest append time %d, counter says %d", name, oldest, st.oldestAt))
			case st.acked >= st.next:
				errs = append(errs, fmt.Errorf("stream %q: acked %d beyond next %d", name, st.acked, st.next))
			case len(st.open) > len(dropReasons):
				errs = append(errs, fmt.Errorf("stream %q: %d open gaps", name, len(st.open)))
			}
			gapSum += gapBytes
		}
		errs = append(errs, db.checkDedup(v.tx, streams)...)
		if sum != total {
			errs = append(errs, fmt.Errorf("live bytes %d, streams sum to %d", total, sum))
		}
		if gapSum != gapTotal {
			errs = append(errs, fmt.Errorf("gap event bytes %d, streams sum to %d", gapTotal, gapSum))
		}
		if n := int64(v.tx.Bucket(bktQuarantine).Stats().KeyN); n != store.QCount {
			errs = append(errs, fmt.Errorf("quarantine holds %d items, counter says %d", n, store.QCount))
		}
		if err := errors.Join(errs...); err != nil {
			return fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
		return nil
	}()
}

// checkDedup verifies the dedup FIFO of every stream: entries for assigned
// seqs with valid keys, as many as the stream's counter says, and, when the
// in-memory index of the stream is loaded (committer only), that it maps the
// hash of each key to the seq of the latest entry with that hash and holds
// nothing else.
func (db *DB) checkDedup(tx *bolt.Tx, streams map[string]streamState) []error {
	var errs []error
	root := tx.Bucket(bktDedup)
	if root == nil { // format 1, opened read-only
		for name, st := range streams {
			if st.dedupN != 0 {
				errs = append(errs, fmt.Errorf("stream %q: no dedup FIFO, counter says %d keys", name, st.dedupN))
			}
		}
		return errs
	}
	_ = root.ForEachBucket(func(k []byte) error {
		if _, ok := streams[string(k)]; !ok {
			errs = append(errs, fmt.Errorf("dedup FIFO of unknown stream %q", k))
		}
		return nil
	})
	for name, st := range streams {
		want := dedupMap{}
		var n int64
		var fifo *bolt.Bucket
		if b := root.Bucket([]byte(name)); b != nil {
			fifo = b.Bucket(bktDedupFIFO)
		}
		if fifo != nil {
			err := fifo.ForEach(func(seq, key []byte) error {
				if len(seq) != 8 || keySeq(seq) >= st.next || len(key) == 0 || len(key) > MaxKeySize {
					return fmt.Errorf("stream %q: dedup FIFO entry %x -> %x invalid (next seq %d)", name, seq, key, st.next)
				}
				want[db.keyHash(key)] = keySeq(seq)
				n++
				return nil
			})
			if err != nil {
				errs = append(errs, err)
				continue
			}
		}
		if n != st.dedupN {
			errs = append(errs, fmt.Errorf("stream %q: dedup FIFO holds %d keys, counter says %d", name, n, st.dedupN))
		}
		if got, ok := db.dedupMem[name]; ok && !maps.Equal(got, want) {
			errs = append(errs, fmt.Errorf("stream %q: in-memory dedup index (%d hashes) differs from the FIFO (%d)", name, len(got), len(want)))
		}
	}
	return errs
}
