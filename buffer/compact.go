package buffer

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// compactTxSize bounds each copy transaction of a compaction.
const compactTxSize = 4 << 20

// Compact rewrites the store into a new file holding only live data, syncs
// it, renames it over the old file and syncs the directory. Writes wait while
// it runs (it runs on the commit goroutine); reads wait only for the swap. A
// crash at any point leaves either the old or the new file complete at the
// path. The background sweep calls it when the file is CompactRatio times the
// data bbolt has in use.
func (db *DB) Compact(ctx context.Context) error {
	return db.submit(ctx, &request{solo: db.compact})
}

func (db *DB) compact() error {
	tmp := db.path + compactSuffix
	_ = os.Remove(tmp)
	before := db.fileSize()
	dst, err := bolt.Open(tmp, 0o600, &bolt.Options{Timeout: db.opts.LockTimeout, FreelistType: bolt.FreelistMapType})
	if err != nil {
		return fmt.Errorf("buffer: compact: %w", err)
	}
	if err := syncDir(filepath.Dir(db.path)); err != nil {
		_ = dst.Close()
		return err
	}
	if err := bolt.Compact(dst, db.bolt, compactTxSize); err != nil {
		_ = dst.Close()
		_ = os.Remove(tmp)
		return fmt.Errorf("buffer: compact: %w", commitError(err))
	}
	// bbolt grows a file ahead of its data (to the next power of two, or
	// 16 MiB beyond what it needs); a compacted file keeps only its pages.
	var used int64
	_ = dst.View(func(tx *bolt.Tx) error { used = tx.Size(); return nil })
	if err := dst.Close(); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("buffer: compact: %w", err)
	}
	if err := truncateSync(tmp, used); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("buffer: compact: %w", commitError(err))
	}
	db.swapMu.Lock()
	defer db.swapMu.Unlock()
	if err := db.bolt.Close(); err != nil {
		return fmt.Errorf("buffer: compact: closing old file: %w", err)
	}
	renameErr := os.Rename(tmp, db.path)
	if renameErr == nil {
		renameErr = syncDir(filepath.Dir(db.path))
	}
	nb, err := openBolt(db.path, &db.opts)
	if err != nil {
		// Nothing usable: refuse further work rather than guess.
		db.markBroken(fmt.Errorf("%w: reopening after compaction: %v", ErrCorrupt, err))
		return err
	}
	db.bolt = nb
	if renameErr != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("buffer: compact: %w", renameErr)
	}
	db.compactions.Add(1)
	db.written.Add(db.fileSize())
	db.opts.Logger.Info("buffer: compacted", "path", db.path, "before_bytes", before, "after_bytes", db.fileSize())
	return nil
}

// truncateSync cuts the file at path to size bytes (if it is longer) and
// fsyncs it, data and size.
func truncateSync(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil {
		return err
	} else if size > 0 && fi.Size() > size {
		if err := f.Truncate(size); err != nil {
			return err
		}
	}
	return f.Sync()
}

func (db *DB) fileSize() int64 {
	fi, err := os.Stat(db.path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// needsCompaction reports whether the file is far larger than its used pages.
func (db *DB) needsCompaction() bool {
	if db.opts.CompactRatio < 0 {
		return false
	}
	size := db.fileSize()
	if size < db.opts.CompactMinSize {
		return false
	}
	var used int64
	err := db.view(func(v *viewTx) error {
		used = v.tx.Size() - int64(db.bolt.Stats().FreeAlloc)
		return nil
	})
	return err == nil && float64(size) > db.opts.CompactRatio*float64(max(used, 1))
}

// sweeper enforces MaxAge and triggers compaction every SweepInterval.
func (db *DB) sweeper() {
	defer db.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	t := time.NewTicker(db.opts.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-db.stop:
			return
		case <-t.C:
		}
		if err := db.sweepNow(ctx); err != nil && err != ErrClosed {
			db.opts.Logger.Error("buffer: sweep failed", "err", err)
		}
		// A quiet journal is moved once its oldest commit is MoveInterval
		// old (a busy one by the committer, after a commit).
		if since := db.pendingSince.Load(); since != 0 && time.Since(time.Unix(0, since)) >= db.opts.MoveInterval {
			if err := db.moveJournal(ctx); err != nil && err != ErrClosed {
				db.opts.Logger.Error("buffer: moving the journal into the store failed", "err", err)
			}
		}
		if db.needsCompaction() {
			if err := db.Compact(ctx); err != nil && err != ErrClosed {
				db.opts.Logger.Error("buffer: automatic compaction failed", "err", err)
			}
		}
	}
}

// sweepNow drops expired entries of every stream, if any are due.
func (db *DB) sweepNow(ctx context.Context) error {
	now := db.opts.Now().UnixNano()
	due := false
	db.stateMu.RLock()
	for _, st := range db.streams {
		if st.cfg.MaxAge > 0 && st.first < st.next && now-st.oldestAt >= int64(st.cfg.MaxAge) {
			due = true
		}
	}
	db.stateMu.RUnlock()
	if !due {
		return nil
	}
	return db.submit(ctx, &request{apply: func(s *stage) error { return s.sweep() }})
}
