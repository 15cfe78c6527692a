package ingest

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"
	"strings"

	"github.com/edgegw/gateway/event"
	"github.com/fxamacker/cbor/v2"
)

// Device counters (Subscription.Fields.Counter): a device that numbers its
// own messages lets the gateway see the ones that never reached it (lost by
// the device, the network or a broker), as a gap event per jump.
//
// Per source (per subscription), the driver keeps the last counter of a
// committed message; a message with counter c after last is
//
//   - the first of its source (or of a source forgotten, see below): a
//     baseline, no gap;
//   - c == last: a redelivery, nothing;
//   - c == last+1 (mod 2^bits): in order;
//   - c <= 1 (counterResetMax) otherwise: the device restarted; rebase, no gap;
//   - last < c < last+2^(bits-1): a jump; one gap from last+1 to c-1;
//   - c a little past a wrap (c < last, c+2^bits-last <= counterWrapWindow):
//     a wrap-around; one gap from last+1 to c-1+2^bits (so "to" may exceed
//     the counter's range, by the wrap: from/to stay ordered, count exact);
//   - c at most counterRedeliveryWindow below last: a late redelivery (or
//     out of order), nothing;
//   - anything else (far below last, or far past a wrap): the device
//     restarted and its first messages were lost; rebase, no gap.
//
// So a restart or a wrap never reads as a gap of ~2^bits. The price: a
// restart whose first messages were lost within counterRedeliveryWindow of
// the old counter shows no gap until the counter passes the old value again,
// and a loss across a wrap larger than counterWrapWindow reads as a restart.
//
// Redeliveries cannot create a second gap: the state advances only when the
// batch that carries the message has been committed (gaps are computed on
// the committer, batch by batch, against committed state plus the batch's
// own earlier messages), and only committed messages are acked. A message
// redelivered because its ack was lost is at or below the committed counter
// (a redelivery, nothing); one redelivered because its batch never committed
// is compared with the same state as the first time, and its gap, which was
// never committed either, is reported once, with it. After a restart
// (rebase) the counter before it is remembered, so that a redelivered
// (DUP-flagged) pre-restart message does not read as a jump.
//
// Messages quarantined still move the counter (they are not lost, they are
// in the quarantine) when their counter can be read; a message dropped by
// the rate limit forgets its source (its drop has its own report; the next
// message is a new baseline).
//
// At most maxTrackedSources sources are tracked per subscription; beyond it
// the least recently seen eighth are forgotten (their next message is a new
// baseline).

// Reason of a gap found in a device's counter.
const GapDeviceCounter = "device-counter"

const (
	// counterResetMax: a counter at or below it that is not in order is a
	// device restart.
	counterResetMax = 1
	// counterRedeliveryWindow: how far below the last counter a message is
	// still taken as a redelivery rather than a restart. Redeliveries are
	// bounded by the broker's in-flight window.
	counterRedeliveryWindow = 1024
	// counterWrapWindow: the largest distance across a wrap-around that is
	// taken as a wrap (with its gap) rather than a restart.
	counterWrapWindow = 4096
)

// counterConfig is one subscription's counter setting, compiled.
type counterConfig struct {
	path   string // the payload field ("" off)
	format string
	bits   uint
}

// compileCounter is f's counter setting for payloads of format ("" path:
// off, as for the text and raw formats).
func compileCounter(f FieldMap, format string) counterConfig {
	if f.Counter == "" || (format != FormatJSON && format != FormatCBOR) {
		return counterConfig{}
	}
	bits := uint(f.CounterBits)
	if bits == 0 {
		bits = 32
	}
	return counterConfig{path: f.Counter, format: format, bits: bits}
}

// deviceCounters is the source's device counter state, by subscription
// index (nil where the subscription has no counter). Only the committer
// goroutine uses it.
type deviceCounters struct {
	trackers []*counterTracker
	any      bool // some subscription has a counter
}

func newDeviceCounters(subs []*sub) deviceCounters {
	dc := deviceCounters{trackers: make([]*counterTracker, len(subs))}
	for i, s := range subs {
		if s.counter.path != "" {
			dc.trackers[i] = newCounterTracker(s.counter.bits, maxTrackedSources)
			dc.any = true
		}
	}
	return dc
}

