package uplink

import (
	"context"
	"fmt"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
)

// session runs one producer from creation to its first error (or ctx's end)
// and closes it. progressed reports whether it acked anything.
func (f *forwarder) session(ctx context.Context) (progressed bool, err error) {
	if err := f.c.ensureDedup(ctx); err != nil {
		return false, err
	}
	pc, err := f.c.pulsarClient()
	if err != nil {
		return false, err
	}
	o := f.c.opts
	comp, _ := compressionType(o.Compression) // validated in New
	opts := pulsar.ProducerOptions{
		Topic: f.topic,
		Name:  f.name,
		// Batching is safe only with the patched client (third_party/
		// pulsar-client-go: batches carry their highest sequence ID) and
		// only for events the broker does not have yet: a batch whose first
		// sequence ID is at or below the broker's last is dropped whole,
		// new events included (pulsar-client-go issues 1395, 1407). So the
		// session skips what the broker has and probes before batching; see
		// doc.go.
		DisableBatching:         !o.Batching(),
		BatchingMaxMessages:     uint(max(o.BatchMaxMessages, 1)),
		BatchingMaxSize:         uint(o.BatchMaxBytes),
		BatchingMaxPublishDelay: o.BatchLinger.D(),
		// The library's send timeout fails a prefix of the pending queue
		// and keeps the rest, which a reconnect then persists: the failed
		// ones would be dropped as duplicates when re-sent. Our own
		// watchdog (Options.SendTimeout) closes the whole producer instead.
		SendTimeout:        -1,
		MaxPendingMessages: o.MaxPending,
		CompressionType:    comp,
		Properties:         map[string]string{PropGateway: f.gateway, PropStream: f.stream},
	}
	// The library blocks for up to OperationTimeout on an unreachable
	// broker and does not watch ctx: a stop (a config apply, SIGTERM) must
	// not wait for it.
	p, err := whileCtx(ctx, func() (pulsar.Producer, error) { return f.c.newProducer(pc, opts) }, pulsar.Producer.Close)
	if err != nil {
		return false, fmt.Errorf("creating producer %q: %w", f.name, err)
	}
	bp, patched := p.(pulsar.BrokerSequenceIDProducer)
	if !patched && o.Batching() {
		p.Close()
		return false, fmt.Errorf("producer %q does not report the broker's last sequence ID: batching needs the patched client (third_party/pulsar-client-go)", f.name)
	}
	brokerLast := int64(-1)
	if patched {
		brokerLast = bp.BrokerLastSequenceID()
	}
	f.st.update(func(s *StreamState) { s.Connected, s.Since = true, time.Now(); s.Sessions++ })
	f.log.Info("uplink producer connected", "producer", f.name, "after_seq", f.acked, "broker_last_seq", brokerLast)

	if brokerLast > 0 && uint64(brokerLast) >= f.b.Next() {
		p.Close()
		f.st.update(func(s *StreamState) { s.Connected, s.Since = false, time.Now() })
		return false, fmt.Errorf("%w: producer %q: the broker has seq %d, this gateway's store never went past %d; another gateway runs with gateway.id %q (IDs must be unique), or the store was restored from an older copy; nothing of the stream is sent, so that the broker cannot drop it as duplicates", ErrIdentityConflict, f.name, brokerLast, f.b.Next()-1, f.gateway)
	}
	skipped := false
	if brokerLast > 0 && uint64(brokerLast) > f.acked {
		if err := f.skipStored(uint64(brokerLast)); err != nil {
			p.Close()
			f.st.update(func(s *StreamState) { s.Connected, s.Since = false, time.Now() })
			return false, err
		}
		skipped = true
	}
	var sentBytes func() uint64
	if patched {
		sentBytes = bp.SentBytes
	}
	var wireSeen uint64
	countWire := func() {
		if sentBytes == nil {
			return
		}
		n := sentBytes()
		d := n - wireSeen
		wireSeen = n
		if d > 0 {
			f.st.update(func(s *StreamState) { s.WireBytes += d })
		}
	}

	start := f.acked
	w := newWindow()
	f.st.win.Store(w)
	sctx, cancel := context.WithCancel(ctx)
	ackDone := make(chan struct{})
	go func() {
		defer close(ackDone)
		f.ackLoop(sctx, w, countWire)
	}()

	err = f.sendLoop(sctx, p, w, start, o.Batching())

	// Closing fails every message still pending at once (never a prefix of
	// them), so what the broker stored stays a prefix of what we sent.
	p.Close()
	cancel()
	<-ackDone
	countWire()
	f.st.win.Store(nil)
	f.st.update(func(s *StreamState) { s.Connected, s.Since = false, time.Now() })
	return f.acked > start || skipped, err
}

