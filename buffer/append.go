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
// there, or the call fails with ErrDiskBudget. Gap events for these drops take
// the seqs after the call's records. If ctx ends before the commit starts,
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
	after := first + uint64(n) // next free seq once recs are in
	own := &dropPlan{name: name, st: st, from: st.first, reason: ReasonOverflow, gapSeq: after}
	if !fitsLimits(st, n, size) {
		if st.cfg.Overflow != PolicyDropOldest {
			return 0, fmt.Errorf("%w: %q holds %d events, %d bytes", ErrStreamFull, name, st.count(), st.bytes)
		}
		if err := s.planOverflow(own, n, size); err != nil {
			return 0, err
		}
		if own.gap != nil {
			after++
		}
	}
	victims, err := s.planBudget(st, own, size, after)
	if err != nil {
		return 0, err
	}
	// Everything is sized; from here on only bbolt can fail (fatal).
	if err := s.applyDrop(own, false); err != nil {
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
	if own.gap != nil {
		if err := s.put(name, st, own.gapSeq, own.gap); err != nil {
			return 0, err
		}
	}
	for _, v := range victims {
		if err := s.applyDrop(v, true); err != nil {
			return 0, err
		}
	}
	return first, nil
}

func fitsLimits(st *streamState, addN, addBytes int64) bool {
	return (st.cfg.MaxEvents == 0 || st.count()+addN <= st.cfg.MaxEvents) &&
		(st.cfg.MaxBytes == 0 || st.bytes+addBytes <= st.cfg.MaxBytes)
}

// planOverflow sizes the smallest head drop that makes room for n events of
// size bytes plus the gap event recording the drop. The put of the gap event
// itself is done by the caller, after the records.
func (s *stage) planOverflow(p *dropPlan, n, size int64) error {
	st := p.st
	gapN := int64(0)
	if s.db.opts.GapEncoder != nil {
		gapN = 1
	}
	h := s.scan(p.name, st, st.first)
	var guess int64
	for {
		for !fitsLimits(st, n+gapN-p.k, size+guess-p.bytes) {
			sz, _, ok := h.next()
			if !ok {
				return fmt.Errorf("%w: %q: %d events of %d bytes exceed its limits", ErrStreamFull, p.name, n, size)
			}
			p.k++
			p.bytes += sz
		}
		if err := s.encodeGap(p); err != nil {
			return err
		}
		if p.gapSize() <= guess {
			return nil
		}
		guess = p.gapSize()
	}
}

// planBudget sizes the evictions that keep the total payload within
// Options.DiskBudget after appending size bytes to st (own already planned).
func (s *stage) planBudget(st *streamState, own *dropPlan, size int64, sGapSeq uint64) ([]*dropPlan, error) {
	budget := s.db.opts.DiskBudget
	if budget == 0 {
		return nil, nil
	}
	need := s.total - own.bytes + own.gapSize() + size - budget
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
		p := &dropPlan{name: c.name, st: c.st, from: c.st.first, reason: ReasonBudget, gapSeq: c.st.next}
		if c.st == st {
			p.from += uint64(own.k)
			p.gapSeq = sGapSeq
		}
		h := s.scan(c.name, c.st, p.from)
		var guess int64
		more := true
		for {
			for more && p.bytes-guess < need {
				sz, _, ok := h.next()
				if more = ok; ok {
					p.k++
					p.bytes += sz
				}
			}
			if err := s.encodeGap(p); err != nil {
				return nil, err
			}
			if p.gapSize() <= guess {
				break
			}
			guess = p.gapSize()
		}
		if net := p.bytes - p.gapSize(); p.k > 0 && net > 0 {
			need -= net
			plans = append(plans, p)
		}
	}
	if need > 0 {
		return nil, fmt.Errorf("%w: %d bytes over budget of %d after evicting what %q may evict", ErrDiskBudget, need, budget, own.name)
	}
	return plans, nil
}

// expire drops the stream's entries that are at least MaxAge old.
func (s *stage) expire(name string, st *streamState) error {
	maxAge := st.cfg.MaxAge
	if maxAge <= 0 || st.count() == 0 || s.now.UnixNano()-st.oldestAt < int64(maxAge) {
		return nil
	}
	p := &dropPlan{name: name, st: st, from: st.first, reason: ReasonTTL, gapSeq: st.next}
	h := s.scan(name, st, st.first)
	limit := s.now.UnixNano() - int64(maxAge)
	for {
		sz, at, ok := h.next()
		if !ok || at > limit {
			break
		}
		p.k++
		p.bytes += sz
	}
	if err := s.encodeGap(p); err != nil {
		return err
	}
	return s.applyDrop(p, true)
}