// counterGaps runs on the committer, in commit: it returns good (the
// batch's events, in order) with a gap event inserted before each event
// whose counter jumped, and the state change to apply once the batch is
// committed. The counters were read while parsing (pending.counter).
func (in *Ingest) counterGaps(pb *parsedBatch, good []pending) ([]pending, *counterTxn) {
	dc := &in.counters
	if !dc.any {
		return good, nil
	}
	tx := &counterTxn{dc: dc}
	out := make([]pending, 0, len(good)+1)
	j := 0 // next of good
	for k := range pb.ps {
		p := &pb.ps[k]
		if p.it == nil {
			continue
		}
		if p.sub >= 0 && dc.trackers[p.sub] != nil {
			s := in.subs[p.sub]
			switch {
			case p.limited:
				tx.forget(p.sub, p.source)
			case p.hasCounter:
				if g := tx.observe(p.sub, p.source, p.counter, p.it.msg.Dup); g != nil {
					out = append(out, in.counterGapEvent(tx, s.stream, p.source, g, p.it)...)
				}
			}
		}
		if j < len(good) && good[j].it == p.it {
			out = append(out, good[j])
			j++
		}
	}
	out = append(out, good[j:]...) // none expected: good follows pb.ps
	return out, tx
}

// counterGapEvent is gap g of source as an event (nil if invalid, which next
// never returns), noted in tx for the counters and the log.
func (in *Ingest) counterGapEvent(tx *counterTxn, stream, source string, g *event.Gap, it *item) []pending {
	ev, err := event.NewGap(stream, source, *g, it.recv)
	if err != nil {
		in.log.Error("device counter gap not reported", "source", Clip(source), "err", err)
		return nil
	}
	ev.Received = it.recv
	tx.gaps = append(tx.gaps, ev)
	return []pending{{ev: ev}}
}

// counterAttr is counter c as the event attribute "counter": an int64
// while it fits.
func counterAttr(c uint64) any {
	if c <= 1<<63-1 {
		return int64(c)
	}
	return c
}

// lookup reads the counter field from a decoded payload: a non-negative
// integer (or decimal text) below 2^bits.
func (c counterConfig) lookup(obj map[string]any) (uint64, bool) {
	if c.path == "" {
		return 0, false
	}
	return c.value(obj)
}

// value follows the counter's path from v and reads the counter there.
func (c counterConfig) value(v any) (uint64, bool) {
	for part := range strings.SplitSeq(c.path, ".") {
		switch m := v.(type) {
		case map[string]any:
			v = m[part]
		case map[any]any:
			v = m[part]
		default:
			return 0, false
		}
	}
	var n uint64
	var err error
	switch x := v.(type) {
	case json.Number:
		n, err = strconv.ParseUint(string(x), 10, 64)
	case string:
		n, err = strconv.ParseUint(strings.TrimSpace(x), 10, 64)
	case uint64:
		n = x
	case int64:
		if x < 0 {
			return 0, false
		}
		n = uint64(x)
	default:
		return 0, false
	}
	if err != nil || (c.bits < 64 && n >= 1<<c.bits) {
		return 0, false
	}
	return n, true
}

// read decodes payload leniently and reads the counter field. Parsing
// reads the counter from the payload it decodes anyway (lookup); read is
// for a payload the parser refused before decoding it whole (too large
// for its subscription, or altered by the strict decoder), whose counter
// still counts.
func (c counterConfig) read(payload []byte) (uint64, bool) {
	if c.path == "" {
		return 0, false
	}
	var v any
	switch c.format {
	case FormatJSON:
		dec := json.NewDecoder(bytes.NewReader(payload))
		dec.UseNumber()
		if dec.Decode(&v) != nil {
			return 0, false
		}
	case FormatCBOR:
		if cbor.Unmarshal(payload, &v) != nil {
			return 0, false
		}
	default:
		return 0, false
	}
	return c.value(v)
}

func (s *Subscription) validateCounter(v *validator, path string, names []string) {
	f := s.Fields
	if f.Counter != "" {
		switch {
		case s.Format == FormatText || s.Format == FormatRaw:
			v.add(path+".fields.counter", "applies to formats json and cbor only")
		case strings.HasPrefix(f.Counter, ".") || strings.HasSuffix(f.Counter, ".") || strings.Contains(f.Counter, ".."):
			v.add(path+".fields.counter", "invalid field path %q", f.Counter)
		case slices.Contains(names, "counter"):
			v.add(path+".topic", "wildcard name \"counter\" is the attribute fields.counter sets")
		case slices.Contains(f.Attrs, "counter"):
			v.add(path+".fields.attrs", "\"counter\" is the attribute fields.counter sets")
		}
	}
	switch f.CounterBits {
	case 0, 16, 32, 64:
	default:
		v.add(path+".fields.counter_bits", "%d: want 16, 32 or 64", f.CounterBits)
	}
	if f.CounterBits != 0 && f.Counter == "" {
		v.add(path+".fields.counter_bits", "needs fields.counter")
	}
}
