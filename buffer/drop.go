package buffer

import (
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Drop reasons, as recorded in Gap.Reason.
const (
	ReasonOverflow = "overflow" // drop-oldest stream over MaxEvents/MaxBytes
	ReasonTTL      = "ttl"      // entry older than MaxAge
	ReasonBudget   = "budget"   // evicted for Options.DiskBudget
	ReasonCorrupt  = "corrupt"  // the store file was unreadable and replaced
)

// dropReasons are the reasons a stream's entries are dropped for.
var dropReasons = []string{ReasonOverflow, ReasonTTL, ReasonBudget}

// Drops counts dropped entries by reason.
type Drops struct {
	Overflow, TTL, Budget uint64
}

// Total is the sum over reasons.
func (d Drops) Total() uint64 { return d.Overflow + d.TTL + d.Budget }

func (d *Drops) add(reason string, n uint64) {
	switch reason {
	case ReasonOverflow:
		d.Overflow += n
	case ReasonTTL:
		d.TTL += n
	case ReasonBudget:
		d.Budget += n
	}
}

// headScan walks a stream's entries in seq order from a start seq at or
// after first, without changing anything, so that a drop can be sized before
// it is made.
type headScan struct {
	c    *bolt.Cursor
	st   *streamState
	from uint64
	end  uint64 // exclusive
	n    int64
}

func (s *stage) scan(name string, st *streamState, from uint64) *headScan {
	return &headScan{c: s.data(name).Cursor(), st: st, from: from, end: st.next}
}

// next returns the seq, payload size and append time of the next entry, and
// whether it is a gap event (which drops skip).
func (h *headScan) next() (seq uint64, size int64, at int64, gap bool, ok bool) {
	var k, v []byte
	if h.n == 0 {
		k, v = h.c.Seek(seqKey(h.from))
	} else {
		k, v = h.c.Next()
	}
	if k == nil || keySeq(k) >= h.end {
		return 0, 0, 0, false, false
	}
	seq = keySeq(k)
	if seq != h.from+uint64(h.n) || len(v) < entryHeader {
		panic(fmt.Sprintf("buffer: stream entries not contiguous at seq %d", seq))
	}
	h.n++
	return seq, int64(len(v) - entryHeader), entryAt(v), h.st.isGap(seq), true
}

// dropPlan is a sized, not yet applied removal of the k oldest evictable
// entries of a stream from seq start on: from..last, less the gap events
// among them.
type dropPlan struct {
	name   string
	st     *streamState
	start  uint64 // where the scan starts
	from   uint64 // first dropped seq
	last   uint64 // last dropped seq
	k      int64
	bytes  int64
	reason string
}

func (p *dropPlan) take(seq uint64, size int64) {
	if p.k == 0 {
		p.from = seq
	}
	p.k++
	p.bytes += size
	p.last = seq
}

// applyDrop removes the planned entries and records the gap: in the
// history, and in the stream's open gap for the reason (gaps.go).
func (s *stage) applyDrop(p *dropPlan) error {
	if p.k == 0 {
		return nil
	}
	st := p.st
	start := st.first
	if p.from < start {
		return fatal(fmt.Errorf("buffer: internal: drop from %d, first %d", p.from, start))
	}
	for seq := p.from; seq <= p.last; seq++ {
		if st.isGap(seq) {
			continue
		}
		if err := s.bdel(jData, p.name, s.data(p.name), seqKey(seq)); err != nil {
			return err
		}
	}
	st.first = p.last + 1
	st.bytes -= p.bytes
	s.total -= p.bytes
	st.drops.add(p.reason, uint64(p.k))
	if err := s.settleHead(p.name, st); err != nil {
		return err
	}
	g := Gap{Stream: p.name, From: p.from, To: p.last, Count: uint64(p.k), Reason: p.reason, At: s.now}
	if err := s.recordGap(p.name, st, g); err != nil {
		return err
	}
	s.db.logDrop(g)
	s.noteDrop(st, g, start)
	// Wake the reader: at the end of the stream, its Read writes the gap.
	s.notify[p.name] = true
	return nil
}

// deleteRange removes the entries from..to-1.
func (s *stage) deleteRange(name string, from, to uint64) error {
	b := s.data(name)
	for seq := from; seq < to; seq++ {
		if err := s.bdel(jData, name, b, seqKey(seq)); err != nil {
			return err
		}
	}
	return nil
}

// put appends one entry at seq, which must be st.next.
func (s *stage) put(name string, st *streamState, seq uint64, data []byte) error {
	if seq != st.next {
		return fatal(fmt.Errorf("buffer: internal: put seq %d, next %d", seq, st.next))
	}
	if err := s.bput(jData, name, s.data(name), seqKey(seq), entryValue(s.now.UnixNano(), data)); err != nil {
		return err
	}
	if st.first == st.next {
		st.oldestAt = s.now.UnixNano()
	}
	st.next++
	st.bytes += int64(len(data))
	s.total += int64(len(data))
	s.notify[name] = true
	return nil
}

// refreshHead re-reads the append time of the oldest evictable entry.
func (s *stage) refreshHead(name string, st *streamState) error {
	if st.first == st.next {
		st.oldestAt = 0
		return nil
	}
	v := s.data(name).Get(seqKey(st.first))
	if len(v) < entryHeader {
		return fatal(fmt.Errorf("%w: stream %q: head seq %d missing", ErrCorrupt, name, st.first))
	}
	st.oldestAt = entryAt(v)
	return nil
}

// recordGap adds g to the bounded gap history of a stream (st nil: store).
// A drop that continues the history's last record (same reason, starting
// right after it or after nothing but gap events held, within gapRun of
// its first drop) extends that record instead: a full drop-oldest stream
// drops at every append, and a record each would be most of what a move
// writes to the file after the entries themselves (one put and, at the
// bound, one delete per drop).
// The history's changes are journaled (a full drop-oldest stream drops at
// every append: each would otherwise be a bbolt commit of its own, tens of
// KB of flash); only creating a stream's history bucket, at its first gap,
// goes to the file. Ids are the last one's plus one (not the bucket's
// sequence, a bucket header the journal does not carry; files written
// before format 6 used it, and it is never below their last id).
func (s *stage) recordGap(name string, st *streamState, g Gap) error {
	root := s.tx.Bucket(bktGaps)
	b := root.Bucket([]byte(name))
	if b == nil {
		s.heavy = true // bucket creation is never journaled
		var err error
		if b, err = root.CreateBucket([]byte(name)); err != nil {
			return fatal(err)
		}
	}
	lastKey, lastVal := b.Cursor().Last()
	if st != nil && lastKey != nil {
		var last Gap
		if json.Unmarshal(lastVal, &last) == nil && extends(last, g) && st.adjoins(last.To+1, g.From) {
			last.To, last.Count = g.To, last.Count+g.Count
			val, err := json.Marshal(last)
			if err != nil {
				return fatal(err)
			}
			return s.bput(jGaps, name, b, append([]byte(nil), lastKey...), val)
		}
	}
	id := b.Sequence()
	if lastKey != nil {
		id = max(id, keySeq(lastKey))
	}
	val, err := json.Marshal(g)
	if err != nil {
		return fatal(err)
	}
	if err := s.bput(jGaps, name, b, seqKey(id+1), val); err != nil {
		return err
	}
	n := &s.store.GapN
	if st != nil {
		n = &st.gapN
	} else {
		s.dirty = true
	}
	*n++
	for *n > int64(s.db.opts.GapHistory) {
		k, _ := b.Cursor().First()
		if k == nil {
			break
		}
		if err := s.bdel(jGaps, name, b, k); err != nil {
			return err
		}
		*n--
	}
	return nil
}

// gapRun is how long after its first drop a gap history record is
// extended by the drops that follow it: a sustained overflow is a record a
// minute, and sweeps or overflows apart in time stay apart in the history.
const gapRun = time.Minute

// extends reports whether g, a drop starting right after last's seqs (or
// after gap events only), is part of the same run as last.
func extends(last, g Gap) bool {
	d := g.At.Sub(last.At)
	return last.Reason == g.Reason && last.Count > 0 && d >= 0 && d < gapRun
}

// fatalError marks an error after which the transaction cannot be committed.
type fatalError struct{ err error }

func (e *fatalError) Error() string { return e.err.Error() }
func (e *fatalError) Unwrap() error { return e.err }

func fatal(err error) error {
	if err == nil {
		return nil
	}
	return &fatalError{err}
}

// logDrop warns about drops, at most once per stream and reason per minute
// (a full drop-oldest stream drops on every append); the counters and gap
// records hold every one.
func (db *DB) logDrop(g Gap) {
	key := g.Stream + "\x00" + g.Reason
	if last, ok := db.dropLogged[key]; ok && g.At.Sub(last) < time.Minute && g.At.After(last) {
		db.opts.Logger.Debug("buffer: dropped events", "stream", g.Stream, "from", g.From, "to", g.To, "count", g.Count, "reason", g.Reason)
		return
	}
	db.dropLogged[key] = g.At
	db.opts.Logger.Warn("buffer: dropped events (further drops of this stream and reason are logged at debug for a minute)",
		"stream", g.Stream, "from", g.From, "to", g.To, "count", g.Count, "reason", g.Reason)
}
