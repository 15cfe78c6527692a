package buffer

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// How drops become gap events (with Options.GapEncoder).
//
// A gap event is an entry of the stream like any other, with its own seq,
// and once a reader may have seen it, it never changes: the uplink may have
// sent it, and Pulsar's deduplication would drop a different message under
// the same seq. So that gap events cannot themselves be lost, and so that a
// sustained overflow does not fill its own stream with them:
//
//   - Gap events are never dropped. Limits (MaxEvents, MaxBytes), TTL and
//     the disk budget count and evict only the other entries; evictions skip
//     gap events, which stay ("pinned") below the stream's first evictable
//     seq until an Ack removes them.
//   - A drop is not written as a gap event at once. It is added to the
//     stream's open gap for its reason, kept in the stream record (at most
//     one per reason) and extended while the drops follow each other: a
//     drop that starts where the previous one of that reason ended, with
//     only gap events in between. A sustained overflow with the uplink down
//     is one open gap however long it lasts.
//   - An open gap is written as a gap event (sealed) when a reader reaches
//     the end of the stream (Read), and when a drop of its reason does not
//     follow it (an Ack or another reason's drop came in between: the
//     uplink is moving). Sealing takes the next seq, after the entries the
//     gap is about: a gap event reports earlier seqs.
//   - At most maxGapEntries gap events are held per stream; beyond that,
//     open gaps are not sealed but extended over the discontinuity (the
//     range then also holds delivered seqs; Count stays exact).
//
// Every dropped entry is counted in exactly one gap event (or still in an
// open gap): the sum of Count over a stream's gap events plus its
// Stats.UnreportedDrops equals Drops.Total. A gap event's From..To may
// contain seqs that were not lost (gap events themselves, and delivered
// entries after the cap was reached); Count is the number lost.

// maxGapEntries bounds the gap events held per stream.
const maxGapEntries = 8

// gapEnt is a gap event held in the stream.
type gapEnt struct {
	Seq  uint64
	Size int64
}

// openGap is a run of drops of one reason not yet written as a gap event.
type openGap struct {
	Reason          string
	From, To, Count uint64
	At              time.Time // of its first drop
	// End is the stream's first evictable seq after its latest drop: the
	// next drop of the reason extends it if it starts there, or after
	// nothing but gap events.
	End uint64
}

func (o openGap) gap(stream string) Gap {
	return Gap{Stream: stream, From: o.From, To: o.To, Count: o.Count, Reason: o.Reason, At: o.At}
}

// noteDrop adds a drop, which started at seq start (the stream's first
// evictable seq before it), to the open gap of its reason.
func (s *stage) noteDrop(st *streamState, g Gap, start uint64) {
	if s.db.opts.GapEncoder == nil {
		return
	}
	for i := range st.open {
		o := &st.open[i]
		if o.Reason != g.Reason {
			continue
		}
		if !st.adjoins(o.End, start) && st.canSeal() {
			st.sealQ = append(st.sealQ, *o)
			st.open = slices.Delete(st.open, i, i+1)
			break
		}
		o.To, o.Count, o.End = g.To, o.Count+g.Count, st.first
		return
	}
	st.open = append(st.open, openGap{Reason: g.Reason, From: g.From, To: g.To, Count: g.Count, At: g.At, End: st.first})
}

// adjoins reports whether the seqs end..start-1 are all gap events held.
func (s *streamState) adjoins(end, start uint64) bool {
	return end <= start && uint64(s.gapIndex(start)-s.gapIndex(end)) == start-end
}

func (s *streamState) canSeal() bool { return len(s.gapEnts)+len(s.sealQ) < maxGapEntries }

// sealOpen queues the stream's open gaps to be written as gap events, as
// many as the bound allows.
func (s *stage) sealOpen(name string) error {
	st := s.stream(name)
	if st == nil {
		return fmt.Errorf("%w: %q", ErrUnknownStream, name)
	}
	for len(st.open) > 0 && st.canSeal() {
		st.sealQ = append(st.sealQ, st.open[0])
		st.open = slices.Delete(st.open, 0, 1)
	}
	return nil
}

