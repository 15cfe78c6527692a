package sink

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/edgegw/gateway/units"
)

func TestDefaultConfigValid(t *testing.T) {
	c := DefaultConfig()
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	if got, want := c.Pulsar.DeadLetter(), "persistent://public/default/events-dlq"; got != want {
		t.Errorf("dead letter = %q, want %q", got, want)
	}
}

func TestExampleConfigLoads(t *testing.T) {
	c, err := LoadConfig("../configs/sink.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Pulsar.Subscription != "cassandra-sink" || c.Cassandra.Keyspace != "edge" {
		t.Errorf("unexpected example config: %+v", c)
	}
}

func TestDecodeConfig(t *testing.T) {
	c, err := DecodeConfig(strings.NewReader(`
pulsar:
  tenant: acme
  namespace: events
  topics:
    names: [events-scans, "persistent://acme/other/events-x"]
cassandra:
  hosts: ["10.0.0.1:9043"]
  ttl:
    events: 30d
    gaps: 0
write:
  batch_bytes: 16KiB
  linger: 5ms
`))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Cassandra.TTL.Events.D() != 30*24*time.Hour || c.Cassandra.TTL.Gaps != 0 {
		t.Errorf("ttl = %+v", c.Cassandra.TTL)
	}
	if c.Cassandra.TTL.Readings.D() != 90*24*time.Hour {
		t.Errorf("default readings ttl lost: %s", c.Cassandra.TTL.Readings)
	}
	if c.Write.BatchBytes != 16<<10 || c.Write.Linger.D() != 5*time.Millisecond {
		t.Errorf("write = %+v", c.Write)
	}
	if got := c.Pulsar.DeadLetter(); got != "persistent://acme/events/events-dlq" {
		t.Errorf("dead letter = %q", got)
	}
	o, err := c.Pulsar.consumerOptions()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"persistent://acme/events/events-scans", "persistent://acme/other/events-x"}
	if strings.Join(o.Topics, " ") != strings.Join(want, " ") || o.TopicsPattern != "" {
		t.Errorf("topics = %v pattern %q", o.Topics, o.TopicsPattern)
	}
}

func TestDecodeConfigRejectsUnknownKeys(t *testing.T) {
	_, err := DecodeConfig(strings.NewReader("pulsar:\n  tenant: a\n  tennant: b\n"))
	if err == nil || !strings.Contains(err.Error(), "line 3") || !strings.Contains(err.Error(), "tennant") {
		t.Fatalf("err = %v, want unknown field on line 3", err)
	}
	_, err = DecodeConfig(strings.NewReader("cassandra:\n  ttl:\n    events: 3 weeks\n"))
	if err == nil || !strings.Contains(err.Error(), "line 3") {
		t.Fatalf("err = %v, want a bad duration on line 3", err)
	}
}

func TestValidateFieldPaths(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Config)
		path string
	}{
		{"url", func(c *Config) { c.Pulsar.ServiceURL = "http://x" }, "pulsar.service_url"},
		{"tenant", func(c *Config) { c.Pulsar.Tenant = "a/b" }, "pulsar.tenant"},
		{"subtype", func(c *Config) { c.Pulsar.SubscriptionType = "shared" }, "pulsar.subscription_type"},
		{"subscription", func(c *Config) { c.Pulsar.Subscription = "" }, "pulsar.subscription"},
		{"pattern syntax", func(c *Config) { c.Pulsar.Topics.Pattern = "events-(" }, "pulsar.topics.pattern"},
		{"pattern matches dlq", func(c *Config) { c.Pulsar.Topics.Pattern = "events-(dlq|scans)" }, "pulsar.topics.pattern"},
		{"name is dlq", func(c *Config) { c.Pulsar.Topics.Names = []string{"events-a", "events-dlq"} }, "pulsar.topics.names[1]"},
		{"dlq short", func(c *Config) { c.Pulsar.DeadLetterTopic = "dlq" }, "pulsar.dead_letter_topic"},
		{"tls pair", func(c *Config) { c.Pulsar.TLS.CertFile = "c.pem" }, "pulsar.tls"},
		{"hosts", func(c *Config) { c.Cassandra.Hosts = nil }, "cassandra.hosts"},
		{"port", func(c *Config) { c.Cassandra.Port = 0 }, "cassandra.port"},
		{"keyspace", func(c *Config) { c.Cassandra.Keyspace = "edge-1" }, "cassandra.keyspace"},
		{"class", func(c *Config) { c.Cassandra.Replication.Class = "Local" }, "cassandra.replication.class"},
		{"factor", func(c *Config) { c.Cassandra.Replication.Factor = 0 }, "cassandra.replication.factor"},
		{"nts dcs", func(c *Config) { c.Cassandra.Replication.Class = "NetworkTopologyStrategy" }, "cassandra.replication.datacenters"},
		{"consistency", func(c *Config) { c.Cassandra.Consistency = "most" }, "cassandra.consistency"},
		{"serial", func(c *Config) { c.Cassandra.Consistency = "serial" }, "cassandra.consistency"},
		{"password", func(c *Config) { c.Cassandra.Username = "u" }, "cassandra.password_file"},
		{"ttl", func(c *Config) { c.Cassandra.TTL.Gaps = units.Duration(1500 * time.Millisecond) }, "cassandra.ttl.gaps"},
		{"concurrency", func(c *Config) { c.Write.Concurrency = 0 }, "write.concurrency"},
		{"batch rows", func(c *Config) { c.Write.BatchRows = 0 }, "write.batch_rows"},
		{"retry max", func(c *Config) { c.Retry.Max = units.Duration(time.Millisecond) }, "retry.max"},
		{"multiplier", func(c *Config) { c.Retry.Multiplier = 0.5 }, "retry.multiplier"},
		{"listen", func(c *Config) { c.HTTP.Listen = "9464" }, "http.listen"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.edit(&c)
			err := c.Validate()
			var fe *units.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("err = %v, want a *units.FieldError", err)
			}
			if fe.Path != tc.path || fe.Line != 0 {
				t.Fatalf("path = %q (%v), want %q", fe.Path, err, tc.path)
			}
		})
	}
}

