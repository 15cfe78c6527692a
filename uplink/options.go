package uplink

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/edgegw/gateway/units"
)

// Options configure a Client. Start from DefaultOptions; every field says its
// default. Durations are human strings in YAML ("30s", "1h30m", "7d"), sizes
// too ("1MiB"); see package units.
type Options struct {
	// ServiceURL is the broker's binary protocol URL, pulsar://host:6650 or
	// pulsar+ssl://host:6651. Required.
	ServiceURL string `yaml:"service_url"`
	// AdminURL is the admin (HTTP) URL, used to check that deduplication is on.
	// Required when RequireDedup is true.
	AdminURL string `yaml:"admin_url"`
	// Tenant of the event topics. Default "public".
	Tenant string `yaml:"tenant"`
	// Namespace of the event topics. Default "default".
	Namespace string `yaml:"namespace"`
	// TopicPrefix: a stream's topic is
	// persistent://<tenant>/<namespace>/<prefix><stream>. Default "events-".
	TopicPrefix string `yaml:"topic_prefix"`
	// Compression of message payloads (of whole batches when batching): none,
	// lz4 or zstd. Default zstd.
	Compression string `yaml:"compression"`
	// BatchMaxMessages is the most events in one Pulsar batch (one broker
	// entry; consumers still get one message per event). 0 or 1 turns
	// batching off: one entry per event, as before. Default 1000.
	BatchMaxMessages int `yaml:"batch_max_messages"`
	// BatchMaxBytes is the most uncompressed payload bytes in one batch. 0
	// means the client's default (128KiB). Default 128KiB.
	BatchMaxBytes units.ByteSize `yaml:"batch_max_bytes"`
	// BatchLinger is how long a batch waits for more events before it is
	// sent (a full batch goes at once; a backlog drain fills batches without
	// waiting). It bounds the latency that batching adds. Default 10ms (a
	// LAN: at 1,000 ev/s about 10 events per batch). On a cellular link,
	// where bytes cost and latency matters less, 1s: at 100 ev/s about 100
	// events per batch, about 20 bytes per scan event with zstd.
	BatchLinger units.Duration `yaml:"batch_linger"`
	// SendTimeout: when the oldest in-flight message of a stream has had no
	// receipt for this long, the forwarder drops its producer and reconnects,
	// re-sending everything not yet acknowledged. Default 30s. (The client
	// library's own send timeout is disabled: see doc.go.)
	SendTimeout units.Duration `yaml:"send_timeout"`
	// OperationTimeout bounds producer creation, lookups and other requests.
	// Default 30s.
	OperationTimeout units.Duration `yaml:"operation_timeout"`
	// ConnectionTimeout bounds establishing a TCP (and TLS) connection.
	// Default 10s.
	ConnectionTimeout units.Duration `yaml:"connection_timeout"`
	// MaxPending is the most messages in flight (sent, no receipt yet) per
	// stream. Default 1000.
	MaxPending int `yaml:"max_pending"`

	// TLSCAFile is a PEM bundle of CAs to trust for the broker and admin API.
	// Default: the system roots.
	TLSCAFile string `yaml:"tls_ca_file"`
	// TLSCertFile and TLSKeyFile are a client certificate (mutual TLS). Both or
	// neither. Used for authentication when AuthTokenFile is empty.
	TLSCertFile string `yaml:"tls_cert_file"`
	TLSKeyFile  string `yaml:"tls_key_file"`
	// TLSAllowInsecure accepts any broker certificate. Default false.
	TLSAllowInsecure bool `yaml:"tls_allow_insecure"`
	// TLSValidateHostname checks the broker certificate's host name. Default
	// true. (The admin client always checks it unless TLSAllowInsecure.)
	TLSValidateHostname bool `yaml:"tls_validate_hostname"`

	// AuthTokenFile holds a JWT for token authentication. It is read when
	// connecting (and again on reconnects), never logged. Default: no token.
	AuthTokenFile string `yaml:"auth_token_file"`

	// BandwidthLimit caps the bytes per second sent by all streams of the
	// client together, as they go on the wire (each stream's payload scaled
	// by its measured ratio of wire bytes to payload: batching and
	// compression make an event cost a fraction of its payload);
	// higher-priority streams are served first. 0 (the default) means
	// unlimited, and then every stream drains concurrently.
	BandwidthLimit units.ByteSize `yaml:"bandwidth_limit"`

	// RequireDedup refuses to send unless broker deduplication is on for the
	// namespace (checked through AdminURL). Default true.
	RequireDedup bool `yaml:"require_dedup"`
}

// DefaultOptions returns the defaults documented on Options. ServiceURL and
// AdminURL have no default.
func DefaultOptions() Options {
	return Options{
		Tenant:              "public",
		Namespace:           "default",
		TopicPrefix:         "events-",
		Compression:         "zstd",
		BatchMaxMessages:    1000,
		BatchMaxBytes:       128 << 10,
		BatchLinger:         units.Duration(10 * time.Millisecond),
		SendTimeout:         units.Duration(30 * time.Second),
		OperationTimeout:    units.Duration(30 * time.Second),
		ConnectionTimeout:   units.Duration(10 * time.Second),
		MaxPending:          1000,
		TLSValidateHostname: true,
		RequireDedup:        true,
	}
}

// namePattern is what Pulsar accepts for tenant and namespace names; we use it
// for stream names and the topic prefix too.
var namePattern = regexp.MustCompile(`^[-=:.\w]+$`)