// writeSealed appends the queued gap events. It runs when the transaction's
// requests are done, so they take seqs after everything appended in it. An
// encoder error is fatal to the transaction (the drops are already staged).
func (s *stage) writeSealed(name string, st *streamState) error {
	for _, o := range st.sealQ {
		data, err := s.db.opts.GapEncoder(name, st.next, o.gap(name))
		if err != nil {
			return fatal(fmt.Errorf("buffer: gap encoder: %w", err))
		}
		if len(data) > maxEntry {
			return fatal(fmt.Errorf("%w: gap event of %d bytes", ErrInvalid, len(data)))
		}
		if err := s.putGap(name, st, data); err != nil {
			return err
		}
	}
	st.sealQ = nil
	return nil
}

// putGap appends a gap event at st.next.
func (s *stage) putGap(name string, st *streamState, data []byte) error {
	seq := st.next
	if err := s.put(name, st, seq, data); err != nil {
		return err
	}
	st.gapEnts = append(st.gapEnts, gapEnt{Seq: seq, Size: int64(len(data))})
	s.gapTotal += int64(len(data))
	if st.first == seq { // nothing evictable before it: pinned at once
		st.first, st.oldestAt = st.next, 0
	}
	return nil
}

// settleHead moves first past gap events (pinning them) and re-reads the
// append time of the oldest evictable entry.
func (s *stage) settleHead(name string, st *streamState) error {
	for st.first < st.next && st.isGap(st.first) {
		st.first++
	}
	return s.refreshHead(name, st)
}

// removeGapEnts forgets the gap events up to upTo (acked). It deletes those
// below first and returns their bytes; the caller deletes the others with
// the range first..upTo.
func (s *stage) removeGapEnts(name string, st *streamState, upTo uint64) (pinnedBytes int64, err error) {
	n := st.gapIndex(upTo + 1)
	for _, g := range st.gapEnts[:n] {
		if g.Seq < st.first {
			if err := s.bdel(jData, name, s.data(name), seqKey(g.Seq)); err != nil {
				return 0, err
			}
			pinnedBytes += g.Size
		}
		s.gapTotal -= g.Size
	}
	st.gapEnts = slices.Delete(st.gapEnts, 0, n)
	return pinnedBytes, nil
}

// sealDue reports whether a reader at the end of the stream should have its
// open gaps written.
func (db *DB) sealDue(stream string) bool {
	if db.opts.ReadOnly || db.opts.GapEncoder == nil {
		return false
	}
	db.stateMu.RLock()
	defer db.stateMu.RUnlock()
	st, ok := db.streams[stream]
	return ok && len(st.open) > 0 && st.canSeal()
}

// seal writes the stream's open gaps as gap events (one commit).
func (db *DB) seal(stream string) error {
	return db.submit(context.Background(), &request{apply: func(s *stage) error { return s.sealOpen(stream) }})
}

// Gap records entries that were dropped rather than delivered: seqs From..To
// of Stream (Count of them), why, and when. A Reason of "corrupt" means the
// store file was replaced: Count is then 0 (unknown) and From..To is the seq
// range that may have been lost; store-wide gaps have an empty Stream.
type Gap struct {
	Stream   string
	From, To uint64
	Count    uint64
	Reason   string
	At       time.Time
}

// Gaps returns the recorded gaps of a stream, oldest first, a run of drops
// that followed each other within a minute as one (its At is the run's
// first drop); the history is bounded by Options.GapHistory. Gaps("")
// returns the store-wide gaps (a bad file replaced).
func (db *DB) Gaps(stream string) ([]Gap, error) {
	key := stream
	if stream == "" {
		key = storeGaps
	} else {
		db.stateMu.RLock()
		_, ok := db.streams[stream]
		db.stateMu.RUnlock()
		if !ok {
			return nil, fmt.Errorf("%w: %q", ErrUnknownStream, stream)
		}
	}
	var out []Gap
	read := func(tx *bolt.Tx) error {
		out = nil
		b := tx.Bucket(bktGaps).Bucket([]byte(key))
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, val []byte) error {
			var g Gap
			if err := json.Unmarshal(val, &g); err != nil {
				return fmt.Errorf("%w: gap record: %v", ErrCorrupt, err)
			}
			out = append(out, g)
			return nil
		})
	}
	if db.opts.ReadOnly || db.jnl == nil {
		err := db.view(func(v *viewTx) error { return read(v.tx) })
		return out, err
	}
	// The history's latest records may be in the journal only: read the
	// open write transaction, which holds them (as Check does).
	err := db.submit(context.Background(), &request{inTx: true, solo: func() error {
		tx, err := db.writeTx()
		if err != nil {
			return err
		}
		return read(tx)
	}})
	return out, err
}
