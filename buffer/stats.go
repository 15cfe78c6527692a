package buffer

import (
	"os"
	"sort"
	"time"
)

// Stats is a point-in-time summary, computed from counters without reading
// any entry.
type Stats struct {
	Streams           []StreamStats // sorted by name
	LiveBytes         int64         // payload bytes across streams (DiskBudget bounds them less the gap events')
	FileSize          int64
	Boot              uint64
	Recovered         uint64 // times a bad file was moved aside and replaced by this one
	Quarantined       int64
	QuarantineDropped uint64
	Compactions       uint64 // since Open
	// Commits is the number of write transactions committed since Open.
	Commits uint64
	// WrittenBytes is what the store asked the file system to write since
	// Open: every page of every committed transaction, the meta page
	// included, and the whole new file of each compaction. Each commit is
	// synced, so this is what reaches the flash (before the file system's
	// own journal and the card's write amplification); divide its rate by
	// the rate of appended events for the bytes written per event.
	WrittenBytes int64
	// JournalWrittenBytes is the part of WrittenBytes that went to the
	// journal (Options.JournalSize): whole pages, each counted once per
	// sync; the rest went to the store file (commits, moves, compactions).
	JournalWrittenBytes int64
	// Moves is the number of times the journal's commits were moved into
	// the file since Open (Options.JournalSize); Commits counts each group
	// commit once, journaled or not.
	Moves uint64
}

// StreamStats describes one stream.
type StreamStats struct {
	Config     StreamConfig
	Depth      int64 // entries held, gap events included
	Bytes      int64 // payload bytes held, gap events included
	Oldest     time.Time
	OldestAge  time.Duration // from the append time of the oldest entry other than gap events; 0 when none
	FirstSeq   uint64        // oldest held seq (== NextSeq when empty)
	NextSeq    uint64        // seq the next entry will get
	AckedSeq   uint64        // highest seq acknowledged
	Drops      Drops
	GapRecords int64 // gaps held in the history
	// GapEvents is the number of gap events held (never evicted; at most a
	// few). UnreportedDrops counts the drops not yet written as a gap
	// event: Drops.Total is the sum of Count over the stream's gap events
	// plus UnreportedDrops.
	GapEvents       int64
	UnreportedDrops uint64
	// Dups counts the records AppendRecords did not store because their key
	// had been committed before; persisted, like the other counters.
	Dups uint64
	// DedupKeys is the number of keyed appends remembered for duplicate
	// detection (at most Options.DedupWindow once the next keyed append ran).
	DedupKeys int64
}

// Stats returns the current counters. It never reads the data.
func (db *DB) Stats() Stats {
	now := db.opts.Now()
	db.stateMu.RLock()
	s := Stats{LiveBytes: db.total, Boot: db.store.Boot, Recovered: db.store.Recovered,
		Quarantined: db.store.QCount, QuarantineDropped: db.store.QDropped,
		Compactions: db.compactions.Load(), Commits: db.commits.Load(), WrittenBytes: db.written.Load(),
		JournalWrittenBytes: db.jwritten.Load(), Moves: db.moves.Load()}
	for name, st := range db.streams {
		ss := StreamStats{Config: st.cfg, Depth: st.count(), Bytes: st.bytes, FirstSeq: st.first,
			NextSeq: st.next, AckedSeq: st.acked, Drops: st.drops, GapRecords: st.gapN,
			Dups: st.dups, DedupKeys: st.dedupN, GapEvents: int64(len(st.gapEnts)), UnreportedDrops: st.unreported()}
		if len(st.gapEnts) > 0 && st.gapEnts[0].Seq < st.first {
			ss.FirstSeq = st.gapEnts[0].Seq
		}
		ss.Config.Name = name
		if st.first < st.next {
			ss.Oldest = unixTime(st.oldestAt)
			ss.OldestAge = max(0, now.Sub(ss.Oldest))
		}
		s.Streams = append(s.Streams, ss)
	}
	db.stateMu.RUnlock()
	sort.Slice(s.Streams, func(i, j int) bool { return s.Streams[i].Config.Name < s.Streams[j].Config.Name })
	if fi, err := os.Stat(db.path); err == nil {
		s.FileSize = fi.Size()
	}
	return s
}
