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
	gap  bool // a gap event: not counted by the limits, never dropped
}

type mStream struct {
	cfg      StreamConfig
	next     uint64
	acked    uint64
	entries  []mEntry
	drops    Drops
	gaps     []Gap
	open     []openGap         // drops not yet in a gap event, one per reason at most
	sealQ    []openGap         // to be written when the request ends
	reported uint64            // sum of Count over the gap events written
	keys     map[string]uint64 // dedup index: key -> seq of its latest keyed append
	fifo     []mKey            // keyed appends, oldest first
	dups     uint64
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

// events and eventBytes count the entries other than gap events.
func (s *mStream) events() (n int64) {
	for _, e := range s.entries {
		if !e.gap {
			n++
		}
	}
	return n
}

func (s *mStream) eventBytes() (n int64) {
	for _, e := range s.entries {
		if !e.gap {
			n += int64(len(e.data))
		}
	}
	return n
}

func (s *mStream) gapEvents() (n int) {
	for _, e := range s.entries {
		if e.gap {
			n++
		}
	}
	return n
}

// dataEntries are the entries other than gap events, oldest first.
func (s *mStream) dataEntries() []mEntry {
	var out []mEntry
	for _, e := range s.entries {
		if !e.gap {
			out = append(out, e)
		}
	}
	return out
}

// first is the seq of the oldest entry other than a gap event, else next.
func (s *mStream) first() uint64 {
	for _, e := range s.entries {
		if !e.gap {
			return e.seq
		}
	}
	return s.next
}

func (s *mStream) unreported() (n uint64) {
	for _, o := range s.open {
		n += o.Count
	}
	return n
}

// adjoins: the seqs end..start-1 are all gap events held.
func (s *mStream) adjoins(end, start uint64) bool {
	if end > start {
		return false
	}
	n := uint64(0)
	for _, e := range s.entries {
		if e.gap && e.seq >= end && e.seq < start {
			n++
		}
	}
	return n == start-end
}

func (s *mStream) canSeal() bool { return s.gapEvents()+len(s.sealQ) < maxGapEntries }

func (m *model) total() (n int64) {
	for _, s := range m.streams {
		n += s.bytes()
	}
	return n
}

func (m *model) eventTotal() (n int64) {
	for _, s := range m.streams {
		n += s.eventBytes()
	}
	return n
}

func (m *model) fits(s *mStream, addN, addB int64) bool {
	return (s.cfg.MaxEvents == 0 || s.events()+addN <= s.cfg.MaxEvents) &&
		(s.cfg.MaxBytes == 0 || s.eventBytes()+addB <= s.cfg.MaxBytes)
}

func (m *model) put(s *mStream, d []byte, gap bool) {
	s.entries = append(s.entries, mEntry{s.next, m.now.UnixNano(), d, gap})
	s.next++
}

// drop removes the k oldest entries other than gap events and records it:
// in the history (extending its last record if the drop continues it, as
// recordGap does), and in the open gap of its reason, which it extends if
// it starts where that one ended (gap events in between aside), or else
// queues to be written (when the bound on gap events allows).
func (m *model) drop(name string, s *mStream, k int, reason string) {
	if k == 0 {
		return
	}
	start := s.first()
	var kept []mEntry
	var from, to uint64
	n := 0
	for _, e := range s.entries {
		if e.gap || n == k {
			kept = append(kept, e)
			continue
		}
		if n == 0 {
			from = e.seq
		}
		to = e.seq
		n++
	}
	s.entries = kept
	s.drops.add(reason, uint64(k))
	g := Gap{Stream: name, From: from, To: to, Count: uint64(k), Reason: reason, At: m.now}
	if n := len(s.gaps); n > 0 && extends(s.gaps[n-1], g) && s.adjoins(s.gaps[n-1].To+1, from) {
		s.gaps[n-1].To, s.gaps[n-1].Count = to, s.gaps[n-1].Count+uint64(k)
	} else {
		s.gaps = append(s.gaps, g)
		if len(s.gaps) > m.opts.GapHistory {
			s.gaps = s.gaps[1:]
		}
	}
	if m.opts.GapEncoder == nil {
		return
	}
	end := s.first()
	for i := range s.open {
		o := &s.open[i]
		if o.Reason != reason {
			continue
		}
		if !s.adjoins(o.End, start) && s.canSeal() {
			s.sealQ = append(s.sealQ, *o)
			s.open = append(s.open[:i:i], s.open[i+1:]...)
			break
		}
		o.To, o.Count, o.End = to, o.Count+uint64(k), end
		return
	}
	s.open = append(s.open, openGap{Reason: reason, From: from, To: to, Count: uint64(k), At: m.now, End: end})
}

// endTx writes the queued gap events, as the transaction's end does.
func (m *model) endTx() {
	var names []string
	for n := range m.streams {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		s := m.streams[n]
		for _, o := range s.sealQ {
			d, _ := m.opts.GapEncoder(n, s.next, o.gap(n))
			m.put(s, d, true)
			s.reported += o.Count
		}
		s.sealQ = nil
	}
}

// read is Read: at the end of the stream, open gaps are written first.
func (m *model) read(name string, after uint64, max int) []mEntry {
	s := m.streams[name]
	get := func(after uint64, max int) []mEntry {
		var out []mEntry
		for _, e := range s.entries {
			if e.seq > after && len(out) < max {
				out = append(out, e)
			}
		}
		return out
	}
	out := get(after, max)
	if len(out) >= max || m.opts.GapEncoder == nil || len(s.open) == 0 || !s.canSeal() {
		return out
	}
	for len(s.open) > 0 && s.canSeal() {
		s.sealQ = append(s.sealQ, s.open[0])
		s.open = s.open[1:]
	}
	m.endTx()
	if len(out) > 0 {
		after = out[len(out)-1].seq
	}
	return append(out, get(after, max-len(out))...)
}

func (m *model) expire(name string, s *mStream) {
	if s.cfg.MaxAge <= 0 {
		return
	}
	k := 0
	for _, e := range s.dataEntries() {
		if m.now.UnixNano()-e.at < int64(s.cfg.MaxAge) {
			break
		}
		k++
	}
	m.drop(name, s, k, ReasonTTL)
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
	// Own limits: the smallest head drop that fits.
	ownK, ownBytes := 0, int64(0)
	if !m.fits(s, n, size) {
		if s.cfg.Overflow != PolicyDropOldest {
			return 0, ErrStreamFull
		}
		d := s.dataEntries()
		for !m.fits(s, n-int64(ownK), size-ownBytes) {
			if ownK == len(d) {
				return 0, ErrStreamFull
			}
			ownBytes += int64(len(d[ownK].data))
			ownK++
		}
	}
	// Budget: evict from eligible streams, lowest priority first.
	type plan struct {
		name string
		k    int
	}
	var plans []plan
	if b := m.opts.DiskBudget; b > 0 {
		need := m.eventTotal() - ownBytes + size - b
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
			d := m.streams[nm].dataEntries()
			skip := 0
			if nm == name {
				skip = ownK
			}
			p := plan{name: nm}
			freed := int64(0)
			for skip+p.k < len(d) && freed < need {
				freed += int64(len(d[skip+p.k].data))
				p.k++
			}
			if p.k > 0 {
				need -= freed
				plans = append(plans, p)
			}
		}
		if need > 0 {
			return 0, ErrDiskBudget
		}
	}
	m.drop(name, s, ownK, ReasonOverflow)
	for _, d := range datas {
		m.put(s, d, false)
	}
	for _, p := range plans {
		m.drop(p.name, m.streams[p.name], p.k, ReasonBudget)
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
