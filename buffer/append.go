package buffer

import (
	"context"
	"fmt"
	"sort"

	bolt "go.etcd.io/bbolt"
)

// Encoder produces one event's bytes once its seq is known. Encoders run
// inside the commit, on the store's goroutine: keep them fast and pure.
type Encoder func(seq uint64) ([]byte, error)

// maxEntry is the largest payload bbolt can hold in one value.
const maxEntry = bolt.MaxValueSize - entryHeader

// Append assigns consecutive seqs first..first+len(recs)-1 to recs, calling
// each encoder with its seq, and returns only after the transaction holding
// them is fsynced. It is all-or-nothing: on error none of recs was written.
// Concurrent calls share one transaction and one sync.
//
// Before appending, entries of the stream older than MaxAge are dropped. When
// the stream's limits would be exceeded, a reject-new stream fails with
// ErrStreamFull and a drop-oldest stream drops its oldest entries; when
// Options.DiskBudget would be exceeded, entries are evicted as documented
// there, or the call fails with ErrDiskBudget. Gap events are never dropped
// and do not count against the limits; gap events written by the call's
// transaction take the seqs after its records (see gaps.go). If ctx ends before the commit starts,
// Append returns ctx.Err() and nothing is written; once the commit has
// started, Append waits for its outcome.
func (db *DB) Append(ctx context.Context, stream string, recs []Encoder) (first uint64, err error) {
	if len(recs) == 0 {
		return 0, nil
	}
	r := &request{n: len(recs), isAppend: true}
	r.apply = func(s *stage) error {
		st := s.stream(stream)
		if st == nil {
			return fmt.Errorf("%w: %q", ErrUnknownStream, stream)
		}
		f, err := s.append(stream, st, recs, nil)
		first = f
		return err
	}
	if err := db.submit(ctx, r); err != nil {
		return 0, err
	}
	return first, nil
}

// append is the commit path of Append and AppendRecords: st is the staged
// stream, keys nil or one per record (nil for an unkeyed record) to remember
// in the dedup index under the record's seq.
func (s *stage) append(name string, st *streamState, recs []Encoder, keys [][]byte) (uint64, error) {
	if err := s.expire(name, st); err != nil {
		return 0, err
	}
	n := int64(len(recs))
	first := st.next
	datas := make([][]byte, n)
	var size int64
	for i, enc := range recs {
		d, err := enc(first + uint64(i))
		if err != nil {
			return 0, fmt.Errorf("buffer: encoding seq %d: %w", first+uint64(i), err)
		}
		if len(d) > maxEntry {
			return 0, fmt.Errorf("%w: event of %d bytes", ErrInvalid, len(d))
		}
		datas[i] = d
		size += int64(len(d))
	}
	own := &dropPlan{name: name, st: st, start: st.first, reason: ReasonOverflow}
	if !fitsLimits(st, n, size) {
		if st.cfg.Overflow != PolicyDropOldest {
			return 0, fmt.Errorf("%w: %q holds %d events, %d bytes", ErrStreamFull, name, st.events(), st.bytes-st.gapBytes())
		}
		if err := s.planOverflow(own, n, size); err != nil {
			return 0, err
		}
	}
	victims, err := s.planBudget(st, own, size)
	if err != nil {
		return 0, err
	}
	// Everything is sized; from here on only bbolt can fail (fatal).
	if err := s.applyDrop(own); err != nil {
		return 0, err
	}
	for _, d := range datas {
		if err := s.put(name, st, st.next, d); err != nil {
			return 0, err
		}
	}
	if keys != nil {
		if err := s.remember(name, st, first, keys); err != nil {
			return 0, err
		}
	}
	for _, v := range victims {
		if err := s.applyDrop(v); err != nil {
			return 0, err
		}
	}
	return first, nil
}

// fitsLimits reports whether addN events of addBytes fit the stream's
// limits, which count the entries other than gap events.
func fitsLimits(st *streamState, addN, addBytes int64) bool {
	return (st.cfg.MaxEvents == 0 || st.events()+addN <= st.cfg.MaxEvents) &&
		(st.cfg.MaxBytes == 0 || st.bytes-st.gapBytes()+addBytes <= st.cfg.MaxBytes)
}

// planOverflow sizes the smallest head drop that makes room for n events of
// size bytes.
func (s *stage) planOverflow(p *dropPlan, n, size int64) error {
	st := p.st
	h := s.scan(p.name, st, p.start)
	for !fitsLimits(st, n-p.k, size-p.bytes) {
		seq, sz, _, gap, ok := h.next()
		if !ok {
			return fmt.Errorf("%w: %q: %d events of %d bytes exceed its limits", ErrStreamFull, p.name, n, size)
		}
		if !gap {
			p.take(seq, sz)
		}
	}
	return nil
}

// planBudget sizes the evictions that keep the payload within
// Options.DiskBudget after appending size bytes to st (own already planned).
// Gap events are neither counted nor evicted.
func (s *stage) planBudget(st *streamState, own *dropPlan, size int64) ([]*dropPlan, error) {
	budget := s.db.opts.DiskBudget
	if budget == 0 {
		return nil, nil
	}
	need := s.total - s.gapTotal - own.bytes + size - budget
	if need <= 0 {
		return nil, nil
	}
	type cand struct {
		name string
		st   *streamState
	}
	var cands []cand
	for _, name := range s.names() {
		v := s.stream(name)
		if v.cfg.Overflow == PolicyDropOldest && v.cfg.Priority <= st.cfg.Priority {
			cands = append(cands, cand{name, v})
		}
	}
	sort.SliceStable(cands, func(i, j int) bool { return cands[i].st.cfg.Priority < cands[j].st.cfg.Priority })
	var plans []*dropPlan
	for _, c := range cands {
		if need <= 0 {
			break
		}
		p := &dropPlan{name: c.name, st: c.st, start: c.st.first, reason: ReasonBudget}
		if c.st == st && own.k > 0 {
			p.start = own.last + 1
		}
		h := s.scan(c.name, c.st, p.start)
		for p.bytes < need {
			seq, sz, _, gap, ok := h.next()
			if !ok {
				break
			}
			if !gap {
				p.take(seq, sz)
			}
		}
		if p.k > 0 {
			need -= p.bytes
			plans = append(plans, p)
		}
	}
	if need > 0 {
		return nil, fmt.Errorf("%w: %d bytes over budget of %d after evicting what %q may evict", ErrDiskBudget, need, budget, own.name)
	}
	return plans, nil
}

// expire drops the stream's evictable entries that are at least MaxAge old.
func (s *stage) expire(name string, st *streamState) error {
	maxAge := st.cfg.MaxAge
	if maxAge <= 0 || st.first == st.next || s.now.UnixNano()-st.oldestAt < int64(maxAge) {
		return nil
	}
	p := &dropPlan{name: name, st: st, start: st.first, reason: ReasonTTL}
	h := s.scan(name, st, st.first)
	limit := s.now.UnixNano() - int64(maxAge)
	for {
		seq, sz, at, gap, ok := h.next()
		if !ok || !gap && at > limit {
			break
		}
		if !gap {
			p.take(seq, sz)
		}
	}
	return s.applyDrop(p)
}
