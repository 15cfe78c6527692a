package buffer

import (
	"fmt"
	"sort"

	bolt "go.etcd.io/bbolt"
)

// Entry is one stored event. Data is a copy, safe to keep.
type Entry struct {
	Seq  uint64
	Data []byte
}

type viewTx struct{ tx *bolt.Tx }

// view runs f in a read transaction, guarded against a concurrent Compact
// swap, Close, and bbolt panics on a corrupt file.
func (db *DB) view(f func(v *viewTx) error) error {
	db.swapMu.RLock()
	defer db.swapMu.RUnlock()
	if db.bolt == nil {
		return ErrClosed
	}
	return db.guard(func() error {
		return db.bolt.View(func(tx *bolt.Tx) error { return f(&viewTx{tx}) })
	})
}

// Read returns up to max entries of the stream with seq > after, in seq
// order. It reads only the entries it returns. When it reaches the end of
// the stream and drops are waiting to be reported (gaps.go), it first
// commits them as gap events and returns those too; otherwise it does not
// block.
func (db *DB) Read(stream string, after uint64, max int) ([]Entry, error) {
	out, err := db.read(stream, after, max)
	if err != nil || len(out) >= max || !db.sealDue(stream) {
		return out, err
	}
	if err := db.seal(stream); err != nil {
		// The entries read are still good; the next Read tries again.
		db.opts.Logger.Debug("buffer: writing gap events", "stream", stream, "err", err)
		return out, nil
	}
	if len(out) > 0 {
		after = out[len(out)-1].Seq
	}
	more, err := db.read(stream, after, max-len(out))
	if err != nil {
		return nil, err
	}
	return append(out, more...), nil
}

// ovEntry is an entry of a journaled commit not yet moved into the file: its
// seq and its stored value (append time and payload).
type ovEntry struct {
	seq uint64
	val []byte
}

// read is Read without writing gap events.
//
// The entries held are those of the committed state (st): the contiguous
// seqs first..next-1 and the pinned gap events below first. The file holds
// them as of the last move, and may still hold some that journaled commits
// since removed (acked, dropped): those are skipped. The overlay holds the
// ones journaled since, all after any the file holds.
func (db *DB) read(stream string, after uint64, max int) ([]Entry, error) {
	db.stateMu.RLock()
	st, ok := db.streams[stream]
	var depth int64
	if ok {
		depth = st.count()
	}
	ov := db.overlay[stream]
	db.stateMu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownStream, stream)
	}
	if max <= 0 {
		return nil, nil
	}
	out := make([]Entry, 0, min(int64(max), depth))
	err := db.view(func(v *viewTx) error {
		b := db.dataBucket(v.tx, stream)
		if b == nil {
			return fmt.Errorf("%w: %q", ErrUnknownStream, stream)
		}
		c := b.Cursor()
		for k, val := c.Seek(seqKey(after + 1)); k != nil && len(out) < max; k, val = c.Next() {
			seq := keySeq(k)
			if seq >= st.next {
				break
			}
			if seq < st.first && !st.isGap(seq) {
				continue
			}
			out = append(out, Entry{Seq: seq, Data: append([]byte{}, val[entryHeader:]...)})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(ov) == 0 {
		return out, nil
	}
	if len(out) > 0 && out[len(out)-1].Seq > after {
		// A move may have happened since the overlay was taken: what the
		// file returned is not repeated.
		after = out[len(out)-1].Seq
	}
	i := sort.Search(len(ov), func(i int) bool { return ov[i].seq > after })
	for ; i < len(ov) && len(out) < max; i++ {
		e := ov[i]
		if e.seq >= st.next || e.seq < st.first && !st.isGap(e.seq) {
			continue
		}
		out = append(out, Entry{Seq: e.seq, Data: append([]byte{}, e.val[entryHeader:]...)})
	}
	return out, nil
}

// Notify returns the stream's wake-up channel (capacity 1). After each commit
// that added entries to the stream it receives a value if it has room, so a
// reader loops "read until empty, then wait". The channel may be asked for
// before the stream exists. Close closes it.
func (db *DB) Notify(stream string) <-chan struct{} {
	db.notifyMu.Lock()
	defer db.notifyMu.Unlock()
	ch, ok := db.notifyCh[stream]
	if !ok {
		ch = make(chan struct{}, 1)
		if db.notifyClosed {
			close(ch)
		} else {
			db.notifyCh[stream] = ch
		}
	}
	return ch
}
