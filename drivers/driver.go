// Package drivers holds the registry of input drivers and the small
// interfaces they share. Each driver lives in a package of its own
// (drivers/mqtt, drivers/mqttbroker, drivers/gpio, drivers/i2c) and
// registers a constructor by name from init(). Drivers import neither the
// buffer nor the uplink: they hand readings to a Sink, which returns only
// once they are durable.
package drivers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/edgegw/gateway/event"
)

// ErrFull is returned by Sink.Emit when the stream refuses new events
// (reject-new policy and the stream is at its limit). The driver must not
// acknowledge its source and should pause before trying again.
var ErrFull = errors.New("drivers: stream full")

// Sink receives a driver's output. Emit returns only after the events are
// durably committed (the driver may then acknowledge its source). Emit fills
// in Gateway, Seq, Received (when zero), Boot and Mono; the driver sets
// Stream, Source, Kind, Time (zero means receive time), Attrs and Raw.
type Sink interface {
	Emit(ctx context.Context, evs []*event.Event) error
	// Quarantine durably records an input that could not be parsed.
	Quarantine(ctx context.Context, source string, payload []byte, reason string) error
}

// Driver is one running input. Run blocks until ctx is cancelled or the
// driver fails for good; it returns nil on cancellation.
type Driver interface {
	Run(ctx context.Context, sink Sink) error
}

// State is the gateway's view of itself, for drivers that signal it (a stack
// light when the uplink has been offline for a while, a buffer warning).
type State struct {
	// UplinkOnline: the uplink to Pulsar is connected.
	UplinkOnline bool
	// UplinkOfflineSince is when the uplink went down. Zero means unknown.
	UplinkOfflineSince time.Time
	// BufferFill is how full the buffer is, 0..1 (the fullest of the
	// streams' limits and the disk budget).
	BufferFill float64
}

// StateReceiver is implemented by drivers that want State updates. SetState
// must not block.
type StateReceiver interface{ SetState(State) }

// Readier is implemented by drivers that know whether their input is live
// (e.g. the MQTT driver is subscribed at its broker). The gateway is ready
// only when every such driver is.
type Readier interface{ Ready() bool }

// Env is what a constructor gets besides its own config.
type Env struct {
	Gateway string       // gateway ID
	Logger  *slog.Logger // already carries component=<driver name>
	// Inbox is the gateway's embedded MQTT broker when it runs one, else
	// nil. Sources whose config is an InboxUser take their input from it.
	Inbox Inbox
	// Store keeps the source's small state across restarts (nil: none).
	Store Store
}

// Store durably keeps a driver's small state (e.g. the last value of an
// upstream counter) across restarts of the driver and the gateway. Keys are
// private to the source. Put returns once the value is on disk; it costs a
// commit, so write on change, not per event.
type Store interface {
	Get(key string) ([]byte, error) // nil, nil when the key is not set
	Put(key string, val []byte) error
}

// Inbox is an in-process MQTT broker that makes the gateway the ingest
// point of its devices' publishes: a publish on an attached topic is handed
// to the attached source and not acknowledged to the device until the
// source calls Ack (after the commit that holds it), so custody passes at
// the device's own PUBACK.
type Inbox interface {
	// Attach hands every publish whose topic matches one of filters (MQTT
	// filters, '+' and '#' allowed) to deliver, in the order each device
	// sent them; deliver may block, which stops reading from that device.
	// A topic matched by several attachments goes to the first. detach
	// stops the delivery; publishes not acked by then are never acked (the
	// devices send them again).
	Attach(filters []string, deliver func(Publish)) (detach func(), err error)
}

// Publish is one publish a device sent to an Inbox.
type Publish struct {
	Client   string // the device's MQTT client ID
	Listener string // the broker listener it came through
	Topic    string
	Payload  []byte
	QoS      byte
	Dup      bool // the device says it may have sent this before
	Retain   bool
	// Ack acknowledges the publish to the device (PUBACK for QoS 1, PUBREC
	// for QoS 2; nothing for QoS 0). Call it once, after the commit.
	Ack func()
	// Refuse tells the device the publish was not taken, with an MQTT 5
	// reason code (e.g. 0x97 quota exceeded), and reports true. It reports
	// false, doing nothing, where the protocol has no refusal (MQTT 3.1.1,
	// QoS 0): the device then gets no ack and sends the message again later.
	// Call at most one of Ack and Refuse.
	Refuse func(reason byte) bool
}

// Factory builds a driver from its config. cfg is the value returned by the
// registration's NewConfig, decoded and validated.
type Factory func(cfg any, env Env) (Driver, error)

