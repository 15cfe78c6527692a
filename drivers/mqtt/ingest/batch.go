package ingest

import (
	"context"
	"time"

	"github.com/edgegw/gateway/drivers"
	"github.com/edgegw/gateway/event"
)

// Retry waits when the sink refuses a batch (ErrFull or another error).
const (
	retryMin = 10 * time.Millisecond
	retryMax = 2 * time.Second
)

// Work turns the Inlet's queue into committed, acknowledged batches, in two stages
// so that collecting and parsing overlap the commit (and its fsync) of the
// previous batch. The batcher, the only reader of queue, parses each message
// as it takes it, and closes a batch when it is full, the broker can send no
// more, or AckWindow has passed since its first message; it then hands the
// batch over as soon as the committer is free, and until then keeps adding
// to it (up to full), so that a slow commit means bigger batches rather than
// a backlog of small ones. The committer commits a batch (Quarantine for the
// bad, one Emit for the good), then acks its messages in order. Batches pass
// one at a time, in order, so events reach the sink in the order the broker
// delivered them. It returns when ctx ends.
func (in *Ingest) Work(ctx context.Context, q *Inlet, sink drivers.Sink) {
	queue := q.queue
	parsed := make(chan *parsedBatch) // unbuffered: taken only by an idle committer
	committed := make(chan struct{})
	go func() {
		defer close(committed)
		in.commitLoop(ctx, sink, parsed)
	}()
	defer func() {
		close(parsed)
		<-committed
	}()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var tick <-chan time.Time // reports rate-limit drops while no message arrives
	if in.limited() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		tick = t.C
	}
	for {
		pb := &parsedBatch{items: make([]item, 0, in.cfg.AckBatch)}
		select {
		case it := <-queue:
			in.add(pb, it)
		case <-tick:
			pb.reports = in.dropReports()
			if len(pb.reports) == 0 {
				continue
			}
		case <-ctx.Done():
			return
		}
		if len(pb.items) > 0 {
			in.fill(ctx, queue, pb, timer)
		}
	handoff:
		for {
			if pb.limited > 0 && !pb.reported {
				pb.reports, pb.reported = in.dropReports(), true
			}
			next := queue
			if in.full(pb) {
				next = nil
			}
			select {
			case parsed <- pb:
				break handoff
			case it := <-next:
				in.add(pb, it)
			case <-committed: // the committer stopped: ctx ended
				return
			case <-ctx.Done():
				return
			}
		}
	}
}

// parsedBatch is a batch of messages with their parse results, and the
// rate-limit drop reports that were due when it was handed over.
type parsedBatch struct {
	items   []item    // cap AckBatch, never grown past it: ps point into it
	ps      []pending // ps[i] is items[i] parsed
	reports []pending // drop reports (events without an item)
	// reported: the reports due were taken (once per batch; drops after
	// that are reported with a later batch or by the ticker)
	reported bool
	limited  int // of items: dropped by a rate limit
	held     int // of items: QoS 1/2, which the broker counts in flight
}

// add takes it into the batch and parses it.
func (in *Ingest) add(pb *parsedBatch, it item) {
	pb.items = append(pb.items, it)
	p := in.parse(&pb.items[len(pb.items)-1])
	pb.ps = append(pb.ps, p)
	if p.limited {
		pb.limited++
	}
	if it.msg.QoS > 0 {
		pb.held++
	}
}

// full reports whether pb holds AckBatch messages, or BrokerInflight QoS
// 1/2 messages after which the broker sends no more until acks.
func (in *Ingest) full(pb *parsedBatch) bool {
	return len(pb.items) >= in.cfg.AckBatch || (in.inflight > 0 && pb.held >= in.inflight)
}

// commitLoop commits and acks the batches in order until parsed is closed
// or ctx ends (then nothing more is acked: the broker redelivers).
func (in *Ingest) commitLoop(ctx context.Context, sink drivers.Sink, parsed <-chan *parsedBatch) {
	for pb := range parsed {
		if !in.commit(ctx, sink, pb) {
			return
		}
		acked := 0
		for _, it := range pb.items {
			if !it.refused {
				it.msg.Ack()
				acked++
			}
		}
		in.stats.acked.Add(uint64(acked))
		in.stats.rateLimited.Add(uint64(pb.limited))
		in.stats.pending.Add(-int64(len(pb.items)))
	}
}

