package buffer

import (
	"bytes"
	"context"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Record is one event for AppendRecords.
type Record struct {
	Enc Encoder
	// Key identifies the input (e.g. a digest of MQTT topic and payload);
	// nil or empty = no key; at most MaxKeySize bytes. Keys of committed
	// records are remembered (a bounded window per stream,
	// Options.DedupWindow).
	Key []byte
	// CheckDup: when true and Key was committed before (within the window),
	// the record is not stored again: its seq in the result is the one it got
	// the first time and Dup is true. It requires a Key.
	CheckDup bool
}

// Appended is the outcome of one Record.
type Appended struct {
	Seq uint64 // the record's seq; for a duplicate, the seq of the original
	Dup bool   // a duplicate: not stored by this call
}

// MaxKeySize is the longest Record.Key.
const MaxKeySize = 64

// AppendRecords is Append with idempotent records. The records that are not
// duplicates get consecutive seqs in their order and are stored exactly as
// Append stores its records: all-or-nothing (on error none of them was
// stored and no key remembered), the same limits, drops and gap events,
// group-committed with concurrent calls, returning only after the commit is
// fsynced. The keys of the stored records are remembered in the same
// transaction.
//
// A record with CheckDup whose Key the stream remembers is a duplicate: it is
// not stored, takes no seq and no space, its Appended holds the seq of the
// latest stored record with that key and Dup true, and it is counted in
// StreamStats.Dups. The index is independent of the data: a key is remembered
// after its entry is acked, dropped or expired, until DedupWindow later keyed
// records of the stream have pushed it out. A key is found when the record
// that carried it was stored by a call queued before this one (calls are
// applied in queue order, also within one group commit) or earlier in this
// call. A call returns only after a commit, so even a call of duplicates
// only returns once the commit holding their originals is on disk. With
// DedupWindow negative nothing is remembered and CheckDup finds nothing.
//
// It fails with ErrInvalid for a nil Enc, a Key longer than MaxKeySize or a
// CheckDup without a Key, and otherwise as Append does. The result has one
// entry per record, in order.
func (db *DB) AppendRecords(ctx context.Context, stream string, recs []Record) ([]Appended, error) {
	if len(recs) == 0 {
		return nil, nil
	}
	size := 0
	for i, r := range recs {
		switch {
		case r.Enc == nil:
			return nil, fmt.Errorf("%w: record %d has no encoder", ErrInvalid, i)
		case len(r.Key) > MaxKeySize:
			return nil, fmt.Errorf("%w: record %d: key of %d bytes, at most %d", ErrInvalid, i, len(r.Key), MaxKeySize)
		case r.CheckDup && len(r.Key) == 0:
			return nil, fmt.Errorf("%w: record %d: CheckDup without a key", ErrInvalid, i)
		}
		size += len(r.Key)
	}
	// bbolt keeps keys until the commit; the caller keeps its buffers.
	own := make([]Record, len(recs))
	buf := make([]byte, 0, size)
	for i, r := range recs {
		own[i] = Record{Enc: r.Enc, CheckDup: r.CheckDup}
		if len(r.Key) > 0 {
			buf = append(buf, r.Key...)
			own[i].Key = buf[len(buf)-len(r.Key) : len(buf) : len(buf)]
		}
	}
	out := make([]Appended, len(recs))
	r := &request{n: len(recs), isAppend: true}
	r.apply = func(s *stage) error { return s.appendRecords(stream, own, out) }
	if err := db.submit(ctx, r); err != nil {
		return nil, err
	}
	return out, nil
}

func (s *stage) appendRecords(name string, recs []Record, out []Appended) error {
	st := s.stream(name)
	if st == nil {
		return fmt.Errorf("%w: %q", ErrUnknownStream, name)
	}
	remember := s.db.opts.DedupWindow > 0
	check, keyed := false, false
	for _, r := range recs {
		check = check || r.CheckDup
		keyed = keyed || len(r.Key) > 0
	}
	check = check && remember
	var idx *dedupIndex
	if check {
		var err error
		if idx, err = s.dedup(name, false); err != nil {
			return err
		}
	}
	encs := make([]Encoder, 0, len(recs))
	var keys [][]byte // parallel to encs
	if remember && keyed {
		keys = make([][]byte, 0, len(recs))
	}
	// pos[i] >= 0: record i is stored as encs[pos[i]]; -1: a duplicate of a
	// record stored by an earlier call (out[i] is set); -2-j: a duplicate of
	// encs[j], stored earlier in this call.
	pos := make([]int, len(recs))
	var local map[string]int // key -> index in encs of this call's latest record with it
	var dups uint64
	for i, r := range recs {
		if check && r.CheckDup {
			if j, ok := local[string(r.Key)]; ok {
				pos[i] = -2 - j
				dups++
				continue
			}
			if seq, ok := idx.lookup(r.Key); ok {
				pos[i], out[i] = -1, Appended{Seq: seq, Dup: true}
				dups++
				continue
			}
		}
		pos[i] = len(encs)
		encs = append(encs, r.Enc)
		if keys != nil {
			keys = append(keys, r.Key)
		}
		if check && len(r.Key) > 0 {
			if local == nil {
				local = map[string]int{}
			}
			local[string(r.Key)] = pos[i]
		}
	}
	var first uint64
	if len(encs) > 0 {
		f, err := s.append(name, st, encs, keys)
		if err != nil {
			return err
		}
		first = f
	}
	for i, j := range pos {
		switch {
		case j >= 0:
			out[i] = Appended{Seq: first + uint64(j)}
		case j <= -2:
			out[i] = Appended{Seq: first + uint64(-2-j), Dup: true}
		}
	}
	st.dups += dups
	return nil
}

// dedupIndex is a stream's key index in one transaction.
type dedupIndex struct {
	keys *bolt.Bucket // key -> seq of its latest keyed append
	fifo *bolt.Bucket // seq -> key, one per keyed append
}

// dedup returns the stream's index, creating it if create; nil if it does
// not exist and !create.
func (s *stage) dedup(name string, create bool) (*dedupIndex, error) {
	if d := s.dedups[name]; d != nil {
		return d, nil
	}
	root := s.tx.Bucket(bktDedup)
	b := root.Bucket([]byte(name))
	if b == nil {
		if !create {
			return nil, nil
		}
		var err error
		if b, err = root.CreateBucket([]byte(name)); err != nil {
			return nil, fatal(err)
		}
		for _, sub := range [][]byte{bktDedupKeys, bktDedupFIFO} {
			if _, err := b.CreateBucket(sub); err != nil {
				return nil, fatal(err)
			}
		}
	}
	d := &dedupIndex{keys: b.Bucket(bktDedupKeys), fifo: b.Bucket(bktDedupFIFO)}
	if d.keys == nil || d.fifo == nil {
		return nil, fatal(fmt.Errorf("%w: stream %q: dedup index incomplete", ErrCorrupt, name))
	}
	d.fifo.FillPercent = 1.0 // append-only keys: pack pages
	if s.dedups == nil {
		s.dedups = map[string]*dedupIndex{}
	}
	s.dedups[name] = d
	return d, nil
}

// lookup returns the seq remembered for key; d may be nil (empty index).
func (d *dedupIndex) lookup(key []byte) (uint64, bool) {
	if d == nil {
		return 0, false
	}
	v := d.keys.Get(key)
	if len(v) != 8 {
		return 0, false
	}
	return keySeq(v), true
}

// remember adds the keys of records stored at first, first+1, ... (nil keys
// are skipped) and prunes the stream's index to Options.DedupWindow keys,
// oldest first. Its errors are fatal: it runs after the records are put.
func (s *stage) remember(name string, st *streamState, first uint64, keys [][]byte) error {
	var d *dedupIndex
	for i, k := range keys {
		if len(k) == 0 {
			continue
		}
		if d == nil {
			var err error
			if d, err = s.dedup(name, true); err != nil {
				return err
			}
		}
		seq := seqKey(first + uint64(i))
		if err := d.keys.Put(k, seq); err != nil {
			return fatal(err)
		}
		if err := d.fifo.Put(seq, k); err != nil {
			return fatal(err)
		}
		st.dedupN++
	}
	if d == nil {
		return nil
	}
	window := int64(s.db.opts.DedupWindow)
	c := d.fifo.Cursor()
	for st.dedupN > window {
		seq, key := c.First()
		if seq == nil {
			return fatal(fmt.Errorf("%w: stream %q: dedup index holds fewer keys than its counter %d", ErrCorrupt, name, st.dedupN))
		}
		// Forget the key only if no later append re-stored it.
		if cur := d.keys.Get(key); bytes.Equal(cur, seq) {
			if err := d.keys.Delete(key); err != nil {
				return fatal(err)
			}
		}
		if err := c.Delete(); err != nil {
			return fatal(err)
		}
		st.dedupN--
	}
	return nil
}
