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
	comp, _ := compressionType(f.c.opts.Compression) // validated in New
	p, err := f.c.newProducer(pc, pulsar.ProducerOptions{
		Topic: f.topic,
		Name:  f.name,
		// A client batch carries only its first sequence ID, and a batch
		// mixing re-sent and new events is dropped whole (pulsar-client-go
		// issues 1395, 1407): one message per entry.
		DisableBatching: true,
		// The library's send timeout fails a prefix of the pending queue
		// and keeps the rest, which a reconnect then persists: the failed
		// ones would be dropped as duplicates when re-sent. Our own
		// watchdog (Options.SendTimeout) closes the whole producer instead.
		SendTimeout:        -1,
		MaxPendingMessages: f.c.opts.MaxPending,
		CompressionType:    comp,
		Properties:         map[string]string{PropGateway: f.gateway, PropStream: f.stream},
	})
	if err != nil {
		return false, fmt.Errorf("creating producer %q: %w", f.name, err)
	}
	f.st.update(func(s *StreamState) { s.Connected, s.Since = true, time.Now(); s.Sessions++ })
	f.log.Info("uplink producer connected", "producer", f.name, "after_seq", f.acked)

	start := f.acked
	w := newWindow()
	f.st.win.Store(w)
	sctx, cancel := context.WithCancel(ctx)
	ackDone := make(chan struct{})
	go func() {
		defer close(ackDone)
		f.ackLoop(sctx, w)
	}()

	err = f.sendLoop(sctx, p, w, start)

	// Closing fails every message still pending at once (never a prefix of
	// them), so what the broker stored stays a prefix of what we sent.
	p.Close()
	cancel()
	<-ackDone
	f.st.win.Store(nil)
	f.st.update(func(s *StreamState) { s.Connected, s.Since = false, time.Now() })
	return f.acked > start, err
}

func (f *forwarder) sendLoop(ctx context.Context, p pulsar.Producer, w *window, next uint64) error {
	o := f.c.opts
	timer := time.NewTimer(o.SendTimeout.D())
	defer timer.Stop()
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
					if err := f.send(ctx, p, w, e); err != nil {
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

func (f *forwarder) send(ctx context.Context, p pulsar.Producer, w *window, e Entry) error {
	m, decoded, err := message(f.gateway, f.stream, e)
	if err != nil {
		return err
	}
	if !decoded {
		f.log.Warn("entry does not decode; sending it without key, time or kind", "seq", e.Seq, "err", m.Properties[PropDecodeError])
	}
	if f.c.bw != nil {
		if err := f.c.bw.wait(ctx, f.prio, len(e.Data)); err != nil {
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
		f.onReceipt(w, seq, id, err)
	})
	return nil
}

// isDuplicateReceipt tells a receipt for a message the broker dropped as a
// duplicate (it had stored that sequence ID already): its message ID is
// -1:-1 (ledger and entry both -1).
func isDuplicateReceipt(id pulsar.MessageID) bool {
	return id != nil && id.LedgerID() == -1 && id.EntryID() == -1
}

// onReceipt runs on the client library's goroutines: it must not block.
func (f *forwarder) onReceipt(w *window, seq uint64, id pulsar.MessageID, err error) {
	if err != nil {
		w.complete(seq, fmt.Errorf("send of seq %d: %w", seq, err), time.Time{})
		return
	}
	lat, ok := w.complete(seq, nil, time.Now())
	if !ok {
		return
	}
	dup := isDuplicateReceipt(id)
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
}

// ackLoop acks the receipted prefix to the backlog, coalescing: at most one
// Ack per ackEvery, and naturally while an Ack is in progress. It acks once
// more when ctx ends (after the producer is closed).
func (f *forwarder) ackLoop(ctx context.Context, w *window) {
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
