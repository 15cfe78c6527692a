package mqttbroker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"

	"github.com/edgegw/gateway/drivers"
	"github.com/edgegw/gateway/drivers/mqtt/ingest"
)

// SourceDriver is the name the embedded broker's source registers under.
// It is the canonical spelling; `driver: mqtt` with `brokers: [embedded]`
// is an alias of it (drivers/mqtt hands such a config on to it).
const SourceDriver = "mqtt-embedded"

func init() {
	drivers.RegisterConfig(SourceDriver, NewSourceConfig, func(c *SourceConfig, env drivers.Env) (drivers.Driver, error) {
		return NewSource(c, env)
	})
}

// SourceConfig is the config of a source on the embedded broker: the
// subscriptions, payload mapping, batching and rate limits every MQTT
// source has (ingest.Config, inline). There is no connection to set up: the
// broker is the gateway's own (the config's broker: section).
//
// Example YAML:
//
//   - name: devices
//     driver: mqtt-embedded
//     mqtt-embedded:
//     subscriptions:
//   - {topic: site/+dock/scanner/+device, kind: scan, source: "{dock}-scanner"}
type SourceConfig struct {
	ingest.Config `yaml:",inline"`
}

// NewSourceConfig returns a SourceConfig with every default set.
func NewSourceConfig() *SourceConfig {
	c := &SourceConfig{}
	c.SetDefaults()
	return c
}

// UsesInbox reports that the source takes its input from the embedded
// broker, the whole section saying so (drivers.InboxUser).
func (c *SourceConfig) UsesInbox() (setting string, uses bool) { return "", true }

var _ drivers.InboxUser = (*SourceConfig)(nil)

// Source is an MQTT source on the embedded broker: it attaches its
// subscriptions' filters to the broker's inbox (drivers.Inbox), turns the
// devices' publishes into events, and acks each publish to its device only
// after the commit that holds it, so custody passes at the device's own
// PUBACK. There is no connection, session or client ID of its own. New
// starts nothing; Run runs it.
type Source struct {
	in      *ingest.Ingest
	inbox   drivers.Inbox
	log     *slog.Logger
	running atomic.Bool
	ready   atomic.Bool // attached
	// connects and subscribes count the attachments, as a site broker
	// client counts its connections and subscribe rounds (ingest.Link).
	connects, subscribes atomic.Uint64
}

var (
	_ drivers.Driver  = (*Source)(nil)
	_ drivers.Readier = (*Source)(nil)
)

// errNoInbox is what NewSource returns when the gateway runs no embedded
// broker (the config loader refuses such a config before).
var errNoInbox = errors.New(SourceDriver + ": the gateway runs no embedded broker (no broker: section)")

// NewSource validates cfg and returns a source on env.Inbox, ready to Run.
func NewSource(cfg *SourceConfig, env drivers.Env) (*Source, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%s: invalid config: %w", SourceDriver, err)
	}
	if env.Inbox == nil {
		return nil, errNoInbox
	}
	s := &Source{inbox: env.Inbox, log: env.Logger}
	if s.log == nil {
		s.log = slog.Default().With("component", SourceDriver)
	}
	// No broker in-flight window bounds a batch: the broker's max_inflight
	// holds each device's publishes until their acks.
	in, err := ingest.New(&cfg.Config, ingest.Options{Logger: s.log})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", SourceDriver, err)
	}
	s.in = in
	return s, nil
}

// Run attaches to the inbox and turns publishes into events until ctx
// ends; then it detaches and returns nil. Publishes not yet committed are
// never acked: their devices send them again. Run may be called again after
// it returned, but not concurrently.
func (s *Source) Run(ctx context.Context, sink drivers.Sink) error {
	if !s.running.CompareAndSwap(false, true) {
		return errors.New(SourceDriver + ": Run is already running")
	}
	defer s.running.Store(false)
	inlet := s.in.NewInlet()
	filters := s.in.Filters()
	list := make([]string, 0, len(filters))
	for f := range filters {
		list = append(list, f) // the QoS of a subscription does not apply: each publish is acked as its device asked
	}
	s.connects.Add(1)
	detach, err := s.inbox.Attach(list, func(p drivers.Publish) {
		inlet.Deliver(ingest.Message{Topic: p.Topic, Payload: p.Payload, QoS: p.QoS, Dup: p.Dup, Ack: p.Ack, Refuse: p.Refuse})
	})
	if err != nil {
		if ctx.Err() == nil {
			s.log.Error("subscribe failed", "err", err)
		}
	} else {
		s.subscribes.Add(1)
		s.ready.Store(true)
	}
	s.in.Work(ctx, inlet, sink)
	s.ready.Store(false)
	inlet.Close() // first: a delivery blocked on a full queue returns, unacked
	if detach != nil {
		detach() // devices with publishes not acked send them again
	}
	return nil
}

// Ready reports whether the source is attached to the inbox: only then is a
// device's publish on its topics taken into custody.
func (s *Source) Ready() bool { return s.ready.Load() }

// Stats returns a snapshot of the source's counters; safe at any time, also
// on a zero Source.
func (s *Source) Stats() ingest.Stats {
	st := s.in.Stats()
	st.Connects, st.Subscribes = s.connects.Load(), s.subscribes.Load()
	return st
}

// Metrics lists the source's metrics for the gateway's /metrics: the set
// every MQTT source exports (ingest.Metrics), so that a dashboard reads a
// source on the embedded broker as one on a site broker.
func (s *Source) Metrics() []drivers.Metric { return ingest.Metrics(s.Stats()) }
