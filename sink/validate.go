package sink

import (
	"maps"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/edgegw/gateway/units"
)

var (
	nameRE     = regexp.MustCompile(`^[A-Za-z0-9_.\-]+$`)
	keyspaceRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,47}$`)
)

// Validate checks the configuration without doing any I/O. It returns nil
// or units.Errors, one *units.FieldError per invalid setting, its Path the
// key path in the file ("cassandra.replication.factor") and no line
// (LoadConfig finds the lines).
func (c *Config) Validate() error {
	var errs units.Errors
	c.Pulsar.validate(&errs)
	c.Cassandra.validate(&errs)
	w := c.Write
	if w.Concurrency < 1 || w.Concurrency > 4096 {
		errs.Add("write.concurrency", "must be in 1..4096, got %d", w.Concurrency)
	}
	if w.BatchRows < 1 || w.BatchRows > 1000 {
		errs.Add("write.batch_rows", "must be in 1..1000, got %d", w.BatchRows)
	}
	if w.BatchBytes < 1 {
		errs.Add("write.batch_bytes", "must be positive")
	}
	if w.Linger < 0 || w.Linger.D() > time.Second {
		errs.Add("write.linger", "must be in 0..1s, got %s", w.Linger)
	}
	if w.DrainTimeout < 0 {
		errs.Add("write.drain_timeout", "must not be negative")
	}
	r := c.Retry
	if r.Initial <= 0 {
		errs.Add("retry.initial", "must be positive")
	}
	if r.Max < r.Initial {
		errs.Add("retry.max", "must be at least retry.initial (%s)", r.Initial)
	}
	if r.Multiplier < 1 || r.Multiplier > 10 {
		errs.Add("retry.multiplier", "must be in 1..10, got %g", r.Multiplier)
	}
	if c.HTTP.Listen != "" {
		if _, _, err := net.SplitHostPort(c.HTTP.Listen); err != nil {
			errs.Add("http.listen", "want host:port: %v", err)
		}
	}
	return errs.Err()
}

func (p *PulsarConfig) validate(errs *units.Errors) {
	if !strings.HasPrefix(p.ServiceURL, "pulsar://") && !strings.HasPrefix(p.ServiceURL, "pulsar+ssl://") {
		errs.Add("pulsar.service_url", "want pulsar:// or pulsar+ssl://, got %q", p.ServiceURL)
	}
	if (p.TLS.CertFile == "") != (p.TLS.KeyFile == "") {
		errs.Add("pulsar.tls", "cert_file and key_file go together")
	}
	if !nameRE.MatchString(p.Tenant) {
		errs.Add("pulsar.tenant", "invalid name %q", p.Tenant)
	}
	if !nameRE.MatchString(p.Namespace) {
		errs.Add("pulsar.namespace", "invalid name %q", p.Namespace)
	}
	if p.Subscription == "" {
		errs.Add("pulsar.subscription", "required")
	}
	if p.SubscriptionType != SubKeyShared && p.SubscriptionType != SubFailover {
		errs.Add("pulsar.subscription_type", "want %q or %q, got %q", SubKeyShared, SubFailover, p.SubscriptionType)
	}
	if p.ReceiverQueueSize < 1 {
		errs.Add("pulsar.receiver_queue_size", "must be positive")
	}
	if p.OperationTimeout.D() < time.Second {
		errs.Add("pulsar.operation_timeout", "must be at least 1s")
	}
	if p.DeadLetterTopic != "" && !strings.Contains(p.DeadLetterTopic, "://") {
		errs.Add("pulsar.dead_letter_topic", "want a full topic name (persistent://tenant/namespace/name), got %q", p.DeadLetterTopic)
	}
	if p.Topics.DiscoveryInterval.D() < time.Second {
		errs.Add("pulsar.topics.discovery_interval", "must be at least 1s")
	}
	if len(p.Topics.Names) == 0 {
		if _, err := p.topicsPattern(); err != nil {
			errs.Add("pulsar.topics.pattern", "%v", err)
		}
	}
	dlq := p.DeadLetter()
	for i, n := range p.Topics.Names {
		if n == "" {
			errs.Add("pulsar.topics.names["+strconv.Itoa(i)+"]", "empty")
		} else if p.fullTopic(n) == dlq {
			errs.Add("pulsar.topics.names["+strconv.Itoa(i)+"]", "is the dead-letter topic")
		}
	}
}

func (c *CassandraConfig) validate(errs *units.Errors) {
	if len(c.Hosts) == 0 {
		errs.Add("cassandra.hosts", "at least one host required")
	}
	for i, h := range c.Hosts {
		if strings.TrimSpace(h) == "" {
			errs.Add("cassandra.hosts["+strconv.Itoa(i)+"]", "empty")
		}
	}
	if c.Port < 1 || c.Port > 65535 {
		errs.Add("cassandra.port", "must be in 1..65535, got %d", c.Port)
	}
	if !keyspaceRE.MatchString(c.Keyspace) {
		errs.Add("cassandra.keyspace", "want a letter then up to 47 letters, digits or _, got %q", c.Keyspace)
	}
	switch c.Replication.Class {
	case "SimpleStrategy":
		if c.Replication.Factor < 1 {
			errs.Add("cassandra.replication.factor", "must be positive")
		}
		if len(c.Replication.Datacenters) > 0 {
			errs.Add("cassandra.replication.datacenters", "only for NetworkTopologyStrategy")
		}
	case "NetworkTopologyStrategy":
		if len(c.Replication.Datacenters) == 0 {
			errs.Add("cassandra.replication.datacenters", "required for NetworkTopologyStrategy")
		}
		for _, dc := range slices.Sorted(maps.Keys(c.Replication.Datacenters)) {
			if f := c.Replication.Datacenters[dc]; !nameRE.MatchString(dc) || f < 1 {
				errs.Add("cassandra.replication.datacenters."+dc, "want a name and a positive factor")
			}
		}
	default:
		errs.Add("cassandra.replication.class", "want SimpleStrategy or NetworkTopologyStrategy, got %q", c.Replication.Class)
	}
	if cons, err := gocql.ParseConsistencyWrapper(c.Consistency); err != nil || cons == gocql.Serial || cons == gocql.LocalSerial {
		errs.Add("cassandra.consistency", "invalid consistency %q", c.Consistency)
	}
	if (c.Username == "") != (c.PasswordFile == "") {
		errs.Add("cassandra.password_file", "username and password_file go together")
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		errs.Add("cassandra.tls", "cert_file and key_file go together")
	}
	if c.Timeout.D() < 100*time.Millisecond {
		errs.Add("cassandra.timeout", "must be at least 100ms")
	}
	if c.ConnectTimeout.D() < 100*time.Millisecond {
		errs.Add("cassandra.connect_timeout", "must be at least 100ms")
	}
	if c.ReconnectInterval.D() < 100*time.Millisecond {
		errs.Add("cassandra.reconnect_interval", "must be at least 100ms")
	}
	for _, t := range []struct {
		path string
		d    units.Duration
	}{
		{"cassandra.ttl.events", c.TTL.Events}, {"cassandra.ttl.scans_by_barcode", c.TTL.ScansByBarcode},
		{"cassandra.ttl.readings", c.TTL.Readings}, {"cassandra.ttl.gaps", c.TTL.Gaps},
	} {
		path, d := t.path, t.d
		// Cassandra's TTL limit is 20 years and a whole number of seconds.
		if d < 0 || d.D() > 20*365*24*time.Hour || d.D()%time.Second != 0 {
			errs.Add(path, "must be whole seconds between 0 and 20 years, got %s", d)
		}
	}
}
