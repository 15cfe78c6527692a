package buffer

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync/atomic"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// request is one write call waiting for the committer.
type request struct {
	n        int  // records, for MaxBatch
	isAppend bool // dropped from the retry after a failed commit
	// lazy: a journaled commit of nothing but lazy requests (acks) is not
	// synced by itself, but by the next commit that is (see Ack).
	lazy  bool
	apply func(s *stage) error
	// solo requests (compaction, check) run alone, outside a batch.
	solo func() error
	// inTx: solo runs in the open write transaction, without moving the
	// journal into the file first.
	inTx  bool
	state atomic.Int32 // reqPending, reqTaken, reqCancelled
	done  chan error
	at    time.Time // when it was queued
}

const (
	reqPending int32 = iota
	reqTaken
	reqCancelled
)

// submit queues r and waits for its outcome.
func (db *DB) submit(ctx context.Context, r *request) error {
	if db.opts.ReadOnly {
		return ErrReadOnly
	}
	r.done = make(chan error, 1)
	r.at = time.Now()
	db.inflight.Add(1)
	db.sendMu.RLock()
	if db.closed {
		db.sendMu.RUnlock()
		db.inflight.Add(-1)
		return ErrClosed
	}
	select {
	case db.reqs <- r:
	case <-ctx.Done():
		db.sendMu.RUnlock()
		db.inflight.Add(-1)
		return ctx.Err()
	}
	db.sendMu.RUnlock()
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		if r.state.CompareAndSwap(reqPending, reqCancelled) {
			db.inflight.Add(-1)
			return ctx.Err()
		}
		return <-r.done
	}
}

// quietGap is how long the committer waits for the callers of the previous
// commit to come back once everyone in flight has joined the batch.
const quietGap = 100 * time.Microsecond

// run is the committer: it groups queued requests into transactions.
//
// A batch is committed when MaxBatch records are in it, when CommitWindow has
// passed since its first request, or once every write call in progress has
// joined and either as many calls as in the previous batch have joined (in a
// steady state the same callers come back) or none arrived for quietGap.
// Waiting longer could only add latency: nobody else is about to join.
//
// Pacing: every commit writes a handful of whole pages and syncs them,
// however few records it holds, so the flash wear per event is that cost
// divided by the records per commit. When a batch starts with a call that
// was queued while the previous commit was being written (calls come in
// faster than commits go out), it is not committed early before half the
// previous commit's duration (begin to end of sync) has passed since that
// commit ended: the calls of that time join it too, for at most half a
// commit time more latency (and never beyond CommitWindow). At low rates,
// and when the same callers come back only once their commit is done
// (nobody else is about to join), nothing waits. BenchmarkFlashWrites: at
// 2,000 events/s, about twice the events per commit and half the bytes
// written per event.
//
// Fill: at rates where a journal page's worth of records arrives within
// Options.FillWindow, a batch that would be committed (window, quiet or
// everyone joined) is held instead until its frame is estimated to fill
// the page, or FillWindow after its first write (fillHold).
// BenchmarkFlashWrites at 2,000 events/s (with compressed frames): 21-22
// events per commit instead of 6, 189 B of journal per event instead of
// 660; BenchmarkAppendLatencyJournal at 1,000 events/s: nothing held.
func (db *DB) run() {
	defer db.wg.Done()
	window, quiet, pace := time.NewTimer(time.Hour), time.NewTimer(time.Hour), time.NewTimer(time.Hour)
	window.Stop()
	quiet.Stop()
	pace.Stop()
	var batch []*request
	var solo *request
	lastBatch := 1
	for {
		var r *request
		if solo != nil {
			// Already taken by the batch it arrived during: a second
			// CompareAndSwap would fail and lose it, its caller waiting
			// forever (seen with moveJournal right after an Ack).
			r, solo = solo, nil
		} else {
			var ok bool
			if r, ok = <-db.reqs; !ok {
				return
			}
			if !r.state.CompareAndSwap(reqPending, reqTaken) {
				continue
			}
		}
		if r.solo != nil {
			db.runSolo(r)
			continue
		}
		batch = append(batch[:0], r)
		n := r.n
		first := r.at
		window.Reset(db.opts.CommitWindow)
		var paceC <-chan time.Time
		if p := db.paceFor(db.lastTook, r.at.Before(db.lastEnd)); p > 0 {
			if wait := time.Until(db.lastEnd.Add(p)); wait > 0 {
				pace.Reset(wait)
				paceC = pace.C
			}
		}
		fill := 0 // > 0: held for a full page until this many records (fillHold)
	collect:
		for n < db.opts.MaxBatch && (fill == 0 || n < fill) {
			var quietC <-chan time.Time
			if paceC == nil && fill == 0 && int64(len(batch)) >= db.inflight.Load() {
				if len(batch) >= lastBatch {
					if fill = db.holdForFill(window, n, first); fill > 0 {
						continue
					}
					break
				}
				quiet.Reset(min(quietGap, db.opts.CommitWindow))
				quietC = quiet.C
			}
			select {
			case r, ok := <-db.reqs:
				quiet.Stop()
				if !ok {
					break collect
				}
				if !r.state.CompareAndSwap(reqPending, reqTaken) {
					continue
				}
				if r.solo != nil {
					solo = r
					break collect
				}
				batch = append(batch, r)
				n += r.n
			case <-window.C:
				if fill == 0 {
					if fill = db.holdForFill(window, n, first); fill > 0 {
						continue
					}
				}
				break collect
			case <-quietC:
				if fill = db.holdForFill(window, n, first); fill > 0 {
					continue
				}
				break collect
			case <-paceC:
				paceC = nil
			}
		}
		window.Stop()
		quiet.Stop()
		pace.Stop()
		lastBatch = len(batch)
		if fill == 0 {
			db.heldFrom = -1
		}
		db.commit(batch, true)
		clear(batch)
	}
}

