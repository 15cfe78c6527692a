package uplink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"

	"github.com/edgegw/gateway/internal/backoff"
)

// Control is the control channel of the fleet: keyed messages on compacted
// topics of the uplink's tenant and namespace. Gateways read signed config
// from the config topic and publish heartbeats to the status topic; the
// operator CLI does the reverse. Both topics are meant to be compacted
// (`pulsar-admin topics compact`, or a namespace compaction threshold), but
// nothing depends on it: readers always start from the earliest message and
// keep the latest one per key.
//
// A Control has its own Pulsar client, built from the same Options as the
// forwarders' (service URL, TLS, token). NewControl connects nothing; Close
// is idempotent.
type Control struct {
	c   *Client
	log *slog.Logger

	// CatchUpWait bounds the wait for one message while catching up with a
	// topic: HasNext may claim a message that never comes (a compacted-away
	// tombstone at the end of the topic), and then the reader counts as
	// caught up after this long. Default 5s; set before use.
	CatchUpWait time.Duration

	pubMu    sync.Mutex // serialises Publish
	mu       sync.Mutex
	closed   bool
	status   map[string]pulsar.Producer // by topic, for Publish
	backoff0 time.Duration
}

// KeyedMessage is one message of a control topic.
type KeyedMessage struct {
	Key        string
	Payload    []byte
	Published  time.Time
	Properties map[string]string
}

// NewControl returns a control channel using opts (validated as by New;
// RequireDedup and the event topic settings play no part). logger may be
// nil.
func NewControl(opts Options, logger *slog.Logger) (*Control, error) {
	opts.RequireDedup = false
	if logger != nil {
		// The client library's debug output would print every heartbeat.
		logger = slog.New(minLevel{logger.Handler(), slog.LevelInfo})
	}
	c, err := New(opts, logger)
	if err != nil {
		return nil, err
	}
	return &Control{c: c, log: c.log, CatchUpWait: 5 * time.Second, status: map[string]pulsar.Producer{}, backoff0: 500 * time.Millisecond}, nil
}

// ControlTopic is the full name of control topic name ("config", "status")
// in the options' tenant and namespace.
func (o *Options) ControlTopic(name string) string {
	return "persistent://" + o.Tenant + "/" + o.Namespace + "/" + name
}

// Topic is the full name of control topic name.
func (c *Control) Topic(name string) string { return c.c.opts.ControlTopic(name) }

// Close closes the producers and the client. It is idempotent.
func (c *Control) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	prods := c.status
	c.status = nil
	c.mu.Unlock()
	for _, p := range prods {
		p.Close()
	}
	c.c.Close()
}

func (c *Control) reader(ctx context.Context, topic string) (pulsar.Reader, error) {
	pc, err := c.c.pulsarClient()
	if err != nil {
		return nil, err
	}
	r, err := whileCtx(ctx, func() (pulsar.Reader, error) {
		return pc.CreateReader(pulsar.ReaderOptions{
			Topic:          topic,
			StartMessageID: pulsar.EarliestMessageID(),
			ReadCompacted:  true,
		})
	}, pulsar.Reader.Close)
	if err != nil {
		return nil, fmt.Errorf("uplink: reader on %s: %w", topic, err)
	}
	return r, nil
}

// whileCtx runs create, which the client library does not let ctx cancel
// (it waits up to the operation timeout), and returns early when ctx ends;
// what create makes after that is closed with release.
func whileCtx[T any](ctx context.Context, create func() (T, error), release func(T)) (T, error) {
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() {
		v, err := create()
		ch <- result{v, err}
	}()
	select {
	case r := <-ch:
		return r.v, r.err
	case <-ctx.Done():
		go func() {
			if r := <-ch; r.err == nil {
				release(r.v)
			}
		}()
		var zero T
		return zero, ctx.Err()
	}
}

// catchUp reads r up to the end of the topic as of now, calling fn for each
// message in order.
func (c *Control) catchUp(ctx context.Context, r pulsar.Reader, fn func(KeyedMessage)) error {
	for r.HasNext() {
		wctx, cancel := context.WithTimeout(ctx, c.CatchUpWait)
		m, err := r.Next(wctx)
		cancel()
		if err != nil {
			if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
				c.log.Debug("control topic: HasNext promised a message that did not come; counting as caught up", "topic", r.Topic())
				return nil
			}
			return err
		}
		fn(keyed(m))
	}
	return ctx.Err()
}

