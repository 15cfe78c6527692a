package buffer

import (
	"encoding/json"
	"slices"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"
)

// streamState is the in-memory copy of a stream's record. Committed states are
// never modified in place: a transaction works on copies (stage) and publishes
// them after the commit.
type streamState struct {
	cfg      StreamConfig
	next     uint64 // next seq to assign
	first    uint64 // seq of the oldest live entry; == next when empty
	acked    uint64
	bytes    int64 // payload bytes of live entries
	oldestAt int64 // append time (unix ns) of entry first; 0 when empty
	drops    Drops
	gapN     int64
	dups     uint64 // duplicates skipped by AppendRecords
	dedupN   int64  // keys in the dedup FIFO
	// gapEnts are the stream's gap events (gaps.go), ascending: entries
	// that limits, evictions and TTL skip, so only an Ack removes them.
	// Those below first are "pinned": the entries held are the pinned gap
	// entries plus the contiguous seqs first..next-1.
	gapEnts []gapEnt
	// open are drops not yet written as a gap event, at most one per reason.
	open []openGap
	// sealQ are gaps this transaction writes as gap events when it ends
	// (stage only, never persisted).
	sealQ []openGap
}

// count is the number of entries held.
func (s *streamState) count() int64 { return int64(s.next-s.first) + int64(s.pinned()) }

// events is the number of entries held that are subject to the limits: all
// but the gap events.
func (s *streamState) events() int64 { return s.count() - int64(len(s.gapEnts)) }

// gapIndex is the index of the first gap entry with a seq >= seq.
func (s *streamState) gapIndex(seq uint64) int {
	return sort.Search(len(s.gapEnts), func(i int) bool { return s.gapEnts[i].Seq >= seq })
}

func (s *streamState) isGap(seq uint64) bool {
	i := s.gapIndex(seq)
	return i < len(s.gapEnts) && s.gapEnts[i].Seq == seq
}

// pinned is the number of gap entries below first.
func (s *streamState) pinned() int { return s.gapIndex(s.first) }

// gapBytes is the payload held in gap events.
func (s *streamState) gapBytes() (n int64) {
	for _, g := range s.gapEnts {
		n += g.Size
	}
	return n
}

// unreported is the number of drops not yet in a gap event.
func (s *streamState) unreported() (n uint64) {
	for _, o := range s.open {
		n += o.Count
	}
	return n
}

func (s *streamState) record() streamRecord {
	return streamRecord{Config: s.cfg, Next: s.next, First: s.first, Acked: s.acked,
		Bytes: s.bytes, OldestAt: s.oldestAt, Drops: s.drops, GapN: s.gapN, Dups: s.dups, DedupN: s.dedupN,
		GapEntries: s.gapEnts, OpenGaps: s.open}
}

func fromRecord(r streamRecord) *streamState {
	return &streamState{cfg: r.Config, next: r.Next, first: r.First, acked: r.Acked,
		bytes: r.Bytes, oldestAt: r.OldestAt, drops: r.Drops, gapN: r.GapN, dups: r.Dups, dedupN: r.DedupN,
		gapEnts: r.GapEntries, open: r.OpenGaps}
}

// stage is one write transaction's view: the bbolt tx plus copies of the
// states it changed. Only the committer goroutine uses it.
type stage struct {
	db       *DB
	tx       *bolt.Tx
	now      time.Time
	streams  map[string]*streamState // touched copies
	store    storeRecord
	total    int64 // live payload bytes across streams
	gapTotal int64 // of which in gap events
	dirty    bool  // store record changed
	notify   map[string]bool
	buckets  map[string]*bolt.Bucket
	dedups   map[string]*bolt.Bucket // dedup FIFOs looked up; nil until a keyed append
	// ops are the changes made, for the journal (jops.go); heavy is set by
	// a change that cannot be journaled: the transaction goes to bbolt.
	ops   []jop
	heavy bool
}

func (db *DB) newStage(tx *bolt.Tx) *stage {
	return &stage{db: db, tx: tx, now: db.opts.Now(), streams: map[string]*streamState{},
		store: db.store, total: db.total, gapTotal: db.gapTotal, notify: map[string]bool{}, buckets: map[string]*bolt.Bucket{}}
}

// stream returns the staged copy of a stream, or nil if it does not exist.
func (s *stage) stream(name string) *streamState {
	if st, ok := s.streams[name]; ok {
		return st
	}
	c, ok := s.db.streams[name]
	if !ok {
		return nil
	}
	cp := *c
	// Copy on write: the committed state shares nothing with the stage.
	cp.gapEnts, cp.open, cp.sealQ = slices.Clone(c.gapEnts), slices.Clone(c.open), nil
	s.streams[name] = &cp
	return &cp
}

// names returns all stream names, sorted.
func (s *stage) names() []string {
	var out []string
	for n := range s.db.streams {
		out = append(out, n)
	}
	for n := range s.streams {
		if _, ok := s.db.streams[n]; !ok {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// data returns the stream's data bucket in this transaction.
func (s *stage) data(name string) *bolt.Bucket {
	b, ok := s.buckets[name]
	if !ok {
		b = s.db.dataBucket(s.tx, name)
		if b != nil {
			b.FillPercent = 1.0 // append-only keys: pack pages
		}
		s.buckets[name] = b
	}
	return b
}

// flush writes the gap events the transaction queued, then the records of
// every touched stream and the store record.
func (s *stage) flush() error {
	sb := s.tx.Bucket(bktStreams)
	for name, st := range s.streams {
		if err := s.writeSealed(name, st); err != nil {
			return err
		}
		data, err := json.Marshal(st.record())
		if err != nil {
			return err
		}
		if err := s.bput(jStreams, "", sb, []byte(name), data); err != nil {
			return err
		}
	}
	if s.dirty {
		data, err := json.Marshal(s.store)
		if err != nil {
			return err
		}
		return s.bput(jMeta, "", s.tx.Bucket(bktMeta), keyStore, data)
	}
	return nil
}

// publish makes the staged states the committed ones. moved: everything
// is in the file and the overlay is emptied; otherwise the transaction's
// entries are in the journal only, and readers find them in the overlay.
func (s *stage) publish(moved bool) {
	db := s.db
	db.stateMu.Lock()
	for name, st := range s.streams {
		db.streams[name] = st
	}
	if moved {
		db.overlay = nil
	} else {
		for _, o := range s.ops {
			if o.bkt == jData && !o.del {
				if db.overlay == nil {
					db.overlay = map[string][]ovEntry{}
				}
				db.overlay[o.name] = append(db.overlay[o.name], ovEntry{seq: keySeq(o.key), val: o.val})
			}
		}
	}
	db.store = s.store
	db.total = s.total
	db.gapTotal = s.gapTotal
	db.stateMu.Unlock()
}