// fillHold decides, when a batch of n records whose first write was queued
// at first would be committed, whether to hold it for a fuller journal
// frame (Options.FillWindow): it returns the record count at which the
// frame is estimated to fill a flash page and how much longer to wait for
// it at most, or a zero wait to commit now.
//
// It holds only while the previous commit was a synced journal frame of
// less than a page (the next one costs that page whatever it holds) and
// records arrive (db.fill.rate) fast enough that their uncompressed bytes
// would fill a page within FillWindow: below that rate holding would not
// fill one and would only add latency. The target is estimated from the
// previous frame (fillStats) and leaves a tenth of the page for its error.
// Nor does it hold while holding is off because it slowed the arrivals
// (fillStats.off): callers that wait for their commit before they write
// again (a closed loop: sources that each keep one batch in flight, a
// device whose in-flight window is full) bring no more records during a
// hold, so a hold would only throttle them.
func (db *DB) fillHold(n int, first time.Time) (target int, wait time.Duration) {
	f, fw := &db.fill, db.opts.FillWindow
	if db.jnl == nil || fw <= db.opts.CommitWindow || db.opts.commitPace != 0 ||
		db.lastPages != 1 || f.perRecord <= 0 || f.rate*f.perRecord*fw.Seconds() < journalPage ||
		first.Before(f.off) {
		return 0, 0
	}
	room := journalPage*9/10/f.ratio - float64(f.fixed)
	target = int(room / f.perRecord)
	wait = time.Until(first.Add(fw))
	if target <= n || wait <= 0 {
		return 0, 0
	}
	return target, wait
}

// fillStats is what fillHold knows of the synced journal frames so far.
type fillStats struct {
	rate      float64   // records per second, averaged over commits
	records   float64   // records per commit, averaged
	secs      float64   // seconds from one commit's start to the next, averaged
	perRecord float64   // uncompressed bytes per record of the last frame
	fixed     int       // its bytes that are not records' (header, counters)
	ratio     float64   // its length ÷ its uncompressed length
	start     time.Time // when its commit began

	// Whether holding slows the arrivals (fillHold): records per second
	// over the commits that were not held and over those that were, and
	// what the holds gathered. When the callers send at their own pace
	// both rates are the same (a hold makes the next commits bigger) and a
	// hold gathers records; when they wait for their commits, holding
	// makes them send less and a hold gathers (almost) nothing, as they
	// are all in the batch already. After a probe of fillProbe held
	// commits, a held rate under half the free one with holds that
	// gathered less than a quarter of what they started from turns holding
	// off until off, for offFor (1s, doubling up to 30s while it keeps
	// finding a closed loop). Both are needed: the free rate alone may
	// come from a burst (a backlog flushed in small writes, sources
	// starting together), and an open loop held against it would be
	// turned off, halving the records per page.
	free, held     rateAvg
	probe          int // held commits in this probe
	gained, heldAt int // over the probe: records the holds gathered, and had when they began
	off            time.Time
	offFor         time.Duration
}

// fillProbe is how many held commits a probe of the held rate takes.
const fillProbe = 8

// rateAvg is a rate of records per second averaged over about eight
// commits, records and time apart (see fillStats.update).
type rateAvg struct{ records, secs float64 }

func (a *rateAvg) add(records int, secs float64) {
	a.records += (float64(records) - a.records) / 8
	a.secs += (secs - a.secs) / 8
}

func (a rateAvg) rate() float64 {
	if a.secs <= 0 {
		return 0
	}
	return a.records / a.secs
}

