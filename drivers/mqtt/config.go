package mqtt

import (
	"time"

	"github.com/edgegw/gateway/drivers/mqtt/ingest"
	"github.com/edgegw/gateway/units"
)

// Config is the driver's configuration, decoded from YAML (strictly, by the
// caller) into the value NewConfig returns. The settings of the connection
// to the broker are its own; what the site broker client shares with the
// embedded broker's source (subscriptions, payload mapping, batching, rate
// limits: ingest.Config) sits inline in the same section. Every field says
// its default.
type Config struct {
	// Brokers to connect to, tried in order: tcp://, mqtt://, ssl://,
	// tls://, mqtts://, ws:// or wss:// URLs. Required.
	// The single entry "embedded" means the gateway's own embedded broker
	// (the `broker:` section): the source is then the "mqtt-embedded"
	// driver's (drivers/mqttbroker), this spelling kept as an alias of it,
	// and the settings below that concern a connection are checked but not
	// used.
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
	// Password is for the runtime only; it cannot be set from YAML and wins
	// over PasswordFile.
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
	// BrokerInflight is the broker's in-flight window for this client (QoS
	// 1/2 messages it sends before waiting for acks: Mosquitto's
	// max_inflight_messages, default 20). A batch holding that many is
	// emitted at once, since no more can arrive. 0: unknown. Default 20.
	BrokerInflight int `yaml:"broker_inflight"`
	// BrokerDrops watches the site broker's count of messages it dropped
	// and reports each rise as a gap event (see BrokerDrops). Default on,
	// with Mosquitto's topic; off for the embedded broker.
	BrokerDrops BrokerDrops `yaml:"broker_drops"`

	// Config: max_payload, ack_batch, ack_window, rate_limit, max_pending,
	// device_time and subscriptions (see ingest.Config).
	ingest.Config `yaml:",inline"`
}

// TLSConfig names PEM files. Paths only: the files are read by New.
type TLSConfig struct {
	CAFile             string `yaml:"ca_file"`              // default: system roots
	CertFile           string `yaml:"cert_file"`            // client certificate, with KeyFile
	KeyFile            string `yaml:"key_file"`             // client key, with CertFile
	ServerName         string `yaml:"server_name"`          // default: the broker's host
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"` // default false; for tests only
}

// Embedded is the broker name that stands for the gateway's embedded broker.
const Embedded = "embedded"

// EmbeddedDriver is the driver that takes a source's input from the
// gateway's embedded broker (drivers/mqttbroker). The canonical spelling of
// such a source is `driver: mqtt-embedded`; `driver: mqtt` with
// `brokers: [embedded]` is an alias of it, kept for the configs that use
// it.
const EmbeddedDriver = "mqtt-embedded"

// The shared parts, under their old names in this package.
type (
	Subscription     = ingest.Subscription
	FieldMap         = ingest.FieldMap
	DeviceTimeConfig = ingest.DeviceTimeConfig
	RateLimit        = ingest.RateLimit
	Stats            = ingest.Stats
)

// Payload formats, event kinds and reasons of the shared parts, under their
// old names in this package.
const (
	FormatJSON        = ingest.FormatJSON
	FormatCBOR        = ingest.FormatCBOR
	FormatText        = ingest.FormatText
	FormatRaw         = ingest.FormatRaw
	KindDropped       = ingest.KindDropped
	ReasonRateLimited = ingest.ReasonRateLimited
	GapDeviceCounter  = ingest.GapDeviceCounter
)

// NewConfig returns a Config with every default set.
func NewConfig() *Config {
	c := &Config{
		KeepAlive:      units.Duration(30 * time.Second),
		ConnectTimeout: units.Duration(10 * time.Second),
		ReconnectMax:   units.Duration(time.Minute),
		BrokerInflight: 20,
		BrokerDrops:    BrokerDrops{Topic: MosquittoDropped, UptimeTopic: MosquittoUptime},
	}
	c.Config.SetDefaults()
	return c
}

// UsesInbox reports that a config whose broker is "embedded" takes its
// input from the gateway's embedded broker, the setting that says so being
// brokers (drivers.InboxUser).
func (c *Config) UsesInbox() (setting string, uses bool) {
	return "brokers", c.embedded()
}

func (c *Config) embedded() bool { return len(c.Brokers) == 1 && c.Brokers[0] == Embedded }

// Validate checks the config without I/O. It returns nil or units.Errors,
// one *units.FieldError per problem, its Path relative to the driver's
// section ("subscriptions[1].qos"; errors.As finds the first); the
// gateway's config loader puts the source's path in front and finds the
// line.
func (c *Config) Validate() error {
	var errs units.Errors
	c.validate(&errs)
	c.Config.Check(&errs)
	return errs.Err()
}
