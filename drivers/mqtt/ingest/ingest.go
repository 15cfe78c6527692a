package ingest

import (
	"fmt"
	"log/slog"
	"time"
)

// Message is one PUBLISH as a transport hands it over.
type Message struct {
	Topic   string
	Payload []byte
	QoS     byte
	Dup     bool // the sender says it may have sent this before
	// Ack acknowledges the message to whoever sent it (PUBACK or PUBREC);
	// it is a no-op for QoS 0 and after the connection that carried the
	// message is gone (the sender then sends it again).
	Ack func()
	// Refuse, when not nil, tells the sender the message was not taken (an
	// MQTT 5 reason code) and reports whether it could: only the embedded
	// broker's MQTT 5 devices can be told.
	Refuse func(reason byte) bool
}

// Options are what a transport tells the Ingest besides the config.
type Options struct {
	// Logger for the source (nil: slog.Default()).
	Logger *slog.Logger
	// BrokerInflight is the sending broker's in-flight window for this
	// source (QoS 1/2 messages it sends before waiting for acks): a batch
	// that holds that many is emitted at once, since no more can arrive.
	// 0: unknown or none.
	BrokerInflight int
	// Now is the wall clock (nil: time.Now); tests inject one.
	Now func() time.Time
}

// Ingest turns one source's messages into committed events and acks: it
// maps topics and parses payloads (Subscription), batches them into Emit
// calls, rate limits, tracks device counters and counts it all (Stats). A
// transport delivers messages to an Inlet and runs Work. New starts
// nothing.
type Ingest struct {
	cfg      Config // AckBatch resolved
	inflight int    // Options.BrokerInflight
	subs     []*sub
	log      *slog.Logger
	now      func() time.Time
	stats    counters
	counters deviceCounters
}

// New compiles cfg, which the caller has validated, into an Ingest.
func New(cfg *Config, o Options) (*Ingest, error) {
	in := &Ingest{cfg: *cfg, inflight: o.BrokerInflight, log: o.Logger, now: o.Now}
	if in.log == nil {
		in.log = slog.Default()
	}
	if in.now == nil {
		in.now = time.Now
	}
	if in.cfg.AckBatch == 0 {
		in.cfg.AckBatch = autoAckBatch(in.inflight, in.cfg.MaxPending)
	}
	for i, s := range cfg.Subscriptions {
		c, err := compileSub(s)
		if err != nil {
			return nil, fmt.Errorf("subscriptions[%d]: %w", i, err)
		}
		c.maxPayload = int(cfg.MaxPayload)
		if s.MaxPayload > 0 {
			c.maxPayload = int(s.MaxPayload)
		}
		rl := cfg.RateLimit
		if s.RateLimit != nil {
			rl = *s.RateLimit
		}
		c.limit = newLimiter(rl)
		in.subs = append(in.subs, c)
	}
	in.counters = newDeviceCounters(in.subs)
	return in, nil
}

// autoAckBatch is the batch size when ack_batch is not set: half the
// broker's in-flight window (the broker can send the next half while one
// is committed), at least 256 and at most maxPending.
func autoAckBatch(brokerInflight, maxPending int) int {
	return min(max(256, brokerInflight/2), maxPending)
}

// Filters returns the subscriptions' filters as the broker sees them (named
// wildcards stripped), with their QoS.
func (in *Ingest) Filters() map[string]byte {
	out := make(map[string]byte, len(in.subs))
	for _, s := range in.subs {
		out[s.pat.filter] = s.qos
	}
	return out
}

// FirstStream is the stream of the first subscription (the default stream
// of a transport's own reports).
func (in *Ingest) FirstStream() string {
	if len(in.subs) == 0 {
		return ""
	}
	return in.subs[0].stream
}

// item is a received message waiting for the batcher.
type item struct {
	msg  Message
	recv time.Time
	// refused: told its device it was not taken (the sink was full); not
	// acked.
	refused bool
}

// Inlet is the queue between a transport and one Work: MaxPending messages
// received and not yet taken by the batcher. Make one per run of the
// transport.
type Inlet struct {
	in    *Ingest
	queue chan item
	done  chan struct{}
}

// NewInlet returns an open Inlet.
func (in *Ingest) NewInlet() *Inlet {
	return &Inlet{in: in, queue: make(chan item, in.cfg.MaxPending), done: make(chan struct{})}
}

// Deliver stamps m with its receive time and queues it for the batcher, in
// the order of the calls; it blocks while MaxPending messages wait (the
// transport then stops reading). After Close it returns at once and m is
// never acked (the sender sends it again).
func (q *Inlet) Deliver(m Message) {
	st := &q.in.stats
	st.received.Add(1)
	st.pending.Add(1)
	if m.Dup {
		st.redelivered.Add(1)
	}
	select {
	case q.queue <- item{msg: m, recv: q.in.now()}:
	case <-q.done: // shutting down: not acked, the broker keeps it
		st.pending.Add(-1)
	}
}

// Close makes Deliver return at once. Call it after Work has returned.
func (q *Inlet) Close() { close(q.done) }
