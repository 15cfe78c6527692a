package buffer

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// File layout (format 6):
//
//	meta/        "format" -> uint32 BE, "store" -> storeRecord (JSON),
//	             "journal" -> uint64 BE: the generation of the last journal
//	             frames this file holds (journal.go)
//	streams/     name -> streamRecord (JSON): config and counters
//	data/<name>/ seq (uint64 BE) -> append time (int64 BE unix ns) ++ payload
//	gaps/<name>/ id (uint64 BE) -> Gap (JSON); store-level gaps under "\x00"
//	quarantine/  id (uint64 BE) -> QuarantineItem (JSON)
//	kv/          GetMeta/PutMeta keys
//	dedup/<name>/fifo/ seq (uint64 BE) -> record key: the stream's last
//	                   keyed appends (Options.DedupWindow), oldest first,
//	                   counted by streamRecord.DedupN
//
// A stream's dedup buckets are created by its first keyed append. Format 1 is
// format 3 without the dedup bucket; format 2 also had dedup/<name>/keys/,
// record key -> seq, which format 3 keeps in memory instead (dedup.go).
// Format 4 added gap events to the stream records (gaps.go); format 5 the
// ingest journal beside the file (path.journal), whose frames of the
// generation after meta "journal" hold committed changes the file does not;
// format 6 compressed journal frames (journal.go) and journaled gap history
// (op bucket jGaps, jops.go; ids from the last one, not the bucket
// sequence), the file unchanged.
var (
	bktMeta       = []byte("meta")
	bktStreams    = []byte("streams")
	bktData       = []byte("data")
	bktGaps       = []byte("gaps")
	bktQuarantine = []byte("quarantine")
	bktKV         = []byte("kv")
	bktDedup      = []byte("dedup")
	bktDedupFIFO  = []byte("fifo")
	bktDedupKeys  = []byte("keys") // format 2 only

	keyFormat  = []byte("format")
	keyStore   = []byte("store")
	keyJournal = []byte("journal")
)

// storeGaps is the gaps sub-bucket for gaps that belong to no stream.
const storeGaps = "\x00"

// formatVersion is the layout this build writes.
const formatVersion = 6

// readableVersion is the oldest format a read-only Open accepts without
// upgrading it: the formats since then only added buckets that readers
// treat as empty when missing (dedup, format 2) or dropped buckets that
// readers ignore (dedup/<name>/keys, format 3). Raise it when a format
// changes what readers read.
const readableVersion = 1

// migrations[v] upgrades a file from format v to v+1 inside one transaction.
// Open runs them in order; add one whenever formatVersion is raised.
var migrations = map[uint32]func(tx *bolt.Tx) error{
	// 1 -> 2: the dedup index (AppendRecords). O(1): per-stream buckets are
	// created by the first keyed append, the new stream counters are zero.
	1: func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bktDedup)
		return err
	},
	// 2 -> 3: the key -> seq buckets give way to an in-memory index built
	// from the FIFOs. Freeing their pages reads them once: O(window) per
	// stream.
	2: func(tx *bolt.Tx) error {
		root := tx.Bucket(bktDedup)
		if root == nil {
			return fmt.Errorf("%w: no dedup bucket", ErrCorrupt)
		}
		var names [][]byte
		err := root.ForEachBucket(func(k []byte) error {
			names = append(names, append([]byte{}, k...))
			return nil
		})
		if err != nil {
			return err
		}
		for _, name := range names {
			b := root.Bucket(name)
			if b.Bucket(bktDedupKeys) == nil {
				continue
			}
			if err := b.DeleteBucket(bktDedupKeys); err != nil {
				return err
			}
		}
		return nil
	},
	// 3 -> 4: stream records may hold gap events kept out of eviction and
	// drops not yet written as a gap event (GapEntries, OpenGaps). A format
	// 3 record has neither, which is what they are when empty: nothing to
	// rewrite. The version moves so that an older build refuses the file
	// instead of evicting its gap events and losing the unreported drops.
	3: func(*bolt.Tx) error { return nil },
	// 4 -> 5: the ingest journal. Committed events may now be in the
	// journal only, until they are moved into the file: an older build
	// would ignore them, so it must refuse the file. The journal generation
	// starts unique to this file (journalGenesis).
	4: func(tx *bolt.Tx) error {
		return tx.Bucket(bktMeta).Put(keyJournal, binary.BigEndian.AppendUint64(nil, journalGenesis()))
	},
	// 5 -> 6: journal frames may be compressed. The file does not change,
	// and a format-5 journal (uncompressed frames only) is replayed as it
	// is; the version moves so that an older build, which would take a
	// compressed frame for the end of the journal and drop the commits in
	// it and after it, refuses the file instead.
	5: func(*bolt.Tx) error { return nil },
}

