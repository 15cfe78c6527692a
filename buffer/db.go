package buffer

import (
	"errors"
	"fmt"
	"hash/maphash"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

// DB is an open store. All methods are safe for concurrent use.
type DB struct {
	path string
	opts Options

	swapMu sync.RWMutex // guards bolt against the swap done by Compact
	bolt   *bolt.DB

	stateMu  sync.RWMutex // guards the committed state below; only the committer writes it
	streams  map[string]*streamState
	store    storeRecord
	total    int64
	gapTotal int64 // of total, the bytes of gap events
	// overlay holds the entries of journaled commits not yet moved into
	// the file, per stream in seq order (read.go); nil when there are none.
	overlay map[string][]ovEntry

	// The ingest journal (journal.go); committer only, but for Close.
	jnl     *journal
	wtx     *bolt.Tx // the open write transaction holding journaled changes
	pending []jop    // journaled changes not yet moved, to redo after a rollback
	// pendingSince is when the oldest journaled commit not yet moved was
	// written (unix ns, 0 when none); the sweeper reads it.
	pendingSince atomic.Int64
	moveRetry    time.Time // committer only: no move attempt before this after a failure
	moveErr      error     // committer only: why the last move failed; nil after a commit to the file
	moves        atomic.Uint64
	jwritten     atomic.Int64 // of written, the journal's (Stats.JournalWrittenBytes)

	sendMu   sync.RWMutex // guards closed against sends on reqs
	closed   bool
	reqs     chan *request
	inflight atomic.Int64 // write calls queued or about to be

	notifyMu sync.Mutex
	notifyCh map[string]chan struct{}
	// notifyClosed is set by Close; Notify then returns closed channels.
	notifyClosed bool

	broken      atomic.Pointer[brokenErr]
	recovered   bool // this Open replaced a bad file
	compactions atomic.Uint64
	commits     atomic.Uint64        // successful write transactions
	written     atomic.Int64         // bytes the store asked to be written (Stats.WrittenBytes)
	dataTouches atomic.Int64         // data bucket lookups; tests assert Open makes none
	dropLogged  map[string]time.Time // committer only: rate limit of drop warnings
	dedupMem    map[string]dedupMap  // committer only: in-memory dedup indexes (dedup.go)
	dedupSeed   maphash.Seed
	// committer only: when the last commit ended and how long it took
	// (run's pacing)
	lastEnd  time.Time
	lastTook time.Duration
	// committer only: the pages the last commit's journal frame touched
	// (0: it went to the file) and its length (run's pacing)
	lastPages int64
	lastFill  int
	fill      fillStats // committer only (fillHold)
	// heldFrom: the records the batch being committed had when it was held
	// for a fuller frame, -1 if it was not (committer only)
	heldFrom int

	stop      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

type brokenErr struct{ err error }

// compactSuffix names the temporary file of a compaction in progress.
const compactSuffix = ".compacting"

// brokenSuffix names the marker left when a running store hit corruption.
const brokenSuffix = ".corrupt"

// Open opens or creates the store at path; nil opts means DefaultOptions.
//
// A file that bbolt cannot open, that is truncated, or whose metadata is
// unreadable is renamed to path.bad-<UTC time> and replaced by a fresh store;
// this is logged at error level, counted in Stats.Recovered, recorded as a
// store-level gap (Gaps("")) and as a "corrupt" gap on each stream when it is
// configured again, and the fresh store starts each stream's seq at the Unix
// time in microseconds so that seqs never go backwards. A file locked by
// another process (ErrLocked) or written by a newer format (ErrFormatVersion)
// is never moved aside.
func Open(path string, opts *Options) (*DB, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	db := &DB{path: path, opts: o, streams: map[string]*streamState{},
		notifyCh: map[string]chan struct{}{}, stop: make(chan struct{}), dropLogged: map[string]time.Time{},
		dedupSeed: maphash.MakeSeed()}
	if !o.ReadOnly {
		dir := filepath.Dir(path)
		if _, err := os.Stat(dir); os.IsNotExist(err) {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return nil, fmt.Errorf("buffer: %w", err)
			}
			if err := syncDir(filepath.Dir(dir)); err != nil {
				return nil, err
			}
		}
		// A compaction killed before its rename leaves only garbage.
		if err := os.Remove(path + compactSuffix); err == nil {
			o.Logger.Warn("buffer: removed an interrupted compaction", "path", path+compactSuffix)
		}
	}
	err = db.openAndLoad()
	if errors.Is(err, ErrCorrupt) && !o.ReadOnly && !o.NoMoveAside {
		if err = db.moveAside(err); err == nil {
			err = db.openAndLoad()
		}
	}
	if err != nil {
		return nil, err
	}
	if !o.ReadOnly {
		db.reqs = make(chan *request, 4096)
		db.wg.Add(2)
		go db.run()
		go db.sweeper()
	}
	return db, nil
}

// Boot returns the boot counter: how many times the store was opened for
// writing, including this time.
func (db *DB) Boot() uint64 {
	db.stateMu.RLock()
	defer db.stateMu.RUnlock()
	return db.store.Boot
}

// Path returns the file path the store was opened with.
func (db *DB) Path() string { return db.path }

// Close stops the background work, waits for queued writes to commit, and
// closes the file. It is idempotent. Notify channels are closed, so that
// waiters wake up and see ErrClosed.
func (db *DB) Close() error {
	db.closeOnce.Do(func() {
		if !db.opts.ReadOnly {
			db.sendMu.Lock()
			db.closed = true
			close(db.reqs)
			db.sendMu.Unlock()
			close(db.stop)
			db.wg.Wait()
		}
		if !db.opts.ReadOnly && db.bolt != nil {
			// The committer is gone: move what the journal holds.
			db.closeErr = db.move()
		}
		if db.jnl != nil {
			_ = db.jnl.close()
		}
		db.swapMu.Lock()
		if db.bolt != nil {
			if err := db.bolt.Close(); db.closeErr == nil {
				db.closeErr = err
			}
			db.bolt = nil
		}
		db.swapMu.Unlock()
		db.notifyMu.Lock()
		for _, ch := range db.notifyCh {
			close(ch)
		}
		db.notifyClosed = true
		db.notifyMu.Unlock()
	})
	return db.closeErr
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("buffer: sync dir: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("buffer: sync dir: %w", err)
	}
	return nil
}

// dataBucket returns a stream's data bucket (nil if absent). All access to
// data buckets goes through here, so tests can prove Open never reads them.
func (db *DB) dataBucket(tx *bolt.Tx, name string) *bolt.Bucket {
	db.dataTouches.Add(1)
	return tx.Bucket(bktData).Bucket([]byte(name))
}
