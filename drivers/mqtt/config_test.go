package mqtt

import (
	"errors"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

const exampleYAML = `
brokers: [tcp://127.0.0.1:1883, ssl://broker.example:8883]
client_id: edgegw-dock7
username: gateway
password_file: secret/mqtt.pass
tls: {ca_file: ca.pem}
keepalive: 20s
ack_batch: 128
ack_window: 2ms
broker_inflight: 1000
max_payload: 32KiB
device_time: {max_past: 12h, max_future: 1h}
subscriptions:
  - topic: site/+dock/scanner/+device
    qos: 1
    kind: scan
    source: "{dock}-scanner"
    fields: {barcode: code, symbology: sym, time: ts, time_format: unix_ms, attrs: [battery, meta.fw]}
    keep_raw: true
  - topic: site/+dock/temp
    qos: 0
    kind: reading
    format: text
`

func decodeStrict(t *testing.T, doc string) (*Config, error) {
	t.Helper()
	c := NewConfig()
	dec := yaml.NewDecoder(strings.NewReader(doc))
	dec.KnownFields(true)
	return c, dec.Decode(c)
}

func TestConfigYAML(t *testing.T) {
	c, err := decodeStrict(t, exampleYAML)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.MaxPayload != 32*KiB || c.AckWindow != 2*time.Millisecond || c.ReconnectMax != time.Minute ||
		*c.Subscriptions[1].QoS != 0 || c.Subscriptions[0].Fields.Attrs[1] != "meta.fw" || c.DeviceTime.MaxPast != 12*time.Hour {
		t.Fatalf("decoded %+v", c)
	}
	if _, err := decodeStrict(t, "brokers: [tcp://a:1]\npassword: x\n"); err == nil {
		t.Fatal("password accepted from YAML")
	}
	if _, err := decodeStrict(t, "max_payload: lots\n"); err == nil {
		t.Fatal("bad byte size accepted")
	}
}

func validConfig() *Config {
	c := NewConfig()
	c.Brokers = []string{"tcp://127.0.0.1:1883"}
	c.Subscriptions = []Subscription{{Topic: "a/+x", Kind: "scan"}}
	return c
}

func TestValidate(t *testing.T) {
	qos := func(n int) *int { return &n }
	for _, tc := range []struct {
		path string
		mod  func(c *Config)
	}{
		{"brokers", func(c *Config) { c.Brokers = nil }},
		{"brokers[0]", func(c *Config) { c.Brokers = []string{"http://x:1"} }},
		{"brokers[0]", func(c *Config) { c.Brokers = []string{"tcp://"} }},
		{"brokers[0]", func(c *Config) { c.Brokers = []string{"tcp://u:p@x:1"} }},
		{"tls", func(c *Config) { c.TLS.CertFile = "c.pem" }},
		{"keepalive", func(c *Config) { c.KeepAlive = 0 }},
		{"ack_window", func(c *Config) { c.AckWindow = 2 * time.Second }},
		{"ack_batch", func(c *Config) { c.AckBatch = -1 }},
		{"max_payload", func(c *Config) { c.MaxPayload = MiB }},
		{"max_pending", func(c *Config) { c.AckBatch, c.MaxPending = 256, 10 }},
		{"broker_inflight", func(c *Config) { c.BrokerInflight = -1 }},
		{"device_time.max_past", func(c *Config) { c.DeviceTime.MaxPast = -time.Second }},
		{"subscriptions", func(c *Config) { c.Subscriptions = nil }},
		{"subscriptions[1].qos", func(c *Config) {
			c.Subscriptions = append(c.Subscriptions, Subscription{Topic: "b", Kind: "scan", QoS: qos(3)})
		}},
		{"subscriptions[0].topic", func(c *Config) { c.Subscriptions[0].Topic = "a/#x/b" }},
		{"subscriptions[1].topic", func(c *Config) {
			c.Subscriptions = append(c.Subscriptions, Subscription{Topic: "a/+y", Kind: "scan"})
		}},
		{"subscriptions[0].topic", func(c *Config) { c.Subscriptions[0].Topic = "a/+barcode" }},
		{"subscriptions[0].kind", func(c *Config) { c.Subscriptions[0].Kind = "" }},
		{"subscriptions[0].stream", func(c *Config) { c.Subscriptions[0].Kind = "door" }},
		{"subscriptions[0].format", func(c *Config) { c.Subscriptions[0].Format = "xml" }},
		{"subscriptions[0].source", func(c *Config) { c.Subscriptions[0].Source = "{y}" }},
		{"subscriptions[0].fields", func(c *Config) {
			c.Subscriptions[0].Format = "text"
			c.Subscriptions[0].Fields.Barcode = "code"
		}},
		{"subscriptions[0].fields.barcode", func(c *Config) { c.Subscriptions[0].Fields.Barcode = "-" }},
		{"subscriptions[0].fields.time_format", func(c *Config) { c.Subscriptions[0].Fields.TimeFormat = "excel" }},
		{"subscriptions[0].fields.attrs[0]", func(c *Config) { c.Subscriptions[0].Fields.Attrs = []string{"a..b"} }},
		{"subscriptions[0].fields.attrs[0]", func(c *Config) { c.Subscriptions[0].Fields.Attrs = []string{"x"} }},
	} {
		t.Run(tc.path, func(t *testing.T) {
			c := validConfig()
			tc.mod(c)
			err := c.Validate()
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want a *ConfigError", err)
			}
			if ce.Path != tc.path {
				t.Fatalf("path = %q, want %q (%v)", ce.Path, tc.path, err)
			}
		})
	}
	if err := validConfig().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestByteSize(t *testing.T) {
	for in, want := range map[string]ByteSize{"65536": 65536, "64KiB": 65536, "1MiB": MiB, "10KB": 10000, "1.5KiB": 1536, "7B": 7} {
		got, err := ParseByteSize(in)
		if err != nil || got != want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "-1", "1XB", "KiB"} {
		if _, err := ParseByteSize(bad); err == nil {
			t.Errorf("ParseByteSize(%q) succeeded", bad)
		}
	}
	if s := (64 * KiB).String(); s != "64KiB" {
		t.Errorf("String = %q", s)
	}
}

func TestAutoAckBatch(t *testing.T) {
	for _, c := range []struct{ inflight, pending, want int }{
		{20, 4096, 256}, {0, 4096, 256}, {1000, 4096, 500}, {65535, 4096, 4096}, {1000, 300, 300},
	} {
		if got := autoAckBatch(c.inflight, c.pending); got != c.want {
			t.Errorf("autoAckBatch(%d, %d) = %d, want %d", c.inflight, c.pending, got, c.want)
		}
	}
}
