package sink

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/edgegw/gateway/units"
)

// Config is the whole sink configuration. Start from DefaultConfig, decode
// YAML over it with LoadConfig (unknown keys are errors), then Validate.
// Every field states its default.
type Config struct {
	Pulsar    PulsarConfig    `yaml:"pulsar"`
	Cassandra CassandraConfig `yaml:"cassandra"`
	Write     WriteConfig     `yaml:"write"`
	Retry     RetryConfig     `yaml:"retry"`
	HTTP      HTTPConfig      `yaml:"http"`
}

// PulsarConfig says where the events come from.
type PulsarConfig struct {
	// ServiceURL of the broker. Default "pulsar://127.0.0.1:6650"; use
	// "pulsar+ssl://" with TLS.
	ServiceURL string `yaml:"service_url"`
	// TLS settings for pulsar+ssl URLs. Default: system roots, hostname
	// verified.
	TLS PulsarTLS `yaml:"tls"`
	// TokenFile holds a JWT for token authentication, re-read on every
	// connection (so it can be rotated). Default "" (no authentication).
	TokenFile string `yaml:"token_file"`
	// Tenant and Namespace of the event topics. Defaults "public", "default".
	Tenant    string `yaml:"tenant"`
	Namespace string `yaml:"namespace"`
	// Topics selects the event topics of the namespace.
	Topics TopicsConfig `yaml:"topics"`
	// Subscription name, shared by all sink instances. Default "cassandra-sink".
	Subscription string `yaml:"subscription"`
	// SubscriptionType is "key_shared" (default) or "failover"; see doc.go.
	SubscriptionType string `yaml:"subscription_type"`
	// ReceiverQueueSize is how many messages the client prefetches per topic.
	// Default 1000.
	ReceiverQueueSize int `yaml:"receiver_queue_size"`
	// DeadLetterTopic receives undecodable messages. Default
	// "persistent://<tenant>/<namespace>/events-dlq".
	DeadLetterTopic string `yaml:"dead_letter_topic"`
	// OperationTimeout bounds lookups, subscribe and producer sends.
	// Default 30s.
	OperationTimeout units.Duration `yaml:"operation_timeout"`
}

// PulsarTLS configures TLS to the broker.
type PulsarTLS struct {
	// TrustCertsFile is a PEM bundle of trusted CAs. Default "" (system roots).
	TrustCertsFile string `yaml:"trust_certs_file"`
	// CertFile and KeyFile are a client certificate (mTLS). Default "".
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// AllowInsecure accepts untrusted broker certificates. Default false.
	AllowInsecure bool `yaml:"allow_insecure"`
	// SkipHostnameVerification turns off the hostname check. Default false.
	SkipHostnameVerification bool `yaml:"skip_hostname_verification"`
}

// TopicsConfig selects the event topics: either every topic of the namespace
// whose local name matches Pattern, or exactly the Names listed.
type TopicsConfig struct {
	// Pattern is an RE2 regular expression over the whole local topic name
	// (the part after "<tenant>/<namespace>/"). Default "events-.*". The
	// dead-letter topic is always excluded. Ignored when Names is set.
	Pattern string `yaml:"pattern"`
	// Names lists topics instead of a pattern: local names ("events-scans")
	// or full names ("persistent://t/ns/events-scans"). Default empty.
	Names []string `yaml:"names"`
	// DiscoveryInterval is how often the pattern is re-evaluated to pick up
	// new streams. Default 1m.
	DiscoveryInterval units.Duration `yaml:"discovery_interval"`
}

// CassandraConfig says where the rows go.
type CassandraConfig struct {
	// Hosts are contact points, "host" or "host:port". Default ["127.0.0.1"].
	Hosts []string `yaml:"hosts"`
	// Port for hosts given without one. Default 9042.
	Port int `yaml:"port"`
	// Keyspace holding the tables. Default "edge".
	Keyspace string `yaml:"keyspace"`
	// Replication used when the sink creates the keyspace (an existing
	// keyspace is never altered).
	Replication Replication `yaml:"replication"`
	// Consistency of writes and reads: any, one, local_one, quorum,
	// local_quorum, each_quorum, all. Default "local_quorum".
	Consistency string `yaml:"consistency"`
	// Username and PasswordFile enable password authentication. Default ""
	// (none). The file's content, trimmed, is the password; it is never logged.
	Username     string `yaml:"username"`
	PasswordFile string `yaml:"password_file"`
	// TLS to the nodes. Default off.
	TLS CassandraTLS `yaml:"tls"`
	// Timeout of one request. Default 10s.
	Timeout units.Duration `yaml:"timeout"`
	// ConnectTimeout of one connection attempt. Default 5s.
	ConnectTimeout units.Duration `yaml:"connect_timeout"`
	// ReconnectInterval is how often nodes seen down are retried. Default 2s.
	ReconnectInterval units.Duration `yaml:"reconnect_interval"`
	// TTL per table; 0 keeps rows forever.
	TTL TTLConfig `yaml:"ttl"`
}

