package ingest

import (
	"slices"

	"github.com/edgegw/gateway/event"
)

// counterTracker is one subscription's last committed counter per source.
// Only the committer goroutine uses it.
type counterTracker struct {
	bits  uint
	limit int
	tick  uint64 // advances per observation, for eviction
	state map[string]*counterState
}

type counterState struct {
	last uint64
	// prev is the counter before the last restart (hasPrev): a DUP message
	// in (last, prev] is a redelivery from before the restart.
	prev    uint64
	hasPrev bool
	used    uint64 // tick of the last observation
	forget  bool   // (in a transaction) drop the source
}

func newCounterTracker(bits uint, limit int) *counterTracker {
	return &counterTracker{bits: bits, limit: max(limit, 8), state: map[string]*counterState{}}
}

// mask is 2^bits-1.
func (t *counterTracker) mask() uint64 {
	if t.bits >= 64 {
		return ^uint64(0)
	}
	return 1<<t.bits - 1
}

// next returns the state after counter c (dup: the broker flagged it as a
// redelivery) given the state before (ok false: no state), the gap it shows
// if any, and whether it is a device restart.
func (t *counterTracker) next(st counterState, ok bool, c uint64, dup bool) (_ counterState, _ *event.Gap, reset bool) {
	if !ok || st.forget {
		return counterState{last: c}, nil, false
	}
	mask := t.mask()
	half := mask/2 + 1 // 2^(bits-1)
	fwd := (c - st.last) & mask
	back := (st.last - c) & mask
	restart := counterState{last: c, prev: st.last, hasPrev: true}
	switch {
	case fwd == 0: // redelivery
		return st, nil, false
	case fwd == 1: // in order (or wrapped by one)
		st.last = c
		return st, nil, false
	case c <= counterResetMax:
		return restart, nil, true
	case fwd < half && c > st.last:
		if dup && st.hasPrev && c <= st.prev {
			return st, nil, false // a pre-restart message, redelivered
		}
		g := &event.Gap{From: st.last + 1, To: c - 1, Count: fwd - 1, Reason: GapDeviceCounter}
		st.last = c
		return st, g, false
	case fwd <= counterWrapWindow && t.bits < 64: // across a wrap (fwd < half: bits >= 16)
		g := &event.Gap{From: st.last + 1, To: st.last + fwd - 1, Count: fwd - 1, Reason: GapDeviceCounter}
		st.last = c
		return st, g, false
	case back <= counterRedeliveryWindow: // late redelivery
		return st, nil, false
	default: // restart, its first messages lost
		return restart, nil, true
	}
}

// put stores a committed state, evicting the least recently seen eighth of
// the sources when the tracker is full.
func (t *counterTracker) put(src string, st counterState) {
	t.tick++
	if st.forget {
		delete(t.state, src)
		return
	}
	st.used = t.tick
	if cur := t.state[src]; cur != nil {
		*cur = st
		return
	}
	if len(t.state) >= t.limit {
		t.evict(t.limit / 8)
	}
	t.state[src] = &st
}

// evict forgets the n least recently seen sources.
func (t *counterTracker) evict(n int) {
	ticks := make([]uint64, 0, len(t.state))
	for _, s := range t.state {
		ticks = append(ticks, s.used)
	}
	slices.Sort(ticks)
	cut := ticks[min(n, len(ticks))-1]
	for src, s := range t.state {
		if s.used <= cut {
			delete(t.state, src)
		}
	}
}

// counterTxn is one batch's counter observations, against the committed
// state and the batch's own earlier messages; commit applies them.
type counterTxn struct {
	dc     *deviceCounters
	order  []counterKey
	pend   map[counterKey]counterState
	resets uint64         // device restarts seen
	gaps   []*event.Event // the gap events of the batch
}

type counterKey struct {
	sub    int
	source string
}

func (x *counterTxn) get(k counterKey) (counterState, bool) {
	if st, ok := x.pend[k]; ok {
		return st, !st.forget
	}
	if st := x.dc.trackers[k.sub].state[k.source]; st != nil {
		return *st, true
	}
	return counterState{}, false
}

func (x *counterTxn) set(k counterKey, st counterState) {
	if x.pend == nil {
		x.pend = map[counterKey]counterState{}
	}
	if _, seen := x.pend[k]; !seen {
		x.order = append(x.order, k)
	}
	x.pend[k] = st
}

// observe takes counter c of source (subscription sub) and returns the gap
// it shows, if any.
func (x *counterTxn) observe(sub int, source string, c uint64, dup bool) *event.Gap {
	k := counterKey{sub, source}
	before, ok := x.get(k)
	after, g, reset := x.dc.trackers[sub].next(before, ok, c, dup)
	if reset {
		x.resets++
	}
	x.set(k, after)
	return g
}

// forget drops source's state: its next message is a new baseline.
func (x *counterTxn) forget(sub int, source string) {
	x.set(counterKey{sub, source}, counterState{forget: true})
}

// commit applies the batch's observations once it is committed, and counts
// and logs its gaps; nil-safe.
func (x *counterTxn) commit(in *Ingest) {
	if x == nil {
		return
	}
	for _, k := range x.order {
		x.dc.trackers[k.sub].put(k.source, x.pend[k])
	}
	in.stats.deviceResets.Add(x.resets)
	for _, ev := range x.gaps {
		g, _ := event.GapOf(ev)
		in.stats.deviceGaps.Add(1)
		in.stats.deviceLost.Add(g.Count)
		in.log.Warn("device counter jumped: messages lost before they reached the gateway",
			"source", Clip(ev.Source), "stream", ev.Stream, "from", g.From, "to", g.To, "count", g.Count)
	}
}
