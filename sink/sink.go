package sink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/prometheus/client_golang/prometheus"
)

// Options are the dependencies of a Sink.
type Options struct {
	// Logger receives the sink's logs (component=sink) and those of the
	// Pulsar and Cassandra drivers. Default slog.Default().
	Logger *slog.Logger
	// Registerer receives the edge_sink_* metrics and the Pulsar client's.
	// Default nil: not registered.
	Registerer prometheus.Registerer
	// Instance names this sink in logs and in the schema lock. Default
	// "<hostname>-<pid>".
	Instance string

	// dialer, when set, opens the Cassandra connections (fault tests).
	dialer gocql.Dialer
}

// Sink consumes the event topics and writes their rows to Cassandra. New
// starts nothing; Run does the work until its context ends.
type Sink struct {
	cfg      Config
	log      *slog.Logger
	reg      prometheus.Registerer
	instance string
	dialer   gocql.Dialer
	m        *metrics
	started  atomic.Bool
	phase    atomic.Value // string
	writer   atomic.Pointer[Writer]
	dlqWG    sync.WaitGroup
	dlqSem   chan struct{}
}

// maxDeadLetterInFlight bounds concurrent dead-letter publications.
const maxDeadLetterInFlight = 16

// unhealthyAfter is how long writes may fail in a row before /healthz says so.
const unhealthyAfter = 30 * time.Second

// New checks cfg and returns a Sink that has not started.
func New(cfg Config, o Options) (*Sink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Instance == "" {
		h, _ := os.Hostname()
		o.Instance = fmt.Sprintf("%s-%d", h, os.Getpid())
	}
	s := &Sink{
		cfg: cfg, log: o.Logger.With("component", "sink"), reg: o.Registerer, instance: o.Instance,
		dialer: o.dialer, m: newMetrics(o.Registerer), dlqSem: make(chan struct{}, maxDeadLetterInFlight),
	}
	s.phase.Store("not started")
	return s, nil
}

// Stats returns the counters so far.
func (s *Sink) Stats() Stats { return s.m.stats() }

// Health is nil while the sink is consuming and its writes succeed; else it
// says what the sink is doing or waiting for.
func (s *Sink) Health() error {
	p := s.phase.Load().(string)
	if p != "running" {
		return errors.New(p)
	}
	if w := s.writer.Load(); w != nil {
		if d := w.failingFor(time.Now()); d > unhealthyAfter {
			return fmt.Errorf("cassandra writes failing for %s", d.Round(time.Second))
		}
	}
	return nil
}

// Run connects to Cassandra (retrying until it answers), migrates the
// schema, subscribes to the event topics and writes until ctx ends. Then it
// stops receiving, lets in-flight writes finish (for at most
// write.drain_timeout), and closes everything. It returns nil after a clean
// stop, and an error only for a configuration the drivers refuse. Run may be
// called once.
func (s *Sink) Run(ctx context.Context) error {
	if !s.started.CompareAndSwap(false, true) {
		return errors.New("sink: Run called twice")
	}
	defer s.phase.Store("stopped")
	session, err := s.connect(ctx)
	if session == nil {
		return err
	}
	defer session.Close()
	preg := s.reg
	if preg == nil { // the client would register in the global registry
		preg = prometheus.NewRegistry()
	}
	client, err := pulsar.NewClient(s.cfg.Pulsar.clientOptions(s.log, preg))
	if err != nil {
		return fmt.Errorf("sink: pulsar client: %w", err)
	}
	defer client.Close()
	copts, err := s.cfg.Pulsar.consumerOptions()
	if err != nil {
		return err
	}
	s.phase.Store("creating the dead-letter producer")
	dlq, ok := retryUntil(ctx, s, "create dead-letter producer", func() (pulsar.Producer, error) {
		return client.CreateProducer(pulsar.ProducerOptions{
			Topic: s.cfg.Pulsar.DeadLetter(), SendTimeout: s.cfg.Pulsar.OperationTimeout.D(),
		})
	})
	if !ok {
		return nil
	}
	defer dlq.Close()
	s.phase.Store("subscribing")
	consumer, ok := retryUntil(ctx, s, "subscribe", func() (pulsar.Consumer, error) { return client.Subscribe(copts) })
	if !ok {
		return nil
	}
	defer consumer.Close()

	w := newWriter(session, s.cfg, s.m, s.log)
	s.writer.Store(w)
	s.phase.Store("running")
	s.log.Info("sink running", "topics", topicsDesc(copts), "subscription", copts.SubscriptionName,
		"type", s.cfg.Pulsar.SubscriptionType, "keyspace", s.cfg.Cassandra.Keyspace, "instance", s.instance)

	// Writes outlive ctx by at most the drain timeout.
	writeCtx, cancelWrites := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWrites()
	s.consume(ctx, writeCtx, consumer, dlq, w)

	s.phase.Store("stopping")
	s.drain(w, cancelWrites)
	if err := dlq.FlushWithCtx(writeCtx); err != nil && writeCtx.Err() == nil {
		s.log.Warn("flushing the dead-letter producer", "err", err)
	}
	st := s.Stats()
	s.log.Info("sink stopped", "consumed", st.Consumed, "acked", st.Acked, "rows", st.RowsWritten)
	return nil
}

// connect opens the session and migrates the schema, retrying both until
// they succeed; it returns a nil session when ctx ended first.
func (s *Sink) connect(ctx context.Context) (*gocql.Session, error) {
	s.phase.Store("connecting to cassandra")
	session, ok := retryUntil(ctx, s, "connect to cassandra", func() (*gocql.Session, error) {
		return connect(s.cfg.Cassandra, s.log, s.dialer)
	})
	if !ok {
		return nil, nil
	}
	s.phase.Store("migrating the schema")
	if _, ok := retryUntil(ctx, s, "migrate the schema", func() (struct{}, error) {
		return struct{}{}, Migrate(ctx, session, s.cfg.Cassandra, s.instance, s.log)
	}); !ok {
		session.Close()
		return nil, nil
	}
	return session, nil
}

// retryUntil calls f with backoff until it succeeds (ok) or ctx ends.
func retryUntil[T any](ctx context.Context, s *Sink, what string, f func() (T, error)) (T, bool) {
	bo := newBackoff(s.cfg.Retry)
	for attempt := 1; ; attempt++ {
		v, err := f()
		if err == nil {
			return v, true
		}
		if ctx.Err() != nil {
			return v, false
		}
		s.log.Warn("retrying", "what", what, "attempt", attempt, "err", err)
		if sleep(ctx, bo.Next()) != nil {
			return v, false
		}
	}
}

// drain waits for in-flight writes and dead-letter publications, cancelling
// them after the drain timeout.
func (s *Sink) drain(w *Writer, cancelWrites context.CancelFunc) {
	done := make(chan struct{})
	go func() {
		w.Wait()
		s.dlqWG.Wait() // after w.Wait: writers may still dead-letter
		close(done)
	}()
	t := time.NewTimer(s.cfg.Write.DrainTimeout.D())
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		s.log.Warn("drain timeout: abandoning in-flight writes; their messages will be redelivered",
			"timeout", s.cfg.Write.DrainTimeout)
		cancelWrites()
		<-done
	}
}

func topicsDesc(o pulsar.ConsumerOptions) any {
	if o.TopicsPattern != "" {
		return o.TopicsPattern
	}
	return o.Topics
}
