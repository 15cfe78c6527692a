package sink

import (
	"context"
	"errors"
	"maps"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"

	"github.com/edgegw/gateway/event"
)

// maxCollect is the most messages taken from the receive queue at once;
// their rows are grouped by partition before they are written.
const maxCollect = 512

// Dead-letter message properties, besides the original message's own.
const (
	PropReason        = "reason"         // "<category>: <error>"; category is decode, invalid or write
	PropOriginalTopic = "original_topic" // the events topic the message came from
	PropMessageID     = "message_id"     // its message ID there (ledger:entry:partition:batch)
)

// consume receives until ctx ends. Each round takes what the receive queue
// holds (up to maxCollect, waiting at most write.linger for more), decodes
// it and hands the rows to the writer, whose bounded concurrency blocks this
// loop when Cassandra is slow: then nothing is received and Pulsar stops
// delivering once the receiver queue is full.
func (s *Sink) consume(ctx, writeCtx context.Context, c pulsar.Consumer, dlq pulsar.Producer, w *Writer) {
	ch := c.Chan()
	linger := s.cfg.Write.Linger.D()
	batch := make([]pulsar.Message, 0, maxCollect)
	for {
		batch = batch[:0]
		select {
		case <-ctx.Done():
			return
		case cm, ok := <-ch:
			if !ok {
				return
			}
			batch = append(batch, cm.Message)
		}
		t := time.NewTimer(linger)
	fill:
		for len(batch) < maxCollect {
			select {
			case cm, ok := <-ch:
				if !ok {
					break fill
				}
				batch = append(batch, cm.Message)
			case <-t.C:
				break fill
			case <-ctx.Done():
				break fill
			}
		}
		t.Stop()
		s.handle(writeCtx, c, dlq, w, batch)
	}
}

// handle decodes messages and submits their rows; what does not decode is
// dead-lettered.
func (s *Sink) handle(ctx context.Context, c pulsar.Consumer, dlq pulsar.Producer, w *Writer, msgs []pulsar.Message) {
	items := make([]item, 0, len(msgs))
	for _, msg := range msgs {
		s.m.incConsumed()
		payload := msg.Payload()
		ev, err := event.Unmarshal(payload)
		if err != nil {
			s.deadLetter(ctx, c, dlq, msg, "decode", err)
			continue
		}
		rows, err := deriveRows(ev, payload, s.cfg.Cassandra.TTL)
		if err != nil {
			s.deadLetter(ctx, c, dlq, msg, "invalid", err)
			continue
		}
		items = append(items, item{job: &job{done: func(err error) {
			var pe *PoisonError
			switch {
			case err == nil:
				s.ack(c, msg)
			case errors.As(err, &pe):
				s.deadLetter(ctx, c, dlq, msg, "write", err)
			default: // abandoned: Pulsar redelivers it
				s.log.Debug("message left unacknowledged", "topic", msg.Topic(), "id", msg.ID().String(), "err", err)
			}
		}}, rows: rows})
	}
	w.submit(ctx, items)
}

func (s *Sink) ack(c pulsar.Consumer, msg pulsar.Message) {
	if err := c.Ack(msg); err != nil {
		// Not fatal: the message will be redelivered and rewritten.
		s.log.Warn("ack failed", "topic", msg.Topic(), "id", msg.ID().String(), "err", err)
		return
	}
	s.m.incAcked()
}

// deadLetter publishes msg to the dead-letter topic, with the reason, the
// original topic and message ID as properties, then acknowledges it. The
// publication runs in the background (at most maxDeadLetterInFlight at
// once) and is retried until ctx ends, so a bad message never blocks the
// stream and is never acknowledged without a copy in the dead-letter topic.
func (s *Sink) deadLetter(ctx context.Context, c pulsar.Consumer, dlq pulsar.Producer, msg pulsar.Message, category string, cause error) {
	reason := category + ": " + cause.Error()
	s.log.Warn("dead-lettering a message", "topic", msg.Topic(), "id", msg.ID().String(), "reason", reason)
	select {
	case s.dlqSem <- struct{}{}:
	case <-ctx.Done():
		return
	}
	props := maps.Clone(msg.Properties())
	if props == nil {
		props = make(map[string]string, 3)
	}
	props[PropReason] = reason
	props[PropOriginalTopic] = msg.Topic()
	props[PropMessageID] = msg.ID().String()
	pm := &pulsar.ProducerMessage{Payload: msg.Payload(), Key: msg.Key(), Properties: props}
	if t := msg.EventTime(); !t.IsZero() {
		pm.EventTime = t
	}
	s.dlqWG.Add(1)
	go func() {
		defer s.dlqWG.Done()
		defer func() { <-s.dlqSem }()
		bo := newBackoff(s.cfg.Retry)
		for {
			_, err := dlq.Send(ctx, pm)
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				return
			}
			s.log.Warn("dead-letter publish failed; retrying", "topic", dlq.Topic(), "err", err)
			if sleep(ctx, bo.Next()) != nil {
				return
			}
		}
		s.m.incDead(category)
		s.ack(c, msg)
	}()
}
