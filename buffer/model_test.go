package buffer

import (
	"sort"
	"time"
)

// The model is the specification in its plainest form: a slice per stream.

type mEntry struct {
	seq  uint64
	at   int64
	data []byte
}

type mStream struct {
	cfg     StreamConfig
	next    uint64
	acked   uint64
	entries []mEntry
	drops   Drops
	gaps    []Gap
	keys    map[string]uint64 // dedup index: key -> seq of its latest keyed append
	fifo    []mKey            // keyed appends, oldest first
	dups    uint64
}

type mKey struct {
	seq uint64
	key string
}

type model struct {
	streams map[string]*mStream
	opts    *Options
	now     time.Time
}

func (s *mStream) bytes() (n int64) {
	for _, e := range s.entries {
		n += int64(len(e.data))
	}
	return n
}

func (m *model) total() (n int64) {
	for _, s := range m.streams {
		n += s.bytes()
	}
	return n
}

func (m *model) fits(s *mStream, addN, addB int64) bool {
	return (s.cfg.MaxEvents == 0 || int64(len(s.entries))+addN <= s.cfg.MaxEvents) &&
		(s.cfg.MaxBytes == 0 || s.bytes()+addB <= s.cfg.MaxBytes)
}

func (m *model) gapEvent(name string, seq uint64, from uint64, k int, reason string) []byte {
	if m.opts.GapEncoder == nil || k == 0 {
		return nil
	}
	d, _ := m.opts.GapEncoder(name, seq, Gap{Stream: name, From: from, To: from + uint64(k) - 1, Count: uint64(k), Reason: reason, At: m.now})
	return d
}

func (m *model) put(s *mStream, d []byte) {
	s.entries = append(s.entries, mEntry{s.next, m.now.UnixNano(), d})
	s.next++
}

// drop removes k head entries (starting at entry index off) and records it.
func (m *model) drop(name string, s *mStream, off, k int, reason string) {
	if k == 0 {
		return
	}
	from := s.entries[off].seq
	s.entries = append(s.entries[:off:off], s.entries[off+k:]...)
	s.drops.add(reason, uint64(k))
	s.gaps = append(s.gaps, Gap{Stream: name, From: from, To: from + uint64(k) - 1, Count: uint64(k), Reason: reason, At: m.now})
	if len(s.gaps) > m.opts.GapHistory {
		s.gaps = s.gaps[1:]
	}
}

func (m *model) expire(name string, s *mStream) {
	if s.cfg.MaxAge <= 0 {
		return
	}
	k := 0
	for k < len(s.entries) && m.now.UnixNano()-s.entries[k].at >= int64(s.cfg.MaxAge) {
		k++
	}
	if k == 0 {
		return
	}
	gap := m.gapEvent(name, s.next, s.entries[0].seq, k, ReasonTTL)
	m.drop(name, s, 0, k, ReasonTTL)
	if gap != nil {
		m.put(s, gap)
	}
}

