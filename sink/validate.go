package sink

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
)

// FieldError is one invalid setting, named by its YAML path.
type FieldError struct {
	Path string // e.g. "cassandra.replication.factor"
	Msg  string
}

func (e *FieldError) Error() string { return e.Path + ": " + e.Msg }

type fieldErrs []error

func (f *fieldErrs) add(path, format string, args ...any) {
	*f = append(*f, &FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
}

var (
	nameRE     = regexp.MustCompile(`^[A-Za-z0-9_.\-]+$`)
	keyspaceRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,47}$`)
)

// Validate checks the configuration without doing any I/O. The error joins
// one *FieldError per invalid setting.
func (c *Config) Validate() error {
	var errs fieldErrs
	c.Pulsar.validate(&errs)
	c.Cassandra.validate(&errs)
	w := c.Write
	if w.Concurrency < 1 || w.Concurrency > 4096 {
		errs.add("write.concurrency", "must be in 1..4096, got %d", w.Concurrency)
	}
	if w.BatchRows < 1 || w.BatchRows > 1000 {
		errs.add("write.batch_rows", "must be in 1..1000, got %d", w.BatchRows)
	}
	if w.BatchBytes < 1 {
		errs.add("write.batch_bytes", "must be positive")
	}
	if w.Linger < 0 || w.Linger.D() > time.Second {
		errs.add("write.linger", "must be in 0..1s, got %s", w.Linger)
	}
	if w.DrainTimeout < 0 {
		errs.add("write.drain_timeout", "must not be negative")
	}
	r := c.Retry
	if r.Initial <= 0 {
		errs.add("retry.initial", "must be positive")
	}
	if r.Max < r.Initial {
		errs.add("retry.max", "must be at least retry.initial (%s)", r.Initial)
	}
	if r.Multiplier < 1 || r.Multiplier > 10 {
		errs.add("retry.multiplier", "must be in 1..10, got %g", r.Multiplier)
	}
	if c.HTTP.Listen != "" {
		if _, _, err := net.SplitHostPort(c.HTTP.Listen); err != nil {
			errs.add("http.listen", "want host:port: %v", err)
		}
	}
	return errors.Join(errs...)
}

func (p *PulsarConfig) validate(errs *fieldErrs) {
	if !strings.HasPrefix(p.ServiceURL, "pulsar://") && !strings.HasPrefix(p.ServiceURL, "pulsar+ssl://") {
		errs.add("pulsar.service_url", "want pulsar:// or pulsar+ssl://, got %q", p.ServiceURL)
	}
	if (p.TLS.CertFile == "") != (p.TLS.KeyFile == "") {
		errs.add("pulsar.tls", "cert_file and key_file go together")
	}
	if !nameRE.MatchString(p.Tenant) {
		errs.add("pulsar.tenant", "invalid name %q", p.Tenant)
	}
	if !nameRE.MatchString(p.Namespace) {
		errs.add("pulsar.namespace", "invalid name %q", p.Namespace)
	}
	if p.Subscription == "" {
		errs.add("pulsar.subscription", "required")
	}
	if p.SubscriptionType != SubKeyShared && p.SubscriptionType != SubFailover {
		errs.add("pulsar.subscription_type", "want %q or %q, got %q", SubKeyShared, SubFailover, p.SubscriptionType)
	}
	if p.ReceiverQueueSize < 1 {
		errs.add("pulsar.receiver_queue_size", "must be positive")
	}
	if p.OperationTimeout.D() < time.Second {
		errs.add("pulsar.operation_timeout", "must be at least 1s")
	}
	if p.DeadLetterTopic != "" && !strings.Contains(p.DeadLetterTopic, "://") {
		errs.add("pulsar.dead_letter_topic", "want a full topic name (persistent://tenant/namespace/name), got %q", p.DeadLetterTopic)
	}
	if p.Topics.DiscoveryInterval.D() < time.Second {
		errs.add("pulsar.topics.discovery_interval", "must be at least 1s")
	}
	if len(p.Topics.Names) == 0 {
		if _, err := p.topicsPattern(); err != nil {
			errs.add("pulsar.topics.pattern", "%v", err)
		}
	}
	dlq := p.DeadLetter()
	for i, n := range p.Topics.Names {
		if n == "" {
			errs.add("pulsar.topics.names["+strconv.Itoa(i)+"]", "empty")
		} else if p.fullTopic(n) == dlq {
			errs.add("pulsar.topics.names["+strconv.Itoa(i)+"]", "is the dead-letter topic")
		}
	}
}

func (c *CassandraConfig) validate(errs *fieldErrs) {
	if len(c.Hosts) == 0 {
		errs.add("cassandra.hosts", "at least one host required")
	}
	for i, h := range c.Hosts {
		if strings.TrimSpace(h) == "" {
			errs.add("cassandra.hosts["+strconv.Itoa(i)+"]", "empty")
		}
	}
	if c.Port < 1 || c.Port > 65535 {
		errs.add("cassandra.port", "must be in 1..65535, got %d", c.Port)
	}
	if !keyspaceRE.MatchString(c.Keyspace) {
		errs.add("cassandra.keyspace", "want a letter then up to 47 letters, digits or _, got %q", c.Keyspace)
	}
	switch c.Replication.Class {
	case "SimpleStrategy":
		if c.Replication.Factor < 1 {
			errs.add("cassandra.replication.factor", "must be positive")
		}
		if len(c.Replication.Datacenters) > 0 {
			errs.add("cassandra.replication.datacenters", "only for NetworkTopologyStrategy")
		}
	case "NetworkTopologyStrategy":
		if len(c.Replication.Datacenters) == 0 {
			errs.add("cassandra.replication.datacenters", "required for NetworkTopologyStrategy")
		}
		for _, dc := range slices.Sorted(maps.Keys(c.Replication.Datacenters)) {
			if f := c.Replication.Datacenters[dc]; !nameRE.MatchString(dc) || f < 1 {
				errs.add("cassandra.replication.datacenters."+dc, "want a name and a positive factor")
			}
		}
	default:
		errs.add("cassandra.replication.class", "want SimpleStrategy or NetworkTopologyStrategy, got %q", c.Replication.Class)
	}
	if cons, err := gocql.ParseConsistencyWrapper(c.Consistency); err != nil || cons == gocql.Serial || cons == gocql.LocalSerial {
		errs.add("cassandra.consistency", "invalid consistency %q", c.Consistency)
	}
	if (c.Username == "") != (c.PasswordFile == "") {
		errs.add("cassandra.password_file", "username and password_file go together")
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		errs.add("cassandra.tls", "cert_file and key_file go together")
	}
	if c.Timeout.D() < 100*time.Millisecond {
		errs.add("cassandra.timeout", "must be at least 100ms")
	}
	if c.ConnectTimeout.D() < 100*time.Millisecond {
		errs.add("cassandra.connect_timeout", "must be at least 100ms")
	}
	if c.ReconnectInterval.D() < 100*time.Millisecond {
		errs.add("cassandra.reconnect_interval", "must be at least 100ms")
	}
	for _, t := range []struct {
		path string
		d    Duration
	}{
		{"cassandra.ttl.events", c.TTL.Events}, {"cassandra.ttl.scans_by_barcode", c.TTL.ScansByBarcode},
		{"cassandra.ttl.readings", c.TTL.Readings}, {"cassandra.ttl.gaps", c.TTL.Gaps},
	} {
		path, d := t.path, t.d
		// Cassandra's TTL limit is 20 years and a whole number of seconds.
		if d < 0 || d.D() > 20*365*24*time.Hour || d.D()%time.Second != 0 {
			errs.add(path, "must be whole seconds between 0 and 20 years, got %s", d)
		}
	}
}
