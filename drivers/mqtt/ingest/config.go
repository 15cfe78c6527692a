package ingest

import (
	"time"

	"github.com/edgegw/gateway/units"
)

// Config is what both MQTT transports share: how a source's messages are
// batched, limited and mapped to events. drivers/mqtt and drivers/mqttbroker
// embed it inline in their own config, so its keys sit in the driver's
// section next to the transport's. Every field says its default.
type Config struct {
	// MaxPayload: larger payloads are quarantined (their first MaxPayload
	// bytes are kept). Default 64KiB, at most 512KiB.
	MaxPayload units.ByteSize `yaml:"max_payload"`
	// AckBatch is the most messages emitted as one batch (one commit) and
	// then acknowledged together. 0 (the default): half of the broker's
	// in-flight window (Options.BrokerInflight), at least 256 and at most
	// MaxPending, so that the broker keeps sending the next batch while one
	// is being committed.
	AckBatch int `yaml:"ack_batch"`
	// AckWindow is how long a batch may wait for more messages after its
	// first one. 0 emits whatever has arrived at once. Default 5ms.
	AckWindow units.Duration `yaml:"ack_window"`
	// RateLimit bounds the messages per second each source may turn into
	// events; excess messages are acknowledged and dropped, and the drops
	// reported (see RateLimit). A subscription may set its own. Default off.
	RateLimit RateLimit `yaml:"rate_limit"`
	// MaxPending is how many received messages may wait for the batcher;
	// beyond it the transport stops reading from the network. Default 4096.
	MaxPending int `yaml:"max_pending"`
	// DeviceTime bounds a plausible device timestamp.
	DeviceTime DeviceTimeConfig `yaml:"device_time"`
	// Subscriptions: at least one.
	Subscriptions []Subscription `yaml:"subscriptions"`
}

// DeviceTimeConfig: a device timestamp is used as the event time when it is
// no more than MaxPast before and MaxFuture after the receive time.
// Otherwise the event time is the receive time, attrs["device_time"] keeps
// the device's value and attrs["time_flag"] is "implausible" (or
// "unparseable" when it is not a time at all).
type DeviceTimeConfig struct {
	MaxPast   units.Duration `yaml:"max_past"`   // default 24h
	MaxFuture units.Duration `yaml:"max_future"` // default 24h
}

// Payload formats.
const (
	FormatJSON = "json"
	FormatCBOR = "cbor"
	FormatText = "text"
	FormatRaw  = "raw"
)

// Subscription maps one topic filter to events.
type Subscription struct {
	// Topic is an MQTT filter whose wildcards may be named: "+dock" matches
	// one level and stores it in attrs["dock"], a final "#rest" stores the
	// remaining levels in attrs["rest"]. The broker sees the filter with the
	// names stripped ("site/+/scanner/+"). Required.
	Topic string `yaml:"topic"`
	// QoS of the subscription: 0, 1 or 2. Default 1 (0 is at most once).
	QoS *int `yaml:"qos"`
	// Source of the events: fixed text or a template with {name} for named
	// wildcards and {topic} for the topic. Default "{topic}".
	Source string `yaml:"source"`
	// Stream the events go to. Default "scans" for kind scan, "telemetry"
	// for kind reading; required otherwise.
	Stream string `yaml:"stream"`
	// Kind of the events ("scan", "reading", ...). Required.
	Kind string `yaml:"kind"`
	// Format of the payloads: json, cbor, text or raw. Default json.
	Format string `yaml:"format"`
	// Fields maps payload fields to attributes (json and cbor formats).
	Fields FieldMap `yaml:"fields"`
	// KeepRaw stores the payload in the event's Raw. Default false (always
	// true for format raw).
	KeepRaw bool `yaml:"keep_raw"`
	// RateLimit of this subscription's sources, instead of the driver's
	// rate_limit ({events_per_second: 0} turns it off here). Default: the
	// driver's.
	RateLimit *RateLimit `yaml:"rate_limit"`
	// MaxPayload of this subscription's messages, at most the driver's
	// max_payload; larger payloads are quarantined. Default: the driver's.
	MaxPayload units.ByteSize `yaml:"max_payload"`
}

// FieldMap names the payload fields (a dotted path reaches into nested
// objects: "meta.ts"). Empty means the default name; "-" means none.
type FieldMap struct {
	Barcode   string `yaml:"barcode"`   // default "barcode"; required for kind scan
	Symbology string `yaml:"symbology"` // default "symbology"
	Time      string `yaml:"time"`      // default "time"
	Value     string `yaml:"value"`     // default "value"; required for kind reading
	Unit      string `yaml:"unit"`      // default "unit"
	Device    string `yaml:"device"`    // default "device"
	// TimeFormat of the time field: auto (RFC 3339 text, or epoch seconds,
	// ms, µs or ns chosen by magnitude), rfc3339, unix_s, unix_ms, unix_us
	// or unix_ns. Default auto.
	TimeFormat string `yaml:"time_format"`
	// Attrs lists further fields to keep as attributes, by the same name.
	// Objects and arrays are kept as JSON text.
	Attrs []string `yaml:"attrs"`
	// Counter names the field holding the device's own message counter (an
	// unsigned integer, +1 per message). Default none. When set, the value
	// goes into attrs["counter"], and a jump in a source's counter is
	// reported as one gap event (reason "device-counter") in the same
	// commit, just before the event that shows it; see deviceCounters for
	// restarts, redeliveries and wrap-around.
	Counter string `yaml:"counter"`
	// CounterBits is the width of the device's counter: 16, 32 or 64 (it
	// wraps to 0 after 2^bits-1). Default 32.
	CounterBits int `yaml:"counter_bits"`
}

// NewConfig returns a Config with every default set.
func NewConfig() *Config {
	c := &Config{}
	c.SetDefaults()
	return c
}

// SetDefaults sets every default of c (a transport's NewConfig calls it
// on the Config it embeds).
func (c *Config) SetDefaults() {
	c.MaxPayload = 64 * units.KiB
	c.AckBatch = 0
	c.AckWindow = units.Duration(5 * time.Millisecond)
	c.MaxPending = 4096
	c.DeviceTime = DeviceTimeConfig{MaxPast: units.Duration(24 * time.Hour), MaxFuture: units.Duration(24 * time.Hour)}
}

// Ingest returns c itself. A transport's config that embeds Config has the
// method too, so code that knows only this package can reach the shared
// part of any MQTT source's config (the "mqtt" driver hands its embedded
// broker settings on to the "mqtt-embedded" driver this way).
func (c *Config) Ingest() *Config { return c }

// Validate checks the config without I/O. It returns nil or units.Errors,
// one *units.FieldError per problem, its Path relative to the driver's
// section ("subscriptions[1].qos"; errors.As finds the first).
func (c *Config) Validate() error {
	var errs units.Errors
	c.Check(&errs)
	return errs.Err()
}

// Check adds c's problems to errs (a transport's Validate calls it after
// checking its own settings).
func (c *Config) Check(errs *units.Errors) {
	v := validator{errs: errs}
	c.validate(&v)
}

type validator struct{ errs *units.Errors }

func (v *validator) add(path, format string, args ...any) { v.errs.Add(path, format, args...) }
