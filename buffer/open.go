package buffer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// openAndLoad opens the bbolt file and loads the metadata, classifying a bad
// file as ErrCorrupt.
func (db *DB) openAndLoad() (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: panic while opening: %v", ErrCorrupt, p)
		}
	}()
	if _, err := os.Stat(db.path + brokenSuffix); err == nil && !db.opts.ReadOnly {
		return fmt.Errorf("%w: marked corrupt by a previous run", ErrCorrupt)
	}
	_, statErr := os.Stat(db.path)
	b, err := openBolt(db.path, &db.opts)
	if err != nil {
		return err
	}
	if os.IsNotExist(statErr) {
		if err := syncDir(filepath.Dir(db.path)); err != nil {
			_ = b.Close()
			return err
		}
	}
	var jf *os.File // the journal, to replay
	if !db.opts.ReadOnly {
		jf, err = os.OpenFile(db.path+journalSuffix, os.O_RDWR, 0)
	} else {
		jf, err = os.Open(db.path + journalSuffix)
	}
	if os.IsNotExist(err) {
		jf, err = nil, nil
	}
	if err != nil {
		_ = b.Close()
		return fmt.Errorf("buffer: journal: %w", err)
	}
	gen, err := db.load(b, jf)
	if err != nil {
		_ = b.Close()
		if jf != nil {
			_ = jf.Close()
		}
		return err
	}
	db.bolt = b
	if db.opts.ReadOnly {
		if jf != nil {
			_ = jf.Close()
		}
		return nil
	}
	return db.startJournal(jf, gen)
}

// startJournal preallocates the journal and makes it the durability point
// of the commits to come, whose frames are of generation gen. Without a
// journal (Options.JournalSize < 0, or no room to preallocate it) every
// commit goes to the file.
func (db *DB) startJournal(f *os.File, gen uint64) error {
	if db.opts.JournalSize < 0 {
		if f != nil {
			_ = f.Close()
		}
		return nil
	}
	if f == nil {
		var err error
		if f, err = os.OpenFile(db.path+journalSuffix, os.O_RDWR|os.O_CREATE, 0o600); err != nil {
			return fmt.Errorf("buffer: journal: %w", err)
		}
		if err := syncDir(filepath.Dir(db.path)); err != nil {
			_ = f.Close()
			return err
		}
	}
	j := &journal{f: f, gen: gen, dirty: -1}
	fi, err := f.Stat()
	if err == nil {
		j.size = fi.Size()
		if j.size < db.opts.JournalSize {
			if err = preallocate(f, j.size, db.opts.JournalSize); err == nil {
				db.written.Add(db.opts.JournalSize - j.size)
				j.size = db.opts.JournalSize
			} else {
				_ = f.Truncate(j.size)
			}
		}
	}
	if err != nil {
		_ = f.Close()
		db.opts.Logger.Warn("buffer: cannot preallocate the journal; every commit goes to the store file (more flash writes per event)",
			"path", db.path+journalSuffix, "err", err)
		return nil
	}
	db.jnl = j
	return nil
}

// replay applies the journal's committed frames that the file does not
// hold (journal.go) in tx, and returns the generation of the next frames.
// A read-only open cannot: it refuses a file with frames to replay.
func (db *DB) replay(tx *bolt.Tx, jf *os.File) (uint64, error) {
	var applied uint64
	if v := tx.Bucket(bktMeta).Get(keyJournal); len(v) == 8 {
		applied = binary.BigEndian.Uint64(v)
	}
	if jf == nil {
		return applied + 1, nil
	}
	fi, err := jf.Stat()
	if err != nil {
		return 0, fmt.Errorf("buffer: journal: %w", err)
	}
	frames, end, err := readFrames(jf, fi.Size(), applied+1)
	if err != nil || len(frames) == 0 {
		return applied + 1, err
	}
	if db.opts.ReadOnly {
		return 0, fmt.Errorf("%w: %d commits (%d bytes) in %s", ErrReplayPending, len(frames), end, db.path+journalSuffix)
	}
	n := 0
	for _, ops := range frames {
		if err := applyOps(tx, ops); err != nil {
			return 0, err
		}
		n += len(ops)
	}
	if err := tx.Bucket(bktMeta).Put(keyJournal, binary.BigEndian.AppendUint64(nil, applied+1)); err != nil {
		return 0, err
	}
	db.opts.Logger.Info("buffer: replayed the journal into the store", "commits", len(frames), "changes", n, "bytes", end)
	return applied + 2, nil
}

func openBolt(path string, o *Options) (*bolt.DB, error) {
	b, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout:        o.LockTimeout,
		ReadOnly:       o.ReadOnly,
		MaxSize:        int(o.MaxFileSize),
		FreelistType:   bolt.FreelistMapType,
		NoFreelistSync: o.noFreelistSync,
		PageSize:       o.pageSize,
	})
	switch {
	case err == nil:
	case errors.Is(err, berrors.ErrTimeout):
		return nil, fmt.Errorf("%w: %s: waited %v", ErrLocked, path, o.LockTimeout)
	case envError(err):
		return nil, fmt.Errorf("buffer: open %s: %w", path, err)
	default: // anything bbolt says about the content: invalid, checksum, too small...
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	// A truncated file opens fine and faults later: check its size now.
	fi, err := os.Stat(path)
	if err == nil {
		err = b.View(func(tx *bolt.Tx) error {
			if tx.Size() > fi.Size() {
				return fmt.Errorf("%w: file is %d bytes, its metadata needs %d (truncated)", ErrCorrupt, fi.Size(), tx.Size())
			}
			return nil
		})
	}
	if err != nil {
		_ = b.Close()
		return nil, err
	}
	return b, nil
}

