package buffer

import (
	"bytes"
	"context"
	"fmt"
	"hash/maphash"

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
// The first CheckDup of a stream since Open builds the stream's in-memory
// index from the remembered keys (about 4 ms and 2.2 MiB for a full window
// of 65,536 keys on the development machine); unchecked appends never need
// it. A store file replaced because it was unreadable (see Open) remembers
// no keys.
//
// It fails with ErrInvalid for a nil Enc, a Key longer than MaxKeySize or a
// CheckDup without a Key, and otherwise as Append does. The result has one
// entry per record, in order.
func (db *DB) AppendRecords(ctx context.Context, stream string, recs []Record) ([]Appended, error) {
	if len(recs) == 0 {
		return nil, nil
	}
	own, err := ownRecords(recs)
	if err != nil {
		return nil, err
	}
	out := make([]Appended, len(recs))
	r := &request{n: len(recs), isAppend: true}
	r.apply = func(s *stage) error { return s.appendRecords(stream, own, out) }
	if err := db.submit(ctx, r); err != nil {
		return nil, err
	}
	return out, nil
}

// ownRecords checks recs and copies their keys: bbolt keeps keys until the
// commit; the caller keeps its buffers.
func ownRecords(recs []Record) ([]Record, error) {
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
	own := make([]Record, len(recs))
	buf := make([]byte, 0, size)
	for i, r := range recs {
		own[i] = Record{Enc: r.Enc, CheckDup: r.CheckDup}
		if len(r.Key) > 0 {
			buf = append(buf, r.Key...)
			own[i].Key = buf[len(buf)-len(r.Key) : len(buf) : len(buf)]
		}
	}
	return own, nil
}

func (s *stage) appendRecords(name string, recs []Record, out []Appended) error {
	st := s.stream(name)
	if st == nil {
		return fmt.Errorf("%w: %q", ErrUnknownStream, name)
	}
	remember := s.db.opts.DedupWindow > 0
	lastCheck, keyed := -1, false // lastCheck: index of the last CheckDup record
	for i, r := range recs {
		if r.CheckDup {
			lastCheck = i
		}
		keyed = keyed || len(r.Key) > 0
	}
	check := lastCheck >= 0 && remember
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
			if seq, ok := s.lookupKey(name, st, r.Key); ok {
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
		if check && i < lastCheck && len(r.Key) > 0 {
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

// The dedup index of a stream has two parts. On disk, a FIFO bucket
// dedup/<name>/fifo: seq -> key, one entry per keyed append, written in the
// transaction of the append and pruned from its head to DedupWindow entries;
// its keys are seqs, so appends and prunes touch only the pages at its two
// ends. In memory, a map hash(key) -> seq of the latest FIFO entry with that
// hash, built from the FIFO by the first lookup of the stream since Open (a
// read of at most DedupWindow entries; never at Open, never for streams that
// are never checked), then kept up to date by every keyed append and prune,
// and dropped when a commit fails (the next lookup rebuilds it from the
// committed FIFO). A hit is confirmed by reading the FIFO entry, so a hash
// collision can only hide a duplicate, never invent one. Only the committer
// goroutine uses the maps.
//
// (Format 2 kept key -> seq in a bucket as well: every random key inserted
// or pruned materialised and rewrote a random leaf, and BenchmarkAppendRecords
// measured keyed appends at about 0.3 of the throughput of plain ones,
// against about 0.85 with the FIFO alone.)

// dedupMap is a stream's in-memory index: hash(key) -> seq.
type dedupMap map[uint64]uint64

func (db *DB) keyHash(key []byte) uint64 { return maphash.Bytes(db.dedupSeed, key) }

// dedupFIFO returns the stream's FIFO bucket, creating it if create; nil if
// it does not exist and !create.
func (s *stage) dedupFIFO(name string, create bool) (*bolt.Bucket, error) {
	if b := s.dedups[name]; b != nil {
		return b, nil
	}
	root := s.tx.Bucket(bktDedup)
	var b *bolt.Bucket
	if sb := root.Bucket([]byte(name)); sb != nil {
		b = sb.Bucket(bktDedupFIFO)
	}
	if b == nil {
		if !create {
			return nil, nil
		}
		s.heavy = true // bucket creation is never journaled
		sb, err := root.CreateBucketIfNotExists([]byte(name))
		if err != nil {
			return nil, fatal(err)
		}
		if b, err = sb.CreateBucket(bktDedupFIFO); err != nil {
			return nil, fatal(err)
		}
	}
	b.FillPercent = 1.0 // append-only keys: pack pages
	if s.dedups == nil {
		s.dedups = map[string]*bolt.Bucket{}
	}
	s.dedups[name] = b
	return b, nil
}

// lookupKey returns the seq of the latest remembered record of the stream
// with key, loading the in-memory index if needed.
func (s *stage) lookupKey(name string, st *streamState, key []byte) (uint64, bool) {
	fifo, _ := s.dedupFIFO(name, false) // no error without create
	if fifo == nil {
		return 0, false
	}
	m, ok := s.db.dedupMem[name]
	if !ok {
		m = make(dedupMap, st.dedupN)
		c := fifo.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			m[s.db.keyHash(v)] = keySeq(k)
		}
		if s.db.dedupMem == nil {
			s.db.dedupMem = map[string]dedupMap{}
		}
		s.db.dedupMem[name] = m
	}
	seq, ok := m[s.db.keyHash(key)]
	if !ok || !bytes.Equal(fifo.Get(seqKey(seq)), key) {
		return 0, false
	}
	return seq, true
}

// remember adds the keys of records stored at first, first+1, ... (empty
// keys are skipped) and prunes the stream's FIFO to Options.DedupWindow
// entries, oldest first. Its errors are fatal: it runs after the records are
// put.
func (s *stage) remember(name string, st *streamState, first uint64, keys [][]byte) error {
	var fifo *bolt.Bucket
	m := s.db.dedupMem[name] // nil until the stream's first lookup
	for i, k := range keys {
		if len(k) == 0 {
			continue
		}
		if fifo == nil {
			var err error
			if fifo, err = s.dedupFIFO(name, true); err != nil {
				return err
			}
		}
		seq := first + uint64(i)
		if err := s.bput(jFIFO, name, fifo, seqKey(seq), k); err != nil {
			return err
		}
		if m != nil {
			m[s.db.keyHash(k)] = seq
		}
		st.dedupN++
	}
	if fifo == nil {
		return nil
	}
	window := int64(s.db.opts.DedupWindow)
	for st.dedupN > window {
		k, key := fifo.Cursor().First()
		if k == nil {
			// Only a damaged file gets here; do not fail every append for it.
			s.db.opts.Logger.Error("buffer: dedup FIFO holds fewer keys than its counter; counter reset",
				"stream", name, "counter", st.dedupN)
			st.dedupN = 0
			break
		}
		if m != nil {
			// Forget the key only if no later append re-stored it.
			if h := s.db.keyHash(key); m[h] == keySeq(k) {
				delete(m, h)
			}
		}
		if err := s.bdel(jFIFO, name, fifo, k); err != nil {
			return err
		}
		st.dedupN--
	}
	return nil
}
