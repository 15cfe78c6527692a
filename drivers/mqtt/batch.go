package mqtt

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/edgegw/gateway/drivers"
	"github.com/edgegw/gateway/event"
)

// Retry waits when the sink refuses a batch (ErrFull or another error).
const (
	retryMin = 10 * time.Millisecond
	retryMax = 2 * time.Second
)

// work turns the queue into committed, acknowledged batches, in two
// stages so that parsing the next batch overlaps the commit (and its fsync)
// of the previous one: the batcher, the only reader of queue, collects a
// batch and parses it; the committer commits it (Quarantine for the bad,
// one Emit for the good), then acks every message of the batch in order.
// Batches pass between them in order, at most one waiting, so events reach
// the sink in the order the broker delivered them. It returns when ctx ends.
func (d *Driver) work(ctx context.Context, queue <-chan item, sink drivers.Sink) {
	parsed := make(chan parsedBatch, 1)
	committed := make(chan struct{})
	go func() {
		defer close(committed)
		d.commitLoop(ctx, sink, parsed)
	}()
	defer func() {
		close(parsed)
		<-committed
	}()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var tick <-chan time.Time // reports rate-limit drops while no message arrives
	if d.limited() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		tick = t.C
	}
	send := func(pb parsedBatch) bool {
		select {
		case parsed <- pb:
			return true
		case <-committed: // the committer stopped: ctx ended
			return false
		case <-ctx.Done():
			return false
		}
	}
	for {
		batch := make([]item, 0, d.cfg.AckBatch)
		select {
		case it := <-queue:
			batch = append(batch, it)
		case <-tick:
			if r := d.dropReports(); len(r) > 0 && !send(parsedBatch{ps: r}) {
				return
			}
			continue
		case <-ctx.Done():
			return
		}
		batch = d.fill(ctx, queue, batch, timer)
		if !send(d.parseBatch(batch)) {
			return
		}
	}
}

// parsedBatch is a batch of messages with their parse results, then the
// rate-limit drop reports that were due (pending without an item).
type parsedBatch struct {
	items   []item
	ps      []pending
	limited int // of items: dropped by a rate limit
}

func (d *Driver) parseBatch(batch []item) parsedBatch {
	pb := parsedBatch{items: batch, ps: make([]pending, len(batch))}
	for i := range batch {
		pb.ps[i] = d.parse(&batch[i])
		if pb.ps[i].limited {
			pb.limited++
		}
	}
	if pb.limited > 0 {
		pb.ps = append(pb.ps, d.dropReports()...)
	}
	return pb
}

// commitLoop commits and acks the batches in order until parsed is closed
// or ctx ends (then nothing more is acked: the broker redelivers).
func (d *Driver) commitLoop(ctx context.Context, sink drivers.Sink, parsed <-chan parsedBatch) {
	for pb := range parsed {
		if !d.commit(ctx, sink, pb) {
			return
		}
		for _, it := range pb.items {
			it.msg.ack()
		}
		d.stats.acked.Add(uint64(len(pb.items)))
		d.stats.rateLimited.Add(uint64(pb.limited))
		d.stats.pending.Add(-int64(len(pb.items)))
	}
}

// fill adds to batch what is already queued, then waits for more until the
// batch is full, the broker can send no more (BrokerInflight messages of QoS
// 1/2 held), or AckWindow has passed since the first message arrived.
func (d *Driver) fill(ctx context.Context, queue <-chan item, batch []item, timer *time.Timer) []item {
	held := 0
	for _, it := range batch {
		if it.msg.qos > 0 {
			held++
		}
	}
	full := func() bool {
		return len(batch) >= d.cfg.AckBatch || (d.cfg.BrokerInflight > 0 && held >= d.cfg.BrokerInflight)
	}
	add := func(it item) {
		batch = append(batch, it)
		if it.msg.qos > 0 {
			held++
		}
	}
drain:
	for !full() {
		select {
		case it := <-queue:
			add(it)
		default:
			break drain
		}
	}
	wait := d.cfg.AckWindow - d.now().Sub(batch[0].recv)
	if full() || wait <= 0 {
		return batch
	}
	timer.Reset(wait)
	defer timer.Stop()
	for !full() {
		select {
		case it := <-queue:
			add(it)
		case <-timer.C:
			return batch
		case <-ctx.Done():
			return batch
		}
	}
	return batch
}

// pending is a parsed message of a batch: an event, or why it has none. A
// rate-limited message has neither; a drop report has an event but no item.
type pending struct {
	it      *item
	ev      *event.Event
	bad     *reject
	limited bool
}

// commit makes the batch durable: quarantines what does not parse, emits the
// rest, with the drop reports, as one batch, retrying until the sink takes
// it. It returns false only when ctx ended first (nothing may then be acked).
func (d *Driver) commit(ctx context.Context, sink drivers.Sink, pb parsedBatch) bool {
	var good []pending
	for _, p := range pb.ps {
		switch {
		case p.limited:
		case p.bad == nil:
			good = append(good, p)
		default:
			if !d.quarantine(ctx, sink, p) {
				return false
			}
		}
	}
	return d.emit(ctx, sink, good)
}