// update records a synced journal frame of length size holding records
// records (counted of them for the rate: smallRecords), raw bytes
// uncompressed of which data were records' own, whose commit began at
// start; heldFrom is the records the batch had when it was held for a
// fuller frame (fillHold), -1 if it was not.
func (f *fillStats) update(records, counted, size, raw, data int, start time.Time, heldFrom int) {
	if records <= 0 || raw <= 0 {
		return
	}
	per := float64(data) / float64(records)
	if !f.start.IsZero() {
		// Records and time averaged apart, over about eight commits:
		// steady through the noise of single intervals (a mean of
		// per-interval rates would be skewed by short ones), and a burst
		// shows within a few tens of milliseconds.
		secs := start.Sub(f.start).Seconds()
		f.records += (float64(counted) - f.records) / 8
		f.secs += (secs - f.secs) / 8
		if f.secs > 0 {
			f.rate = f.records / f.secs
		}
		if heldFrom < 0 {
			f.free.add(counted, secs)
		} else {
			f.held.add(counted, secs)
			f.probe++
			f.gained += max(records-heldFrom, 0)
			f.heldAt += heldFrom
		}
		if f.probe >= fillProbe {
			if f.held.rate() < f.free.rate()/2 && 4*f.gained < f.heldAt {
				f.offFor = min(max(2*f.offFor, time.Second), 30*time.Second)
				f.off = start.Add(f.offFor)
			} else {
				f.offFor = 0
			}
			f.probe, f.held, f.gained, f.heldAt = 0, rateAvg{}, 0, 0
		}
	}
	f.start = start
	f.perRecord = per
	f.fixed = raw - data
	// Bounded below: a frame of identical records compresses to almost
	// nothing, and a target taken from it would overflow the page with
	// the next, ordinary frame.
	f.ratio = min(max(float64(size)/float64(raw), minFillRatio), 1)
}

// minFillRatio is the best compression fillHold counts on (zstd on a
// frame of varied events: about 0.3 for CBOR scans, 0.6 for random text).
const minFillRatio = 0.3

// holdForFill is fillHold for run: when the batch is held, it moves the
// window to the end of the hold and returns the target record count.
func (db *DB) holdForFill(window *time.Timer, n int, first time.Time) int {
	target, wait := db.fillHold(n, first)
	if wait <= 0 {
		return 0
	}
	window.Reset(wait)
	db.heldFrom = n
	return target
}

// paceFor is how long after the previous commit ended a batch waits before
// it may be committed early (see run), given that commit's duration and
// whether the batch's first call was queued while it was being written.
//
// With the journal, a commit costs one flash page however little it holds
// (up to a page): after a commit whose frame filled less than half a page,
// a batch that started while it was written (calls keep coming) waits for
// the whole CommitWindow. BenchmarkFlashWrites at 2,000 events/s: more
// events per commit and fewer bytes per event, for up to CommitWindow more
// latency (BenchmarkAppendLatencyJournal).
func (db *DB) paceFor(took time.Duration, busy bool) time.Duration {
	switch p := db.opts.commitPace; {
	case p > 0: // fixed, for benchmarks
		return p
	case p < 0: // off
		return 0
	}
	if !busy {
		return 0
	}
	if db.jnl != nil && db.lastPages == 1 && db.lastFill < journalPage/2 {
		// The previous commit was a journal frame of less than half a
		// page: the next one costs the same page whatever it holds, so
		// while calls keep coming in, it takes what the window brings.
		return db.opts.CommitWindow
	}
	return min(took/2, db.opts.CommitWindow)
}

// smallRecords is the records of the batch's requests for fillStats, each
// request counting for at most the records a page holds uncompressed (the
// frame's raw bytes per record): a large request (a backlog, a device's
// pipelined burst) fills pages on its own, and its size says nothing of
// the small writes that holding could gather after it.
func smallRecords(batch []*request, raw int) int {
	n := records(batch)
	if n == 0 {
		return 0
	}
	page := max(journalPage*n/raw, 1)
	c := 0
	for _, r := range batch {
		c += min(r.n, page)
	}
	return c
}

// records is the number of records the batch's requests write.
func records(batch []*request) int {
	n := 0
	for _, r := range batch {
		n += r.n
	}
	return n
}

func (db *DB) finish(r *request, err error) {
	r.done <- err
	db.inflight.Add(-1)
}

// guard runs f, turning a bbolt panic into ErrCorrupt and marking the store.
func (db *DB) guard(f func() error) (err error) {
	if b := db.broken.Load(); b != nil {
		return b.err
	}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: panic: %v", ErrCorrupt, p)
			db.opts.Logger.Error("buffer: store failed; it will be moved aside at the next Open",
				"err", err, "stack", string(debug.Stack()))
			db.markBroken(err)
		}
	}()
	return f()
}