// fill adds to pb what is already queued, then waits for more until the
// batch is full or AckWindow has passed since its first message arrived.
func (in *Ingest) fill(ctx context.Context, queue <-chan item, pb *parsedBatch, timer *time.Timer) {
drain:
	for !in.full(pb) {
		select {
		case it := <-queue:
			in.add(pb, it)
		default:
			break drain
		}
	}
	wait := in.cfg.AckWindow.D() - in.now().Sub(pb.items[0].recv)
	if in.full(pb) || wait <= 0 {
		return
	}
	timer.Reset(wait)
	defer timer.Stop()
	for !in.full(pb) {
		select {
		case it := <-queue:
			in.add(pb, it)
		case <-timer.C:
			return
		case <-ctx.Done():
			return
		}
	}
}

// pending is a parsed message of a batch: an event, or why it has none. A
// rate-limited message has neither; a drop report has an event but no item.
type pending struct {
	it      *item
	ev      *event.Event
	bad     *reject
	limited bool
	// sub is the index of the subscription the message went to (-1: none),
	// source the source it rendered (also for a message without event).
	sub    int
	source string
	// counter is the device counter (Fields.Counter) read from the payload,
	// when hasCounter; it is read once, while parsing, also from a payload
	// that is quarantined.
	counter    uint64
	hasCounter bool
}

// commit makes the batch durable: quarantines what does not parse, emits the
// rest, with the drop reports, as one batch, retrying until the sink takes
// it. It returns false only when ctx ended first (nothing may then be acked).
func (in *Ingest) commit(ctx context.Context, sink drivers.Sink, pb *parsedBatch) bool {
	var good []pending
	for _, p := range pb.ps {
		switch {
		case p.limited:
		case p.bad == nil:
			good = append(good, p)
		default:
			if !in.quarantine(ctx, sink, p) {
				return false
			}
		}
	}
	good, counted := in.counterGaps(pb, good) // device counter gaps, before their events
	if !in.emit(ctx, sink, append(good, pb.reports...)) {
		return false
	}
	counted.commit(in) // only now: a redelivery of an uncommitted batch finds the same state
	return true
}

// parse matches the topic to the first subscription that covers it, applies
// the subscription's rate limit and payload limit, and parses the payload.
func (in *Ingest) parse(it *item) pending {
	m := &it.msg
	for i, s := range in.subs {
		vals, ok := s.pat.match(m.Topic)
		if !ok {
			continue
		}
		p := pending{it: it, sub: i, source: s.sourceOf(m.Topic, vals)}
		if s.limit != nil && !s.limit.allow(p.source, m.Topic, it.recv) {
			p.limited = true
			return p
		}
		if lim := s.maxPayload; lim > 0 && len(m.Payload) > lim {
			p.bad = rejectf(ReasonOversize, "%d bytes > max_payload %d (first %d kept)", len(m.Payload), lim, min(len(m.Payload), int(in.cfg.MaxPayload)))
			if len(m.Payload) <= int(in.cfg.MaxPayload) {
				p.counter, p.hasCounter = s.counter.read(m.Payload) // quarantined, not lost
			}
			return p
		}
		r := s.parseMsg(m.Topic, p.source, vals, m.Payload, it.recv, in.cfg.DeviceTime)
		p.ev, p.bad, p.counter, p.hasCounter = r.ev, r.bad, r.counter, r.hasCounter
		if p.ev != nil {
			p.ev.DedupKey = DedupKey(m.Topic, m.Payload)
			p.ev.Redelivered = m.Dup
		}
		return p
	}
	if lim := int(in.cfg.MaxPayload); len(m.Payload) > lim {
		return pending{it: it, sub: -1, bad: rejectf(ReasonOversize, "%d bytes > max_payload %d (first %d kept)", len(m.Payload), lim, lim)}
	}
	return pending{it: it, sub: -1, bad: rejectf(ReasonUnsubscribed, "topic %q matches no subscription (a filter left in the persistent session?)", Clip(m.Topic))}
}

// limited reports whether any subscription has a rate limit.
func (in *Ingest) limited() bool {
	for _, s := range in.subs {
		if s.limit != nil {
			return true
		}
	}
	return false
}

// dropReports returns the rate-limit drop reports that are due, as events,
// and logs each (so at most once per source every rateReport).
func (in *Ingest) dropReports() []pending {
	now := in.now()
	var out []pending
	for _, s := range in.subs {
		if s.limit == nil {
			continue
		}
		for _, r := range s.limit.due(s.stream, now) {
			in.log.Warn("source over its rate limit: messages acknowledged and dropped",
				"source", Clip(r.source), "stream", r.stream, "dropped", r.count,
				"since", r.first, "events_per_second", r.rate, "burst", r.burst)
			out = append(out, pending{ev: r.event(now)})
		}
		if len(s.limit.buckets) > maxTrackedSources/2 {
			s.limit.prune(now)
		}
	}
	in.stats.rateReports.Add(uint64(len(out)))
	return out
}
