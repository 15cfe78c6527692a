package mqtt

import (
	"time"

	"github.com/edgegw/gateway/units"
)

// Config is the driver's configuration, decoded from YAML (strictly, by the
// caller) into the value NewConfig returns. Every field says its default.
type Config struct {
	// Brokers to connect to, tried in order: tcp://, mqtt://, ssl://,
	// tls://, mqtts://, ws:// or wss:// URLs. Required.
	// The single entry "embedded" means the gateway's own embedded broker
	// (the `broker:` section), reached over loopback with internal
	// credentials.
	Brokers []string `yaml:"brokers"`
	// ClientID is the fixed MQTT client ID the persistent session hangs on.
	// Default: "edgegw-<gateway ID>". Two drivers talking to one broker need
	// distinct IDs.
	ClientID string `yaml:"client_id"`
	// Username, if the broker wants one.
	Username string `yaml:"username"`
	// PasswordFile holds the password (trailing newlines are trimmed). The
	// password is never logged.
	PasswordFile string `yaml:"password_file"`
	// Password is for the runtime only (e.g. the embedded broker's internal
	// credentials); it cannot be set from YAML and wins over PasswordFile.
	Password string `yaml:"-"`
	// TLS settings for ssl:// and wss:// brokers. Default: system roots.
	TLS TLSConfig `yaml:"tls"`
	// KeepAlive is the MQTT keepalive. Default 30s.
	KeepAlive units.Duration `yaml:"keepalive"`
	// ConnectTimeout bounds one connection attempt. Default 10s.
	ConnectTimeout units.Duration `yaml:"connect_timeout"`
	// ReconnectMax is the longest wait between reconnection attempts (the
	// wait doubles from 1s up to it). Default 1m.
	ReconnectMax units.Duration `yaml:"reconnect_max"`
	// MaxPayload: larger payloads are quarantined (their first MaxPayload
	// bytes are kept). Default 64KiB, at most 512KiB.
	MaxPayload units.ByteSize `yaml:"max_payload"`
	// AckBatch is the most messages emitted as one batch (one commit) and
	// then acknowledged together. 0 (the default): half of BrokerInflight,
	// at least 256 and at most MaxPending, so that the broker keeps sending
	// the next batch while one is being committed.
	AckBatch int `yaml:"ack_batch"`
	// AckWindow is how long a batch may wait for more messages after its
	// first one. 0 emits whatever has arrived at once. Default 5ms.
	AckWindow units.Duration `yaml:"ack_window"`
	// BrokerInflight is the broker's in-flight window for this client (QoS
	// 1/2 messages it sends before waiting for acks: Mosquitto's
	// max_inflight_messages, default 20). A batch holding that many is
	// emitted at once, since no more can arrive. 0: unknown. Default 20.
	BrokerInflight int `yaml:"broker_inflight"`
	// RateLimit bounds the messages per second each source may turn into
	// events; excess messages are acknowledged and dropped, and the drops
	// reported (see RateLimit). A subscription may set its own. Default off.
	RateLimit RateLimit `yaml:"rate_limit"`
	// MaxPending is how many received messages may wait for the batcher;
	// beyond it the client stops reading from the network. Default 4096.
	MaxPending int `yaml:"max_pending"`
	// DeviceTime bounds a plausible device timestamp.
	DeviceTime DeviceTimeConfig `yaml:"device_time"`
	// BrokerDrops watches the site broker's count of messages it dropped
	// and reports each rise as a gap event (see BrokerDrops). Default on,
	// with Mosquitto's topic; off for the embedded broker.
	BrokerDrops BrokerDrops `yaml:"broker_drops"`
	// Subscriptions: at least one.
	Subscriptions []Subscription `yaml:"subscriptions"`
}

// TLSConfig names PEM files. Paths only: the files are read by New.
type TLSConfig struct {
	CAFile             string `yaml:"ca_file"`              // default: system roots
	CertFile           string `yaml:"cert_file"`            // client certificate, with KeyFile
	KeyFile            string `yaml:"key_file"`             // client key, with CertFile
	ServerName         string `yaml:"server_name"`          // default: the broker's host
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"` // default false; for tests only
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

// Embedded is the broker name that stands for the gateway's embedded broker.
const Embedded = "embedded"

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
	return &Config{
		KeepAlive:      units.Duration(30 * time.Second),
		ConnectTimeout: units.Duration(10 * time.Second),
		ReconnectMax:   units.Duration(time.Minute),
		MaxPayload:     64 * units.KiB,
		AckBatch:       0,
		AckWindow:      units.Duration(5 * time.Millisecond),
		BrokerInflight: 20,
		MaxPending:     4096,
		DeviceTime:     DeviceTimeConfig{MaxPast: units.Duration(24 * time.Hour), MaxFuture: units.Duration(24 * time.Hour)},
		BrokerDrops:    BrokerDrops{Topic: MosquittoDropped, UptimeTopic: MosquittoUptime},
	}
}

// Validate checks the config without I/O. It returns nil or units.Errors,
// one *units.FieldError per problem, its Path relative to the driver's
// section ("subscriptions[1].qos"; errors.As finds the first); the
// gateway's config loader puts the source's path in front and finds the
// line.
func (c *Config) Validate() error {
	var v validator
	c.validate(&v)
	return v.errs.Err()
}

type validator struct{ errs units.Errors }

func (v *validator) add(path, format string, args ...any) { v.errs.Add(path, format, args...) }