// commit runs one group commit for batch and answers every request: its
// changes go to the open write transaction and then, if they can, to the
// journal (one append and fdatasync), else to the file with everything the
// journal holds (one bbolt commit).
func (db *DB) commit(batch []*request, retry bool) {
	results := make([]error, len(batch))
	var s *stage
	undo := -1 // a request that failed after writing part of its records
	start := time.Now()
	moved := false
	err := db.guard(func() error {
		tx, err := db.writeTx()
		if err != nil {
			return err
		}
		s = db.newStage(tx)
		for i, r := range batch {
			results[i] = r.apply(s)
			var fe *fatalError
			if errors.As(results[i], &fe) {
				return fe.err
			}
			var pe *partialError
			if errors.As(results[i], &pe) {
				undo, results[i] = i, pe.err
				return errUndo
			}
		}
		if err := s.flush(); err != nil {
			return err
		}
		grows, lazy := false, true
		for _, r := range batch {
			grows = grows || r.isAppend
			lazy = lazy && r.lazy
		}
		if frame, at := db.journalFrame(s, grows); frame != nil {
			if err := db.journalWrite(frame, at, s.ops, lazy); err != nil {
				return err
			}
			if !lazy {
				raw, data := frameHeader, 0
				for i := range s.ops {
					k := s.ops[i].encodedLen()
					raw += k
					if s.ops[i].bkt == jData {
						data += k
					}
				}
				db.fill.update(records(batch), smallRecords(batch, raw), len(frame), raw, data, start, db.heldFrom)
			}
			return nil
		}
		if len(s.ops) == 0 && !s.heavy {
			return nil // nothing changed: nothing to make durable
		}
		moved = true
		return db.commitTx()
	})
	// Before any caller is answered: a call queued after this is not one
	// that came in while the commit was being written (run's pacing).
	db.lastEnd = time.Now()
	db.lastTook = db.lastEnd.Sub(start)
	if err != nil {
		// Undo the transaction; the journaled changes it held are redone
		// in the next one (writeTx).
		db.abortTx()
		// The in-memory dedup indexes may hold keys of the failed
		// transaction: the next lookups rebuild them from the file.
		db.dedupMem = nil
		if undo >= 0 && errors.Is(err, errUndo) {
			// Roll back what that request wrote; the others commit
			// without it.
			db.finish(batch[undo], results[undo])
			rest := append(append([]*request(nil), batch[:undo]...), batch[undo+1:]...)
			if len(rest) > 0 {
				db.commit(rest, retry)
			}
			return
		}
		err = commitError(err)
		if retry && (errors.Is(err, ErrDiskBudget) || errors.Is(err, ErrDiskFull)) {
			// Appends made the file grow; the other requests (acks above
			// all, which free space) get a transaction of their own.
			var rest []*request
			for _, r := range batch {
				if r.isAppend {
					db.finish(r, err)
				} else {
					rest = append(rest, r)
				}
			}
			if len(rest) > 0 {
				db.commit(rest, false)
			}
			return
		}
		for _, r := range batch {
			db.finish(r, err)
		}
		return
	}
	db.commits.Add(1)
	if f := db.opts.OnCommit; f != nil {
		f(records(batch), time.Since(start))
	}
	s.publish(moved)
	db.signal(s.notify)
	for i, r := range batch {
		db.finish(r, results[i])
	}
	if db.moveDue() {
		if err := db.move(); err != nil {
			db.opts.Logger.Error("buffer: moving the journal into the store failed; retrying in a second (appends continue while the journal has room)", "err", err)
		}
	}
}

// partialError is what a request's apply returns when it fails after it has
// written to the transaction (AppendBatch, a later stream refused): the
// commit is rolled back and redone without that request.
type partialError struct{ err error }

func (e *partialError) Error() string { return e.err.Error() }

var errUndo = errors.New("buffer: request undone")

// txWritten is what a committed write transaction asked the file system to
// write: every page it allocated (dirty nodes, the freelist) and the meta
// page.
func txWritten(tx *bolt.Tx, b *bolt.DB) int64 {
	st := tx.Stats()
	return st.GetPageAlloc() + int64(b.Info().PageSize)
}

// commitError maps storage errors to the package's sentinels.
func commitError(err error) error {
	switch {
	case errors.Is(err, berrors.ErrMaxSizeReached):
		return fmt.Errorf("%w: file would exceed MaxFileSize: %v", ErrDiskBudget, err)
	case errors.Is(err, syscall.ENOSPC):
		return fmt.Errorf("%w: %v", ErrDiskFull, err)
	}
	return fmt.Errorf("buffer: commit: %w", err)
}

// signal wakes the Notify channels of the streams that got new entries.
func (db *DB) signal(streams map[string]bool) {
	if len(streams) == 0 {
		return
	}
	db.notifyMu.Lock()
	defer db.notifyMu.Unlock()
	for name := range streams {
		ch, ok := db.notifyCh[name]
		if !ok {
			continue
		}
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}