// Registration describes one driver kind.
type Registration struct {
	// NewConfig returns a pointer to the driver's config struct, with
	// defaults set. The config struct should implement Validator.
	NewConfig func() any
	New       Factory
}

// Validator is implemented by driver configs; Validate does no I/O.
type Validator interface{ Validate() error }

// InboxUser is implemented by the configs of drivers whose source may take
// its input from the gateway's embedded broker (Env.Inbox): the gateway
// refuses such a config without a broker, and starts the broker only once
// every such source is Ready. It asks the config, so that it treats all
// drivers alike and needs to know none of their settings.
type InboxUser interface {
	// UsesInbox reports whether the source takes its input from the
	// embedded broker and, if so, the setting that says so: a path
	// relative to the driver's section ("brokers"), or "" when the driver
	// always does; the config loader reports a missing broker there.
	UsesInbox() (setting string, uses bool)
}

var (
	mu       sync.RWMutex
	registry = map[string]Registration{}
)

// Register makes a driver kind available by name. It panics on a duplicate
// name, like database/sql.Register: that is a programming error.
func Register(name string, r Registration) {
	mu.Lock()
	defer mu.Unlock()
	if _, dup := registry[name]; dup {
		panic(fmt.Sprintf("drivers: Register called twice for %q", name))
	}
	registry[name] = r
}

// RegisterConfig registers a driver whose config is a *C: newConfig makes
// one with defaults set, and newDriver builds the driver from it. It is
// Register without each driver's own type assertion (the config the
// gateway passes to New is always the one newConfig made).
func RegisterConfig[C any](name string, newConfig func() *C, newDriver func(*C, Env) (Driver, error)) {
	Register(name, Registration{
		NewConfig: func() any { return newConfig() },
		New: func(cfg any, env Env) (Driver, error) {
			c, ok := cfg.(*C)
			if !ok {
				return nil, fmt.Errorf("%s: config is %T, want %T", name, cfg, c)
			}
			return newDriver(c, env)
		},
	})
}

// Lookup returns the registration for name.
func Lookup(name string) (Registration, bool) {
	mu.RLock()
	defer mu.RUnlock()
	r, ok := registry[name]
	return r, ok
}

// Names lists the registered driver kinds, sorted.
func Names() []string {
	mu.RLock()
	defer mu.RUnlock()
	out := make([]string, 0, len(registry))
	for n := range registry {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// MetricKind says how the gateway exports a Metric.
type MetricKind uint8

// The kinds of Metric.
const (
	// Counter is a total that only grows while the driver lives (the
	// gateway's rate() and increase() handle the restart of a new driver).
	// Its name ends in _total.
	Counter MetricKind = iota + 1
	// Gauge is a current value that may go up and down (a flag is 0 or 1).
	Gauge
)

func (k MetricKind) String() string {
	switch k {
	case Counter:
		return "counter"
	case Gauge:
		return "gauge"
	}
	return fmt.Sprintf("MetricKind(%d)", uint8(k))
}

// Metric is one value a driver (or the embedded broker) exports to the
// gateway's /metrics. A driver exports metrics by having a method
//
//	Metrics() []Metric
//
// which the gateway calls at every scrape. Its names are part of the
// product's interface (dashboards and alerts use them): each is spelled out
// literally where the method builds it, never derived from a Go name.
//
// The gateway reads a driver's metric set (names, help, kinds and label
// names) from its first call and registers it, with the label "source" (the
// config's sources[].name) added to every metric, so a later call must
// return the same names, each with the same Help, Kind and label names;
// only the values (and label values) may change. A metric split by a label
// is therefore listed for each known label value, zeros included, from the
// first call on.
type Metric struct {
	// Name is the full Prometheus name, e.g.
	// "edge_gateway_mqtt_received_total": [a-zA-Z_:][a-zA-Z0-9_:]*, a
	// counter's ending in _total, base units (seconds, bytes) in the name.
	Name string
	// Help is the one-line description shown with the metric.
	Help string
	Kind MetricKind
	// Labels split the metric along a dimension of the driver's own (e.g.
	// a reason); nil for most. "source" is reserved for the gateway.
	Labels []Label
	Value  float64
}

// Label is one label of a Metric.
type Label struct{ Name, Value string }

// Number is what a driver counts in.
type Number interface {
	~int | ~int64 | ~uint64 | ~float64
}

// CounterMetric is a Counter without labels.
func CounterMetric[N Number](name, help string, v N) Metric {
	return Metric{Name: name, Help: help, Kind: Counter, Value: float64(v)}
}

// GaugeMetric is a Gauge without labels.
func GaugeMetric[N Number](name, help string, v N) Metric {
	return Metric{Name: name, Help: help, Kind: Gauge, Value: float64(v)}
}