// skipStored acks to the backlog, without sending them, the entries up to
// the broker's last sequence ID: the broker has them (what it stores of a
// producer name is a prefix of what was sent, in seq order). Re-sending
// them batched could be dropped together with new events; unbatched it only
// costs the link.
func (f *forwarder) skipStored(upTo uint64) error {
	var n, last uint64
	for after := f.acked; ; {
		ents, err := f.b.Read(after, f.c.readBatch)
		if err != nil {
			return fmt.Errorf("backlog read after %d: %w", after, err)
		}
		for _, e := range ents {
			if e.Seq > upTo {
				break
			}
			n++
			after, last = e.Seq, e.Seq
		}
		if len(ents) == 0 || ents[len(ents)-1].Seq >= upTo {
			break
		}
	}
	// The backlog may end below upTo (the buffer acked the rest before a
	// restart, or never assigned those seqs): ack only entries it has; the
	// session starts after upTo either way.
	if n > 0 {
		if err := f.b.Ack(last); err != nil {
			return fmt.Errorf("backlog ack up to %d (what the broker has): %w", last, err)
		}
	}
	args := []any{"producer", f.name, "from_seq", f.acked + 1, "to_seq", upTo, "entries", n}
	f.log.Info("skipping entries the broker already has", args...)
	f.acked = upTo
	f.st.update(func(s *StreamState) {
		s.Skipped += n
		s.Acked += n
		if n > 0 {
			s.AckedSeq = last
		}
	})
	return nil
}

func (f *forwarder) sendLoop(ctx context.Context, p pulsar.Producer, w *window, next uint64, batching bool) error {
	o := f.c.opts
	timer := time.NewTimer(o.SendTimeout.D())
	defer timer.Stop()
	probed := !batching
	for {
		if err := w.failed(); err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		n, oldest := w.inFlight()
		if n > 0 && time.Since(oldest) >= o.SendTimeout.D() {
			return fmt.Errorf("%w (%s, %d in flight)", ErrSendTimeout, o.SendTimeout, n)
		}
		var notify <-chan struct{}
		var room chan struct{}
		if free := o.MaxPending - n; free > 0 {
			notify = f.b.Notify()
			ents, err := f.b.Read(next, min(free, f.c.readBatch))
			if err != nil {
				return fmt.Errorf("backlog read after %d: %w", next, err)
			}
			if len(ents) > 0 {
				for _, e := range ents {
					select {
					case <-w.dead: // stop at the first failure
						return w.failed()
					default:
					}
					if e.Seq <= next {
						return fmt.Errorf("backlog returned seq %d after %d: not ascending", e.Seq, next)
					}
					if !probed {
						if err := f.probe(ctx, p, w, e); err != nil {
							return err
						}
						probed, next = true, e.Seq
						break // read again: the window has room for a full read
					}
					if err := f.send(ctx, p, w, e, nil); err != nil {
						return err
					}
					next = e.Seq
				}
				continue
			}
		} else {
			room = w.room // window full: wait for a receipt
		}
		wait := o.SendTimeout.D()
		if n > 0 {
			wait = max(time.Until(oldest.Add(o.SendTimeout.D())), time.Millisecond)
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
		case <-w.dead:
		case <-notify:
		case <-room:
		case <-timer.C:
		}
	}
}