// MinBandwidth is the smallest non-zero BandwidthLimit.
const MinBandwidth = 1024

// Validate checks every field without I/O. It returns nil or units.Errors,
// one *units.FieldError per invalid field, its Path relative to the uplink
// section ("service_url"; the gateway's config loader puts "uplink." in
// front and finds the line).
func (o *Options) Validate() error {
	var errs units.Errors
	bad := errs.Add
	tls := false
	switch u, err := url.Parse(o.ServiceURL); {
	case o.ServiceURL == "":
		bad("service_url", "required (e.g. pulsar://broker:6650)")
	case err != nil:
		bad("service_url", "not a URL: %v", err)
	case u.Scheme != "pulsar" && u.Scheme != "pulsar+ssl":
		bad("service_url", "scheme must be pulsar:// or pulsar+ssl://, not %q", u.Scheme)
	case u.Host == "":
		bad("service_url", "no host in %q", o.ServiceURL)
	default:
		tls = u.Scheme == "pulsar+ssl"
	}
	switch u, err := url.Parse(o.AdminURL); {
	case o.AdminURL == "":
		if o.RequireDedup {
			bad("admin_url", "required when require_dedup is true (it is how deduplication is checked)")
		}
	case err != nil:
		bad("admin_url", "not a URL: %v", err)
	case u.Scheme != "http" && u.Scheme != "https":
		bad("admin_url", "scheme must be http:// or https://, not %q", u.Scheme)
	case u.Host == "":
		bad("admin_url", "no host in %q", o.AdminURL)
	}
	if !namePattern.MatchString(o.Tenant) {
		bad("tenant", "%q is not a valid tenant name (letters, digits, -_=:.)", o.Tenant)
	}
	if !namePattern.MatchString(o.Namespace) {
		bad("namespace", "%q is not a valid namespace name (letters, digits, -_=:.)", o.Namespace)
	}
	if o.TopicPrefix != "" && !namePattern.MatchString(o.TopicPrefix) {
		bad("topic_prefix", "%q may only hold letters, digits, -_=:.", o.TopicPrefix)
	}
	if _, err := compressionType(o.Compression); err != nil {
		bad("compression", "%v", err)
	}
	if o.BatchMaxMessages < 0 || o.BatchMaxMessages > 10000 {
		bad("batch_max_messages", "must be between 0 (batching off) and 10000, got %d", o.BatchMaxMessages)
	}
	if o.BatchMaxBytes < 0 || o.BatchMaxBytes > 4<<20 {
		bad("batch_max_bytes", "must be between 0 (the client's default, 128KiB) and 4MiB, got %d", o.BatchMaxBytes)
	}
	if o.BatchLinger < 0 || o.BatchLinger.D() > 10*time.Second {
		bad("batch_linger", "must be between 0 (the client's default, 10ms) and 10s, got %s", o.BatchLinger)
	}
	if o.Batching() && o.BatchLinger.D() >= o.SendTimeout.D() && o.SendTimeout > 0 {
		bad("batch_linger", "must be shorter than send_timeout (%s), got %s", o.SendTimeout, o.BatchLinger)
	}
	if o.SendTimeout <= 0 {
		bad("send_timeout", "must be positive, got %s", o.SendTimeout)
	}
	if o.OperationTimeout <= 0 {
		bad("operation_timeout", "must be positive, got %s", o.OperationTimeout)
	}
	if o.ConnectionTimeout <= 0 {
		bad("connection_timeout", "must be positive, got %s", o.ConnectionTimeout)
	}
	if o.MaxPending < 1 || o.MaxPending > 100000 {
		bad("max_pending", "must be between 1 and 100000, got %d", o.MaxPending)
	}
	if (o.TLSCertFile == "") != (o.TLSKeyFile == "") {
		bad("tls_cert_file", "tls_cert_file and tls_key_file go together")
	}
	if !tls && !strings.HasPrefix(o.AdminURL, "https:") && (o.TLSCAFile != "" || o.TLSCertFile != "" || o.TLSAllowInsecure) {
		bad("tls_ca_file", "TLS settings are set but neither service_url (pulsar+ssl://) nor admin_url (https://) uses TLS")
	}
	if o.BandwidthLimit < 0 || (o.BandwidthLimit > 0 && o.BandwidthLimit < MinBandwidth) {
		bad("bandwidth_limit", "must be 0 (unlimited) or at least %d bytes/s, got %d", MinBandwidth, o.BandwidthLimit)
	}
	return errs.Err()
}

// Batching tells whether events are sent in Pulsar batches.
func (o *Options) Batching() bool { return o.BatchMaxMessages > 1 }

// namespacePath returns "<tenant>/<namespace>".
func (o *Options) namespacePath() string { return o.Tenant + "/" + o.Namespace }

// Topic returns the topic of a stream.
func (o *Options) Topic(stream string) string {
	return "persistent://" + o.Tenant + "/" + o.Namespace + "/" + o.TopicPrefix + stream
}

func validStream(stream string) error {
	if !namePattern.MatchString(stream) {
		return fmt.Errorf("uplink: stream name %q may only hold letters, digits, '-', '_', '=', ':' and '.'", stream)
	}
	return nil
}

// producerName is the stable producer name of (gateway, stream): each part
// keeps [A-Za-z0-9._-] and escapes any other byte as %XX, so the name is
// injective and the '/' separator cannot occur inside a part.
func producerName(gateway, stream string) string {
	return escapeName(gateway) + "/" + escapeName(stream)
}

func escapeName(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}