// load checks the format, replays the journal jf (nil: none) and reads the
// metadata bucket and the stream records; it never opens a data bucket but
// to replay journaled entries. It returns the journal generation to write.
func (db *DB) load(b *bolt.DB, jf *os.File) (uint64, error) {
	ro := db.opts.ReadOnly
	var gen uint64
	fn := func(tx *bolt.Tx) error {
		if !ro {
			tx.OnCommit(func() { db.written.Add(txWritten(tx, b)) })
		}
		if err := checkFormat(tx, !ro); err != nil {
			return err
		}
		var err error
		if gen, err = db.replay(tx, jf); err != nil {
			return err
		}
		for _, name := range requiredBuckets {
			if tx.Bucket(name) == nil && !(ro && string(name) == string(bktDedup)) {
				return fmt.Errorf("%w: bucket %q missing", ErrCorrupt, name)
			}
		}
		var st storeRecord
		if _, err := getJSON(tx.Bucket(bktMeta), keyStore, &st); err != nil {
			return err
		}
		streams := map[string]*streamState{}
		err = tx.Bucket(bktStreams).ForEach(func(k, v []byte) error {
			var r streamRecord
			if _, err := getJSON(tx.Bucket(bktStreams), k, &r); err != nil {
				return err
			}
			if r.First > r.Next || r.Config.Name != string(k) {
				return fmt.Errorf("%w: stream record %q inconsistent", ErrCorrupt, k)
			}
			streams[string(k)] = fromRecord(r)
			return nil
		})
		if err != nil {
			return err
		}
		if !ro {
			st.Boot++
			if db.recovered {
				st.Recovered++
				st.RecoveredBoot = st.Boot
			}
			if err := putJSON(tx.Bucket(bktMeta), keyStore, st); err != nil {
				return err
			}
		}
		db.store, db.streams, db.total, db.gapTotal = st, streams, 0, 0
		for _, s := range streams {
			db.total += s.bytes
			db.gapTotal += s.gapBytes()
		}
		return nil
	}
	if ro {
		return gen, b.View(fn)
	}
	if err := b.Update(fn); err != nil {
		return 0, err
	}
	if db.recovered {
		return gen, db.recordStoreGap(b)
	}
	return gen, nil
}

func (db *DB) recordStoreGap(b *bolt.DB) error {
	return b.Update(func(tx *bolt.Tx) error {
		tx.OnCommit(func() { db.written.Add(txWritten(tx, b)) })
		s := db.newStage(tx)
		if err := s.recordGap(storeGaps, nil, Gap{Reason: ReasonCorrupt, At: s.now}); err != nil {
			return err
		}
		if err := s.flush(); err != nil {
			return err
		}
		db.store = s.store
		return nil
	})
}

// moveAside renames a bad file out of the way so that a fresh one is created.
func (db *DB) moveAside(cause error) error {
	stamp := db.opts.Now().UTC().Format("20060102T150405Z")
	dst := db.path + ".bad-" + stamp
	for i := 1; ; i++ {
		if _, err := os.Lstat(dst); os.IsNotExist(err) {
			break
		}
		dst = fmt.Sprintf("%s.bad-%s-%d", db.path, stamp, i)
	}
	if err := os.Rename(db.path, dst); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("buffer: moving bad store aside: %w (after %v)", err, cause)
	}
	// Its journal goes with it (the fresh file would ignore its frames).
	if err := os.Rename(db.path+journalSuffix, dst+journalSuffix); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("buffer: moving bad store's journal aside: %w (after %v)", err, cause)
	}
	_ = os.Remove(db.path + brokenSuffix)
	if err := syncDir(filepath.Dir(db.path)); err != nil {
		return err
	}
	db.opts.Logger.Error("buffer: STORE FILE UNREADABLE: moved aside, starting a fresh store; buffered events in it are lost to the uplink",
		"path", db.path, "moved_to", dst, "err", cause)
	db.recovered = true
	return nil
}

// markBroken refuses further writes and leaves a marker so that the next Open
// moves the file aside instead of crashing on it again.
func (db *DB) markBroken(err error) {
	db.broken.CompareAndSwap(nil, &brokenErr{err})
	if f, ferr := os.OpenFile(db.path+brokenSuffix, os.O_CREATE|os.O_WRONLY, 0o600); ferr == nil {
		_, _ = f.WriteString(err.Error() + "\n")
		_ = f.Sync()
		_ = f.Close()
		_ = syncDir(filepath.Dir(db.path))
	}
}

// envError reports whether an open failure comes from the environment (no
// permission, read-only file system, no memory or descriptors) rather than
// from the file's content; such a file must not be moved aside.
func envError(err error) bool {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return true
	}
	for _, e := range []error{syscall.EACCES, syscall.EPERM, syscall.EROFS, syscall.ENOMEM,
		syscall.EMFILE, syscall.ENFILE, syscall.ENOSPC, syscall.EIO} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