// parse matches the topic to the first subscription that covers it, applies
// the subscription's rate limit and payload limit, and parses the payload.
func (d *Driver) parse(it *item) pending {
	m := &it.msg
	for _, s := range d.subs {
		vals, ok := s.pat.match(m.topic)
		if !ok {
			continue
		}
		if s.limit != nil && !s.limit.allow(s.sourceOf(m.topic, vals), m.topic, it.recv) {
			return pending{it: it, limited: true}
		}
		if lim := s.maxPayload; lim > 0 && len(m.payload) > lim {
			return pending{it: it, bad: rejectf(ReasonOversize, "%d bytes > max_payload %d (first %d kept)", len(m.payload), lim, min(len(m.payload), int(d.cfg.MaxPayload)))}
		}
		ev, bad := s.parse(m.topic, vals, m.payload, it.recv, d.cfg.DeviceTime)
		if ev != nil {
			ev.DedupKey = dedupKey(m.topic, m.payload)
			ev.Redelivered = m.dup
		}
		return pending{it: it, ev: ev, bad: bad}
	}
	if lim := int(d.cfg.MaxPayload); len(m.payload) > lim {
		return pending{it: it, bad: rejectf(ReasonOversize, "%d bytes > max_payload %d (first %d kept)", len(m.payload), lim, lim)}
	}
	return pending{it: it, bad: rejectf(ReasonUnsubscribed, "topic %q matches no subscription (a filter left in the persistent session?)", clip(m.topic))}
}

// limited reports whether any subscription has a rate limit.
func (d *Driver) limited() bool {
	for _, s := range d.subs {
		if s.limit != nil {
			return true
		}
	}
	return false
}

// dropReports returns the rate-limit drop reports that are due, as events,
// and logs each (so at most once per source every rateReport).
func (d *Driver) dropReports() []pending {
	now := d.now()
	var out []pending
	for _, s := range d.subs {
		if s.limit == nil {
			continue
		}
		for _, r := range s.limit.due(s.stream, now) {
			d.log.Warn("source over its rate limit: messages acknowledged and dropped",
				"source", clip(r.source), "stream", r.stream, "dropped", r.count,
				"since", r.first, "events_per_second", r.rate, "burst", r.burst)
			out = append(out, pending{ev: r.event(now)})
		}
		if len(s.limit.buckets) > maxTrackedSources/2 {
			s.limit.prune(now)
		}
	}
	d.stats.rateReports.Add(uint64(len(out)))
	return out
}

// dedupKey identifies a message for the gateway's redelivery check: the
// first 16 bytes of SHA-256 over topic, a zero byte, and payload.
func dedupKey(topic string, payload []byte) []byte {
	h := sha256.New()
	h.Write([]byte(topic))
	h.Write([]byte{0})
	h.Write(payload)
	return h.Sum(nil)[:16]
}

func (d *Driver) quarantine(ctx context.Context, sink drivers.Sink, p pending) bool {
	payload := p.it.msg.payload
	if lim := int(d.cfg.MaxPayload); len(payload) > lim {
		payload = payload[:lim]
	}
	reason := p.bad.String()
	b := backoff{min: retryMin, max: retryMax}
	for {
		err := sink.Quarantine(ctx, p.it.msg.topic, payload, reason)
		if err == nil {
			d.stats.quarantine(p.bad.reason)
			d.log.Warn("payload quarantined", "topic", clip(p.it.msg.topic), "reason", reason)
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		d.stats.emitErrors.Add(1)
		d.log.Error("quarantine failed; retrying", "err", err)
		if !b.sleep(ctx) {
			return false
		}
	}
}

// emit hands the events to the sink as one batch and retries until it takes
// them. ErrFull pauses ingest: the batcher takes nothing more from the queue,
// so nothing more is acked and the broker holds the rest. If the sink says a
// batch holds an invalid event (event.ErrInvalid), the events go one by one
// and the invalid ones are quarantined.
func (d *Driver) emit(ctx context.Context, sink drivers.Sink, ps []pending) bool {
	if len(ps) == 0 {
		return true
	}
	evs := make([]*event.Event, len(ps))
	for i, p := range ps {
		evs[i] = p.ev
	}
	b := backoff{min: retryMin, max: retryMax}
	for {
		err := sink.Emit(ctx, evs)
		if err == nil {
			if d.stats.paused.Swap(false) {
				d.log.Info("sink accepts events again; ingest resumed")
			}
			accepted := 0
			for _, p := range ps {
				if p.it != nil {
					accepted++
				}
			}
			d.stats.accepted.Add(uint64(accepted))
			d.stats.batches.Add(1)
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		switch {
		case errors.Is(err, event.ErrInvalid) && len(ps) > 1:
			for _, p := range ps {
				if !d.emit(ctx, sink, []pending{p}) {
					return false
				}
			}
			return true
		case errors.Is(err, event.ErrInvalid) && ps[0].it == nil:
			d.stats.emitErrors.Add(1)
			d.log.Error("rate-limit drop report refused as invalid; not reported", "err", err)
			return true
		case errors.Is(err, event.ErrInvalid):
			p := ps[0]
			p.bad = rejectf(ReasonInvalidEvent, "%v", err)
			return d.quarantine(ctx, sink, p)
		case errors.Is(err, drivers.ErrFull):
			d.stats.fullRetries.Add(1)
			if !d.stats.paused.Swap(true) {
				d.log.Warn("stream full; ingest paused, the broker holds new messages", "stream", evs[0].Stream)
			}
		default:
			d.stats.emitErrors.Add(1)
			d.log.Error("emit failed; retrying", "err", fmt.Errorf("%d events: %w", len(evs), err))
		}
		if !b.sleep(ctx) {
			return false
		}
	}
}
