package buffer

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The committer's side of the journal (journal.go): the open write
// transaction, journaled group commits, and moves into the file.

// writeTx returns the open write transaction, beginning one (and redoing
// the journaled changes not yet moved) if there is none.
func (db *DB) writeTx() (*bolt.Tx, error) {
	if db.wtx != nil {
		return db.wtx, nil
	}
	tx, err := db.bolt.Begin(true)
	if err != nil {
		return nil, err
	}
	if err := applyOps(tx, db.pending); err != nil {
		_ = tx.Rollback()
		return nil, err
	}
	db.wtx = tx
	return tx, nil
}

// abortTx rolls back the open transaction, releasing bbolt's writer lock.
func (db *DB) abortTx() {
	if db.wtx != nil {
		if db.wtx.DB() != nil {
			_ = db.wtx.Rollback()
		}
		db.wtx = nil
	}
}

// commitTx commits the open transaction to the file and, if it holds
// journaled frames, records their generation in it and starts the journal's
// next generation.
func (db *DB) commitTx() error {
	tx := db.wtx
	journaled := db.jnl != nil && db.jnl.off > 0
	if journaled {
		if err := tx.Bucket(bktMeta).Put(keyJournal, binary.BigEndian.AppendUint64(nil, db.jnl.gen)); err != nil {
			return err
		}
	}
	err := tx.Commit()
	db.wtx = nil
	if err != nil {
		if tx.DB() != nil {
			_ = tx.Rollback()
		}
		return err
	}
	db.written.Add(txWritten(tx, db.bolt))
	db.lastPages = 0
	db.moveErr = nil
	db.pending = nil
	db.pendingSince.Store(0)
	if journaled {
		db.jnl.reset()
		db.moves.Add(1)
	}
	return nil
}

// journalFrame returns the frame of the stage's changes, or nil when they
// go to the file instead: no journal, a change the journal does not carry,
// no room left in it, or appends (grows) while the file cannot take them:
// close to Options.MaxFileSize, or after a move failed (a full disk). The
// journal must not acknowledge events that the file may have no room for:
// then every append meets the limit in its own commit, as without a
// journal, while removals (acks) still go to the journal.
func (db *DB) journalFrame(s *stage, grows bool) (frame []byte, at int64) {
	j := db.jnl
	if j == nil || s.heavy || len(s.ops) == 0 || grows && db.moveErr != nil {
		return nil, 0
	}
	f := j.frameOf(uint64(j.off), s.ops)
	at, ok := j.place(len(f))
	if !ok {
		return nil, 0
	}
	if m := db.opts.MaxFileSize; m > 0 && grows {
		// bbolt grows the file by up to 16 MiB at a time (AllocSize); a
		// move writes at most about twice what it moves.
		if db.fileSize()+2*j.holds(at, f)+int64(db.bolt.AllocSize)+1<<20 > m {
			return nil, 0
		}
	}
	return f, at
}

// journalWrite writes frame at at and, unless lazy, syncs it: the
// durability point of a journaled group commit. A lazy commit (acks only,
// see Ack) is synced by the next commit that is not.
func (db *DB) journalWrite(frame []byte, at int64, ops []jop, lazy bool) error {
	n, err := db.jnl.write(frame, at, !lazy)
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	db.written.Add(n)
	db.jwritten.Add(n)
	if !lazy {
		db.lastPages, db.lastFill = n/journalPage, len(frame)
	}
	db.pending = append(db.pending, ops...)
	if db.pendingSince.Load() == 0 {
		db.pendingSince.Store(time.Now().UnixNano())
	}
	return nil
}

// moveDue reports whether the journal should be moved into the file now:
// half full (its frames counted as decoded: compressed frames take less
// room, not less memory or less to move), or its oldest commit older than
// Options.MoveInterval.
func (db *DB) moveDue() bool {
	j := db.jnl
	if j == nil || j.off == 0 || time.Now().Before(db.moveRetry) {
		return false
	}
	since := db.pendingSince.Load()
	return j.off+j.grown >= j.size/2 || since != 0 && time.Since(time.Unix(0, since)) >= db.opts.MoveInterval
}

// move commits the open transaction, with every journaled change, to the
// file in one bbolt transaction, and empties the overlay. Committer (or
// Close) only.
func (db *DB) move() error {
	if len(db.pending) == 0 && (db.jnl == nil || db.jnl.off == 0) {
		db.abortTx() // nothing journaled: nothing to keep
		return nil
	}
	err := db.guard(func() error {
		if _, err := db.writeTx(); err != nil {
			return err
		}
		return db.commitTx()
	})
	if err != nil {
		db.abortTx()
		db.moveRetry = time.Now().Add(time.Second)
		db.moveErr = commitError(err)
		return db.moveErr
	}
	db.stateMu.Lock()
	db.overlay = nil
	db.stateMu.Unlock()
	return nil
}

// moveJournal moves the journal's commits into the file now.
func (db *DB) moveJournal(ctx context.Context) error {
	return db.submit(ctx, &request{solo: func() error { return nil }})
}

// runSolo runs a request that needs the file to itself (compaction, check)
// after moving the journal into it.
func (db *DB) runSolo(r *request) {
	if r.inTx {
		db.finish(r, db.guard(r.solo))
		return
	}
	if err := db.move(); err != nil {
		db.finish(r, err)
		return
	}
	db.finish(r, db.guard(r.solo))
}