func (m *model) append(name string, recs []Encoder) (uint64, error) {
	s := m.streams[name]
	m.expire(name, s)
	n := int64(len(recs))
	first := s.next
	var datas [][]byte
	var size int64
	for i, enc := range recs {
		d, _ := enc(first + uint64(i))
		datas = append(datas, d)
		size += int64(len(d))
	}
	gapN := int64(0)
	if m.opts.GapEncoder != nil {
		gapN = 1
	}
	// Own limits: the smallest head drop that fits, gap event included.
	ownK, ownBytes, ownGap := 0, int64(0), []byte(nil)
	if !m.fits(s, n, size) {
		if s.cfg.Overflow != PolicyDropOldest {
			return 0, ErrStreamFull
		}
		guess := int64(0)
		for {
			for !m.fits(s, n+gapN-int64(ownK), size+guess-ownBytes) {
				if ownK == len(s.entries) {
					return 0, ErrStreamFull
				}
				ownBytes += int64(len(s.entries[ownK].data))
				ownK++
			}
			ownGap = m.gapEvent(name, first+uint64(n), s.entries[0].seq, ownK, ReasonOverflow)
			if int64(len(ownGap)) <= guess {
				break
			}
			guess = int64(len(ownGap))
		}
	}
	after := first + uint64(n)
	if ownGap != nil {
		after++
	}
	// Budget: evict from eligible streams, lowest priority first.
	type plan struct {
		name string
		off  int
		k    int
		gap  []byte
	}
	var plans []plan
	if b := m.opts.DiskBudget; b > 0 {
		need := m.total() - ownBytes + int64(len(ownGap)) + size - b
		var names []string
		for nm, v := range m.streams {
			if v.cfg.Overflow == PolicyDropOldest && v.cfg.Priority <= s.cfg.Priority {
				names = append(names, nm)
			}
		}
		sort.Slice(names, func(i, j int) bool {
			pi, pj := m.streams[names[i]].cfg.Priority, m.streams[names[j]].cfg.Priority
			return pi < pj || pi == pj && names[i] < names[j]
		})
		for _, nm := range names {
			if need <= 0 {
				break
			}
			v := m.streams[nm]
			p := plan{name: nm}
			seq := v.next
			if nm == name {
				p.off, seq = ownK, after
			}
			freed, guess := int64(0), int64(0)
			for {
				for p.off+p.k < len(v.entries) && freed-guess < need {
					freed += int64(len(v.entries[p.off+p.k].data))
					p.k++
				}
				if p.k == 0 {
					break
				}
				p.gap = m.gapEvent(nm, seq, v.entries[p.off].seq, p.k, ReasonBudget)
				if int64(len(p.gap)) <= guess {
					break
				}
				guess = int64(len(p.gap))
			}
			if net := freed - int64(len(p.gap)); p.k > 0 && net > 0 {
				need -= net
				plans = append(plans, p)
			}
		}
		if need > 0 {
			return 0, ErrDiskBudget
		}
	}
	m.drop(name, s, 0, ownK, ReasonOverflow)
	for _, d := range datas {
		m.put(s, d)
	}
	if ownGap != nil {
		m.put(s, ownGap)
	}
	for _, p := range plans {
		v := m.streams[p.name]
		off := 0 // own drop already applied
		m.drop(p.name, v, off, p.k, ReasonBudget)
		if p.gap != nil {
			m.put(v, p.gap)
		}
	}
	return first, nil
}

func (m *model) ack(name string, upTo uint64) error {
	s := m.streams[name]
	if upTo <= s.acked {
		return nil
	}
	if upTo >= s.next {
		return ErrInvalidAck
	}
	s.acked = upTo
	for len(s.entries) > 0 && s.entries[0].seq <= upTo {
		s.entries = s.entries[1:]
	}
	return nil
}

func (m *model) sweep() {
	var names []string
	for n := range m.streams {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		m.expire(n, m.streams[n])
	}
}

// appendRecords is AppendRecords: duplicates are resolved against the index
// and earlier records of the call, the rest is an append, and the keys of the
// stored records enter the window.
func (m *model) appendRecords(name string, recs []Record) ([]Appended, error) {
	s := m.streams[name]
	window := m.opts.DedupWindow
	out := make([]Appended, len(recs))
	var encs []Encoder
	var keys []string
	local := map[string]int{}
	idx := make([]int, len(recs))
	isDup := make([]bool, len(recs))
	var dups uint64
	for i, r := range recs {
		k := string(r.Key)
		if window > 0 && r.CheckDup {
			if j, ok := local[k]; ok {
				idx[i], isDup[i] = j, true
				dups++
				continue
			}
			if seq, ok := s.keys[k]; ok {
				idx[i], out[i] = -1, Appended{Seq: seq, Dup: true}
				dups++
				continue
			}
		}
		idx[i] = len(encs)
		encs = append(encs, r.Enc)
		keys = append(keys, k)
		if k != "" {
			local[k] = idx[i]
		}
	}
	var first uint64
	if len(encs) > 0 {
		f, err := m.append(name, encs)
		if err != nil {
			return nil, err
		}
		first = f
	}
	for i, j := range idx {
		if j >= 0 {
			out[i] = Appended{Seq: first + uint64(j), Dup: isDup[i]}
		}
	}
	s.dups += dups
	if window <= 0 {
		return out, nil
	}
	if s.keys == nil {
		s.keys = map[string]uint64{}
	}
	for j, k := range keys {
		if k != "" {
			s.keys[k] = first + uint64(j)
			s.fifo = append(s.fifo, mKey{first + uint64(j), k})
		}
	}
	for len(s.fifo) > window {
		if f := s.fifo[0]; s.keys[f.key] == f.seq {
			delete(s.keys, f.key)
		}
		s.fifo = s.fifo[1:]
	}
	return out, nil
}