// Replication of a keyspace the sink creates.
type Replication struct {
	// Class is "SimpleStrategy" (default) or "NetworkTopologyStrategy".
	Class string `yaml:"class"`
	// Factor is the replication factor of SimpleStrategy. Default 1.
	Factor int `yaml:"factor"`
	// Datacenters maps data-centre name to factor for NetworkTopologyStrategy.
	Datacenters map[string]int `yaml:"datacenters"`
}

// CassandraTLS configures TLS to the nodes.
type CassandraTLS struct {
	// Enabled turns TLS on. Default false.
	Enabled bool `yaml:"enabled"`
	// CAFile is a PEM bundle of trusted CAs. Default "" (system roots).
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are a client certificate. Default "".
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// VerifyHostname checks the node certificate's name. Default true.
	VerifyHostname bool `yaml:"verify_hostname"`
}

// TTLConfig is the time to live of the rows of each table.
type TTLConfig struct {
	// Events table. Default 90d.
	Events units.Duration `yaml:"events"`
	// ScansByBarcode table. Default 365d.
	ScansByBarcode units.Duration `yaml:"scans_by_barcode"`
	// Readings table. Default 90d.
	Readings units.Duration `yaml:"readings"`
	// Gaps table. Default 0 (forever).
	Gaps units.Duration `yaml:"gaps"`
}

// WriteConfig shapes the write pool.
type WriteConfig struct {
	// Concurrency is the number of Cassandra requests in flight at once. When
	// all are busy the sink stops receiving (back-pressure). Default 32.
	Concurrency int `yaml:"concurrency"`
	// BatchRows caps the rows of one unlogged single-partition batch.
	// Default 32.
	BatchRows int `yaml:"batch_rows"`
	// BatchBytes caps the estimated size of one batch; keep it under
	// Cassandra's batch_size_warn_threshold. Default 5KiB.
	BatchBytes units.ByteSize `yaml:"batch_bytes"`
	// Linger is how long the sink waits to fill a batch once it has one
	// message. Default 2ms.
	Linger units.Duration `yaml:"linger"`
	// DrainTimeout bounds how long a stopping sink keeps retrying in-flight
	// writes; what is not written by then is not acknowledged and is
	// redelivered. Default 30s.
	DrainTimeout units.Duration `yaml:"drain_timeout"`
}

// RetryConfig is the exponential backoff of failed writes and reconnects.
// Writes that fail for a transient reason are retried forever.
type RetryConfig struct {
	// Initial delay. Default 100ms.
	Initial units.Duration `yaml:"initial"`
	// Max delay. Default 10s.
	Max units.Duration `yaml:"max"`
	// Multiplier applied after each failure. Default 2.
	Multiplier float64 `yaml:"multiplier"`
}

// HTTPConfig is the operator endpoint (/metrics, /healthz).
type HTTPConfig struct {
	// Listen address. Default "127.0.0.1:9464" (loopback); "" turns it off.
	Listen string `yaml:"listen"`
}

// DefaultConfig returns the configuration with every default filled in.
func DefaultConfig() Config {
	return Config{
		Pulsar: PulsarConfig{
			ServiceURL:        "pulsar://127.0.0.1:6650",
			Tenant:            "public",
			Namespace:         "default",
			Topics:            TopicsConfig{Pattern: "events-.*", DiscoveryInterval: units.Duration(time.Minute)},
			Subscription:      "cassandra-sink",
			SubscriptionType:  SubKeyShared,
			ReceiverQueueSize: 1000,
			OperationTimeout:  units.Duration(30 * time.Second),
		},
		Cassandra: CassandraConfig{
			Hosts:             []string{"127.0.0.1"},
			Port:              9042,
			Keyspace:          "edge",
			Replication:       Replication{Class: "SimpleStrategy", Factor: 1},
			Consistency:       "local_quorum",
			TLS:               CassandraTLS{VerifyHostname: true},
			Timeout:           units.Duration(10 * time.Second),
			ConnectTimeout:    units.Duration(5 * time.Second),
			ReconnectInterval: units.Duration(2 * time.Second),
			TTL: TTLConfig{
				Events:         units.Duration(90 * 24 * time.Hour),
				ScansByBarcode: units.Duration(365 * 24 * time.Hour),
				Readings:       units.Duration(90 * 24 * time.Hour),
			},
		},
		Write: WriteConfig{
			Concurrency:  32,
			BatchRows:    32,
			BatchBytes:   5 << 10,
			Linger:       units.Duration(2 * time.Millisecond),
			DrainTimeout: units.Duration(30 * time.Second),
		},
		Retry: RetryConfig{
			Initial:    units.Duration(100 * time.Millisecond),
			Max:        units.Duration(10 * time.Second),
			Multiplier: 2,
		},
		HTTP: HTTPConfig{Listen: "127.0.0.1:9464"},
	}
}