func keyed(m pulsar.Message) KeyedMessage {
	return KeyedMessage{Key: m.Key(), Payload: m.Payload(), Published: m.PublishTime(), Properties: m.Properties()}
}

// Read reads topic from its earliest message to its end as of the call and
// returns every message in order (of a compacted topic: the latest one per
// key, then whatever came after the compaction horizon).
func (c *Control) Read(ctx context.Context, topic string) ([]KeyedMessage, error) {
	r, err := c.reader(ctx, topic)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var out []KeyedMessage
	err = c.catchUp(ctx, r, func(m KeyedMessage) { out = append(out, m) })
	return out, err
}

// Latest is Read reduced to the latest message per key. An empty payload (a
// tombstone) deletes its key; messages without key are ignored. (Note that
// pulsar-client-go v0.21 drops empty messages before the application sees
// them, pulsar-client-go PR 1482: a tombstone takes effect for Go readers
// only once compaction has removed its key. Nothing here publishes
// tombstones.)
func Latest(msgs []KeyedMessage) map[string]KeyedMessage {
	out := map[string]KeyedMessage{}
	for _, m := range msgs {
		addLatest(out, m)
	}
	return out
}

func addLatest(latest map[string]KeyedMessage, m KeyedMessage) {
	switch {
	case m.Key == "":
	case len(m.Payload) == 0:
		delete(latest, m.Key)
	default:
		latest[m.Key] = m
	}
}

// Watch follows topic until ctx ends: it reads from the earliest message,
// keeping the latest message of each key that keep accepts (nil keeps all),
// calls fn with that map once caught up with the topic, and again after each
// new message for a kept key. fn gets a map of its own and runs on Watch's
// goroutine; while it runs, new messages wait. When the reader fails, Watch
// starts over after a backoff (and so calls fn again with the whole map).
// It returns ctx's error.
func (c *Control) Watch(ctx context.Context, topic string, keep func(key string) bool, fn func(latest map[string]KeyedMessage)) error {
	bo := backoff.Backoff{Min: c.backoff0, Max: 30 * time.Second, Jitter: [2]float64{0.5, 1}}
	for {
		caughtUp, err := c.watchOnce(ctx, topic, keep, fn)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if caughtUp {
			bo.Reset()
		}
		wait := bo.Next()
		c.log.Warn("control topic reader failed; retrying", "topic", topic, "err", err, "in", wait)
		if !backoff.Sleep(ctx, wait) {
			return ctx.Err()
		}
	}
}

func (c *Control) watchOnce(ctx context.Context, topic string, keep func(string) bool, fn func(map[string]KeyedMessage)) (caughtUp bool, err error) {
	r, err := c.reader(ctx, topic)
	if err != nil {
		return false, err
	}
	defer r.Close()
	latest := map[string]KeyedMessage{}
	add := func(m KeyedMessage) bool {
		if keep != nil && !keep(m.Key) {
			return false
		}
		addLatest(latest, m)
		return true
	}
	if err := c.catchUp(ctx, r, func(m KeyedMessage) { add(m) }); err != nil {
		return false, err
	}
	fn(copyLatest(latest))
	for {
		m, err := r.Next(ctx)
		if err != nil {
			return true, err
		}
		if add(keyed(m)) {
			fn(copyLatest(latest))
		}
	}
}

func copyLatest(m map[string]KeyedMessage) map[string]KeyedMessage {
	out := make(map[string]KeyedMessage, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// Compact asks the broker to compact topic (the admin API's
// `topics compact`); it needs Options.AdminURL. Compaction runs in the
// background on the broker; readers see its result once it is done.
func (c *Control) Compact(topic string) error {
	if c.c.opts.AdminURL == "" {
		return errors.New("uplink: compaction needs the admin URL")
	}
	adm, err := c.c.adminClient()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), max(c.c.opts.OperationTimeout.D(), time.Second))
	defer cancel()
	return adm.compact(ctx, topic)
}

// minLevel drops records below a level.
type minLevel struct {
	slog.Handler
	min slog.Level
}

func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h minLevel) WithAttrs(as []slog.Attr) slog.Handler {
	return minLevel{h.Handler.WithAttrs(as), h.min}
}
func (h minLevel) WithGroup(g string) slog.Handler { return minLevel{h.Handler.WithGroup(g), h.min} }
