package uplink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/edgegw/gateway/internal/backoff"
)

// Forward delivers one stream's backlog to its topic until ctx ends, then
// returns ctx's error (ErrClosed if the client was closed). It runs producer
// sessions one after another: each creates the stream's producer (stable
// name "<gateway>/<stream>"), sends every entry after the last acked seq in
// order with SequenceID = seq, and acks the backlog as receipts arrive. Any
// failure ends the session; after a backoff (exponential with jitter, capped)
// a new session re-sends everything not yet acked under the same sequence
// IDs, and the broker's deduplication drops what it had already stored.
//
// It returns early only for bad arguments, a second Forward of a stream that
// is already being forwarded, or a closed client.
func (c *Client) Forward(ctx context.Context, gatewayID, stream string, priority int, b Backlog) error {
	if gatewayID == "" {
		return errors.New("uplink: empty gateway ID")
	}
	if err := validStream(stream); err != nil {
		return err
	}
	if b == nil {
		return errors.New("uplink: nil backlog")
	}
	f := &forwarder{
		c: c, gateway: gatewayID, stream: stream, prio: priority, b: b,
		topic: c.opts.Topic(stream), name: producerName(gatewayID, stream),
	}
	f.log = c.log.With("stream", stream, "topic", f.topic)

	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	box, ok := c.streams[stream]
	if ok && box.active {
		c.mu.Unlock()
		return fmt.Errorf("uplink: stream %q is already being forwarded", stream)
	}
	if !ok {
		box = &stateBox{}
		c.streams[stream] = box
	}
	box.active = true
	box.update(func(s *StreamState) {
		*s = StreamState{Gateway: gatewayID, Stream: stream, Topic: f.topic, Producer: f.name, Priority: priority, Since: time.Now()}
	})
	c.forwards.Add(1)
	c.mu.Unlock()
	f.st = box
	defer func() {
		c.mu.Lock()
		box.active = false
		c.mu.Unlock()
		c.forwards.Done()
	}()

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		select {
		case <-c.done:
			cancel(ErrClosed)
		case <-ctx.Done():
		}
	}()
	return f.run(ctx)
}

type forwarder struct {
	c       *Client
	gateway string
	stream  string
	topic   string
	name    string
	prio    int
	b       Backlog
	st      *stateBox
	log     *slog.Logger

	acked   uint64 // last seq acked to the backlog by this forwarder
	maxSent uint64 // highest seq ever handed to a producer (tells re-sends)
}

func (f *forwarder) run(ctx context.Context) error {
	bo := backoff.Backoff{Min: f.c.backoffMin, Max: f.c.backoffMax, Jitter: [2]float64{0.5, 1}}
	for {
		progressed, err := f.session(ctx)
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		if progressed {
			bo.Reset()
		}
		d := bo.Next()
		if err != nil {
			f.st.update(func(s *StreamState) { s.LastError, s.ErrorAt = err.Error(), time.Now(); s.Errors++ })
			args := []any{"err", err, "acked_seq", f.acked, "retry_in", d}
			if strings.Contains(err.Error(), "ProducerBusy") {
				// The broker holds a producer of this name: the previous
				// session's, about to be released, or another process's.
				args = append(args, "hint", "another producer named "+f.name+" is connected: if this lasts, another gateway runs with gateway.id "+f.gateway+" (IDs must be unique: they name the MQTT session and the Pulsar producers)")
			}
			if errors.Is(err, ErrIdentityConflict) {
				f.log.Error("uplink stream held back", args...)
			} else {
				f.log.Warn("uplink session ended; reconnecting", args...)
			}
		}
		if !backoff.Sleep(ctx, d) {
			return context.Cause(ctx)
		}
	}
}