// Durations and sizes take the syntax of every config of the project.
func TestUnitsYAML(t *testing.T) {
	c, err := DecodeConfig(strings.NewReader("cassandra:\n  ttl: {events: 7d, readings: 1d12h, gaps: 0}\nretry: {initial: 250ms, max: 1h30m}\nwrite: {batch_bytes: 4 MiB}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Cassandra.TTL.Events.D() != 7*24*time.Hour || c.Cassandra.TTL.Readings.D() != 36*time.Hour || c.Cassandra.TTL.Gaps != 0 ||
		c.Retry.Initial.D() != 250*time.Millisecond || c.Retry.Max.D() != 90*time.Minute || c.Write.BatchBytes != 4<<20 {
		t.Fatalf("decoded ttl %+v retry %+v batch_bytes %v", c.Cassandra.TTL, c.Retry, c.Write.BatchBytes)
	}
}

// LoadConfig reports unknown keys, values that do not decode and what
// Validate finds, all together, in file order, each with its line and path.
func TestLoadConfigReportsEverything(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sink.yaml")
	doc := `pulsar:
  tenantt: acme
  subscription_type: shared
cassandra:
  keyspace: edge-2
  ttl:
    events: 3 weeks
write:
  concurrency: 0
`
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := LoadConfig(path)
	var es units.Errors
	if !errors.As(err, &es) {
		t.Fatalf("err = %T %v, want units.Errors", err, err)
	}
	want := units.Errors{
		{Path: "pulsar.tenantt", Line: 2, Msg: `unknown field "tenantt"`},
		{Path: "pulsar.subscription_type", Line: 3, Msg: `want "key_shared" or "failover", got "shared"`},
		{Path: "cassandra.keyspace", Line: 5, Msg: `want a letter then up to 47 letters, digits or _, got "edge-2"`},
		{Path: "cassandra.ttl.events", Line: 7, Msg: `"3 weeks" is not a duration (use e.g. 500ms, 30s, 1h30m, 90d)`},
		{Path: "write.concurrency", Line: 9, Msg: "must be in 1..4096, got 0"},
	}
	if len(es) != len(want) {
		t.Fatalf("errors:\n%v\nwant:\n%v", es, want)
	}
	for i := range want {
		if *es[i] != *want[i] {
			t.Errorf("error %d = %+v, want %+v", i, *es[i], *want[i])
		}
	}
	if first := strings.SplitN(err.Error(), "\n", 2)[0]; first != path+`:2: pulsar.tenantt: unknown field "tenantt"` {
		t.Errorf("first line %q", first)
	}
	_, err = LoadConfig(writeFile(t, "pulsar: [\n"))
	if !errors.As(err, &es) || len(es) != 1 || es[0].Line == 0 {
		t.Fatalf("syntax error: %v", err)
	}
}

func writeFile(t *testing.T, doc string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// endless is an endless stream of spaces that counts what is read of it.
type endless struct{ n int64 }

func (r *endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = ' '
	}
	r.n += int64(len(p))
	return len(p), nil
}

// A config over 4 MiB is refused unparsed: DecodeConfig reads no more than
// MaxConfigSize+1 bytes, and LoadConfig refuses a larger file unread.
func TestConfigSizeBound(t *testing.T) {
	r := &endless{}
	if _, err := DecodeConfig(r); !errors.Is(err, ErrConfigTooLarge) {
		t.Fatalf("endless input: %v", err)
	}
	if r.n != MaxConfigSize+1 {
		t.Fatalf("read %d bytes, want %d", r.n, MaxConfigSize+1)
	}
	path := filepath.Join(t.TempDir(), "sink.yaml")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(5 << 20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err = LoadConfig(path)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrConfigTooLarge) || err.Error() != path+": config too large: 5242880 bytes, the limit is 4 MiB (4194304 bytes)" {
		t.Fatalf("LoadConfig: %v", err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 256<<10 {
		t.Fatalf("LoadConfig allocated %d bytes to refuse a 5 MiB file", alloc)
	}
}