// journalGenesis is the generation a new or upgraded file says it holds:
// the time in nanoseconds, so that the frames of a journal left by another
// file (a store deleted or replaced at the same path) never match its next
// generation.
func journalGenesis() uint64 { return uint64(time.Now().UnixNano()) }

// requiredBuckets are the top-level buckets of a current file.
var requiredBuckets = [][]byte{bktMeta, bktStreams, bktData, bktGaps, bktQuarantine, bktKV, bktDedup}

const entryHeader = 8 // append time

func seqKey(seq uint64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], seq)
	return k[:]
}

func keySeq(k []byte) uint64 { return binary.BigEndian.Uint64(k) }

func entryValue(at int64, data []byte) []byte {
	v := make([]byte, entryHeader+len(data))
	binary.BigEndian.PutUint64(v, uint64(at))
	copy(v[entryHeader:], data)
	return v
}

func entryAt(v []byte) int64 { return int64(binary.BigEndian.Uint64(v)) }

// streamRecord is the persisted form of streamState.
type streamRecord struct {
	Config   StreamConfig
	Next     uint64
	First    uint64
	Acked    uint64
	Bytes    int64
	OldestAt int64
	Drops    Drops
	GapN     int64
	Dups     uint64 `json:",omitempty"` // duplicates skipped by AppendRecords
	DedupN   int64  `json:",omitempty"` // entries in the dedup FIFO
	// GapEntries and OpenGaps (gaps.go) came with format 4.
	GapEntries []gapEnt  `json:",omitempty"`
	OpenGaps   []openGap `json:",omitempty"`
}

// storeRecord holds store-wide counters.
type storeRecord struct {
	Boot          uint64
	Recovered     uint64 // times a bad file was replaced by this one
	RecoveredBoot uint64 // boot at which that happened
	QCount        int64
	QDropped      uint64
	GapN          int64 // store-level gap records held
}

func putJSON(b *bolt.Bucket, k []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(k, data)
}

func getJSON(b *bolt.Bucket, k []byte, v any) (bool, error) {
	data := b.Get(k)
	if data == nil {
		return false, nil
	}
	if err := json.Unmarshal(data, v); err != nil {
		return true, fmt.Errorf("%w: record %q: %v", ErrCorrupt, k, err)
	}
	return true, nil
}

// checkFormat initialises a new file or upgrades an old one. It reads only the
// meta bucket. A read-only open leaves an old file as it is (back to
// readableVersion).
func checkFormat(tx *bolt.Tx, writable bool) error {
	meta := tx.Bucket(bktMeta)
	if meta == nil {
		empty := true
		_ = tx.ForEach(func([]byte, *bolt.Bucket) error { empty = false; return nil })
		if !empty {
			return fmt.Errorf("%w: no meta bucket", ErrCorrupt)
		}
		if !writable {
			return fmt.Errorf("%w: empty file", ErrCorrupt)
		}
		for _, name := range requiredBuckets {
			if _, err := tx.CreateBucket(name); err != nil {
				return err
			}
		}
		if err := tx.Bucket(bktMeta).Put(keyJournal, binary.BigEndian.AppendUint64(nil, journalGenesis())); err != nil {
			return err
		}
		return tx.Bucket(bktMeta).Put(keyFormat, binary.BigEndian.AppendUint32(nil, formatVersion))
	}
	raw := meta.Get(keyFormat)
	if len(raw) != 4 {
		return fmt.Errorf("%w: bad format key", ErrCorrupt)
	}
	v := binary.BigEndian.Uint32(raw)
	if v > formatVersion {
		return fmt.Errorf("%w: file has format %d, this build reads up to %d", ErrFormatVersion, v, formatVersion)
	}
	if !writable && v >= readableVersion {
		return nil
	}
	for ; v < formatVersion; v++ {
		m := migrations[v]
		if m == nil || !writable {
			return fmt.Errorf("%w: cannot upgrade format %d", ErrFormatVersion, v)
		}
		if err := m(tx); err != nil {
			return fmt.Errorf("buffer: migrating format %d: %w", v, err)
		}
	}
	if !writable {
		return nil
	}
	return meta.Put(keyFormat, binary.BigEndian.AppendUint32(nil, formatVersion))
}