// Subscription types.
const (
	SubKeyShared = "key_shared"
	SubFailover  = "failover"
)

// MaxConfigSize is the largest config file the sink reads: a bigger one is
// refused before it is parsed.
const MaxConfigSize = 4 << 20

// ErrConfigTooLarge is wrapped by the error for a config over MaxConfigSize.
var ErrConfigTooLarge = errors.New("config too large")

func configTooLarge(what string) error {
	return fmt.Errorf("%w: %s, the limit is 4 MiB (%d bytes)", ErrConfigTooLarge, what, MaxConfigSize)
}

// DecodeConfig reads YAML over the defaults. It does not validate. Its
// error is units.Errors: every unknown or repeated key and every value of
// the wrong type, each with its key path and line (or, for a document
// that is not YAML, the syntax error with its line). It reads at most
// MaxConfigSize+1 bytes of r: a longer input is refused unparsed.
func DecodeConfig(r io.Reader) (Config, error) {
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(io.LimitReader(r, MaxConfigSize+1)); err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	if buf.Len() > MaxConfigSize {
		return Config{}, configTooLarge(fmt.Sprintf("more than %d bytes", MaxConfigSize))
	}
	cfg, _, es, _ := decodeConfig(buf.Bytes())
	if len(es) > 0 {
		return Config{}, es
	}
	return cfg, nil
}

// decodeConfig decodes b over the defaults, strictly. es holds what the
// decoder refused; complete is false when it stopped early (a syntax
// error), true when it went on past the errors and cfg holds the rest.
func decodeConfig(b []byte) (cfg Config, root *yaml.Node, es units.Errors, complete bool) {
	cfg = DefaultConfig()
	root = new(yaml.Node)
	if err := yaml.Unmarshal(b, root); err != nil {
		return cfg, root, units.YAMLErrors(err, nil, ""), false
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	err := dec.Decode(&cfg)
	if err == nil || errors.Is(err, io.EOF) {
		return cfg, root, nil, true
	}
	var te *yaml.TypeError
	return cfg, root, units.YAMLErrors(err, root, ""), errors.As(err, &te)
}

// LoadConfig reads and validates the YAML file at path. A file over
// MaxConfigSize is refused without being read. Otherwise every problem is
// reported at once: unknown keys and values of the wrong type, then what
// Validate finds in the rest, in file order, each with its key path and
// line. The error is units.Errors (errors.As finds it) whose message has
// one line per problem: "FILE:LINE: PATH: MSG".
func LoadConfig(path string) (Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() && fi.Size() > MaxConfigSize {
		return Config{}, fmt.Errorf("%s: %w", path, configTooLarge(fmt.Sprintf("%d bytes", fi.Size())))
	}
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(io.LimitReader(f, MaxConfigSize+1)); err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	if buf.Len() > MaxConfigSize {
		return Config{}, fmt.Errorf("%s: %w", path, configTooLarge(fmt.Sprintf("more than %d bytes", MaxConfigSize)))
	}
	cfg, root, es, complete := decodeConfig(buf.Bytes())
	if complete {
		var ves units.Errors
		if errors.As(cfg.Validate(), &ves) {
			units.LocateAll(root, ves)
			es = append(es, units.Uncovered(ves, es)...)
		}
	}
	if len(es) > 0 {
		es.SortByLine()
		return Config{}, es.InFile(path)
	}
	return cfg, nil
}

// DeadLetter returns the dead-letter topic, resolving the default.
func (c *PulsarConfig) DeadLetter() string {
	if c.DeadLetterTopic != "" {
		return c.DeadLetterTopic
	}
	return fmt.Sprintf("persistent://%s/%s/events-dlq", c.Tenant, c.Namespace)
}
