package buffer

import (
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
	if err := db.load(b); err != nil {
		_ = b.Close()
		return err
	}
	db.bolt = b
	return nil
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

// load checks the format and reads the metadata bucket and the stream
// records; it never opens a data bucket.
func (db *DB) load(b *bolt.DB) error {
	ro := db.opts.ReadOnly
	fn := func(tx *bolt.Tx) error {
		if !ro {
			tx.OnCommit(func() { db.written.Add(txWritten(tx, b)) })
		}
		if err := checkFormat(tx, !ro); err != nil {
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
		err := tx.Bucket(bktStreams).ForEach(func(k, v []byte) error {
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
		return b.View(fn)
	}
	if err := b.Update(fn); err != nil {
		return err
	}
	if db.recovered {
		return db.recordStoreGap(b)
	}
	return nil
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
