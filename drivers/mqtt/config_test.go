package mqtt

import (
	"errors"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/edgegw/gateway/units"
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
	if c.MaxPayload != 32*units.KiB || c.AckWindow.D() != 2*time.Millisecond || c.ReconnectMax.D() != time.Minute ||
		*c.Subscriptions[1].QoS != 0 || c.Subscriptions[0].Fields.Attrs[1] != "meta.fw" || c.DeviceTime.MaxPast.D() != 12*time.Hour {
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
		{"ack_window", func(c *Config) { c.AckWindow = units.Duration(2 * time.Second) }},
		{"ack_batch", func(c *Config) { c.AckBatch = -1 }},
		{"max_payload", func(c *Config) { c.MaxPayload = units.MiB }},
		{"max_pending", func(c *Config) { c.AckBatch, c.MaxPending = 256, 10 }},
		{"broker_inflight", func(c *Config) { c.BrokerInflight = -1 }},
		{"device_time.max_past", func(c *Config) { c.DeviceTime.MaxPast = units.Duration(-time.Second) }},
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
			var ce *units.FieldError
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want a *units.FieldError", err)
			}
			if ce.Line != 0 || ce.Error() != tc.path+": "+ce.Msg {
				t.Fatalf("error %q, want %q and no line (the loader locates it)", ce.Error(), tc.path+": "+ce.Msg)
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

// Durations take the shared syntax, days included; sizes too.
func TestDurationsAndSizesYAML(t *testing.T) {
	c, err := decodeStrict(t, "keepalive: 1h30m\nreconnect_max: 90s\nmax_payload: 64KiB\ndevice_time: {max_past: 7d, max_future: 1d12h}\n")
	if err != nil {
		t.Fatal(err)
	}
	if c.KeepAlive.D() != 90*time.Minute || c.ReconnectMax.D() != 90*time.Second || c.MaxPayload != 64<<10 ||
		c.DeviceTime.MaxPast.D() != 7*24*time.Hour || c.DeviceTime.MaxFuture.D() != 36*time.Hour {
		t.Fatalf("decoded keepalive %v reconnect_max %v max_payload %v device_time %+v", c.KeepAlive, c.ReconnectMax, c.MaxPayload, c.DeviceTime)
	}
	_, err = decodeStrict(t, "\nkeepalive: soon\n")
	if err == nil || !strings.Contains(err.Error(), `line 2: "soon" is not a duration`) {
		t.Fatalf("err = %v, want the line and the value", err)
	}
}

// A Validate error of a section carries its path relative to the section
// and every problem at once.
func TestValidateReportsEveryProblem(t *testing.T) {
	c := validConfig()
	c.KeepAlive = 0
	c.Subscriptions[0].Format = "xml"
	var es units.Errors
	if err := c.Validate(); !errors.As(err, &es) {
		t.Fatalf("err = %T %v, want units.Errors", err, err)
	}
	want := units.Errors{
		{Path: "keepalive", Msg: "0s is outside [1s, 18h12m15s]"},
		{Path: "subscriptions[0].format", Msg: `"xml": want one of json, cbor, text, raw`},
	}
	if len(es) != len(want) {
		t.Fatalf("errors %q, want %q", es, want)
	}
	for i := range want {
		if *es[i] != *want[i] {
			t.Errorf("error %d = %+v, want %+v", i, *es[i], *want[i])
		}
	}
}