// probe sends the session's first event alone (a batch of one) and waits
// for its receipt, before any batch goes out. ProducerSuccess.last_sequence_id
// is what the broker had persisted when the producer was created; writes of a
// previous producer whose connection just died may still be landing, and a
// batch starting at or below them would be dropped whole, new events
// included. A lone message cannot straddle: a duplicate receipt means the
// broker had more than it said, and the session ends (the next producer
// learns the settled state); a stored one means nothing of ours is above it,
// so batches that follow start above everything the broker has.
func (f *forwarder) probe(ctx context.Context, p pulsar.Producer, w *window, e Entry) error {
	dup := make(chan bool, 1)
	if err := f.send(ctx, p, w, e, dup); err != nil {
		return err
	}
	fctx, cancel := context.WithTimeout(ctx, f.c.opts.SendTimeout.D())
	defer cancel()
	if err := p.FlushWithCtx(fctx); err != nil {
		return fmt.Errorf("flushing the first event (seq %d): %w", e.Seq, err)
	}
	select {
	case d := <-dup:
		if d {
			f.st.update(func(s *StreamState) { s.StaleBrokerSeq++ })
			return fmt.Errorf("%w: seq %d is a duplicate", ErrStaleBrokerSeq, e.Seq)
		}
		return nil
	case <-w.dead:
		return w.failed()
	case <-fctx.Done():
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%w (%s, the session's first event, seq %d)", ErrSendTimeout, f.c.opts.SendTimeout, e.Seq)
	}
}

func (f *forwarder) send(ctx context.Context, p pulsar.Producer, w *window, e Entry, dup chan<- bool) error {
	m, decoded, err := message(f.gateway, f.stream, e)
	if err != nil {
		return err
	}
	if f.c.opts.Batching() {
		// The broker dispatches a batch to Key_Shared consumers by its
		// ordering key (or else by its first message's key): one constant
		// per producer keeps each stream of each gateway, and so each
		// source, in order at one consumer. Each message keeps key = source.
		m.OrderingKey = f.name
	}
	if !decoded {
		f.log.Warn("entry does not decode; sending it without key, time or kind", "seq", e.Seq, "err", m.Properties[PropDecodeError])
	}
	if f.c.bw != nil {
		if err := f.c.bw.wait(ctx, f.prio, f.wireCost(len(e.Data))); err != nil {
			return err
		}
	}
	resend := e.Seq <= f.maxSent
	if !resend {
		f.maxSent = e.Seq
	}
	f.st.update(func(s *StreamState) {
		s.Sent++
		s.SentBytes += uint64(len(e.Data))
		if resend {
			s.Resent++
		}
		if !decoded {
			s.Undecodable++
		}
	})
	seq := e.Seq
	w.add(seq, time.Now())
	p.SendAsync(ctx, m, func(id pulsar.MessageID, _ *pulsar.ProducerMessage, err error) {
		d := f.onReceipt(w, seq, id, err)
		if dup != nil && err == nil {
			dup <- d
		}
	})
	return nil
}

// isDuplicateReceipt tells a receipt for a message the broker dropped as a
// duplicate (it had stored that sequence ID already): its message ID is
// -1:-1 (ledger and entry both -1).
func isDuplicateReceipt(id pulsar.MessageID) bool {
	return id != nil && id.LedgerID() == -1 && id.EntryID() == -1
}

// onReceipt runs on the client library's goroutines: it must not block. It
// returns whether the receipt is a duplicate's.
func (f *forwarder) onReceipt(w *window, seq uint64, id pulsar.MessageID, err error) bool {
	if err != nil {
		w.complete(seq, fmt.Errorf("send of seq %d: %w", seq, err), time.Time{})
		return false
	}
	dup := isDuplicateReceipt(id)
	lat, ok := w.complete(seq, nil, time.Now())
	if !ok {
		return dup
	}
	f.st.update(func(s *StreamState) {
		s.Receipts++
		if dup {
			s.Duplicates++
		}
		s.LastReceiptLatency = lat
	})
	if h := f.c.latency.Load(); h != nil {
		(*h)(f.stream, lat.Seconds())
	}
	return dup
}

// ackLoop acks the receipted prefix to the backlog, coalescing: at most one
// Ack per ackEvery, and naturally while an Ack is in progress. It acks once
// more when ctx ends (after the producer is closed).
func (f *forwarder) ackLoop(ctx context.Context, w *window, tick func()) {
	var acked uint64 // entries acked this session
	ack := func() {
		seq, n := w.ackable()
		if n == acked {
			return
		}
		if err := f.b.Ack(seq); err != nil {
			w.fail(fmt.Errorf("backlog ack up to %d: %w", seq, err))
			return
		}
		tick()
		d := n - acked
		acked, f.acked = n, seq
		f.st.update(func(s *StreamState) { s.AckedSeq = seq; s.Acked += d })
	}
	timer := time.NewTimer(0)
	<-timer.C
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			ack()
			return
		case <-w.receipt:
		}
		timer.Reset(f.c.ackEvery)
		select {
		case <-ctx.Done():
			ack()
			return
		case <-timer.C:
		}
		ack()
	}
}

// wireCost is what n payload bytes are expected to cost on the link, for
// the bandwidth limit: n scaled by the stream's ratio of wire bytes to
// payload bytes so far (batched and compressed, a scan costs a tenth of
// its payload), once enough has been sent to tell; n before that.
func (f *forwarder) wireCost(n int) int {
	st := f.st.get()
	if st.SentBytes < 64<<10 || st.WireBytes == 0 {
		return n
	}
	ratio := min(float64(st.WireBytes)/float64(st.SentBytes), 2)
	return max(1, int(float64(n)*ratio+0.5))
}
