package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/edgegw/gateway/drivers/mqtt" // a real driver section to decode
	"github.com/edgegw/gateway/units"
)

// mqttDoc is a complete config with a real driver section, the seed the
// fuzzer mutates most.
const mqttDoc = `
gateway: {id: gw-1, groups: [east]}
buffer: {path: /var/lib/edgegw/buffer.db, disk_budget: 64MiB}
streams:
  - {name: scans, priority: 10, max_events: 100000}
  - {name: telemetry, overflow: drop-oldest, max_age: 24h}
sources:
  - name: scanners
    driver: mqtt
    mqtt:
      brokers: [ssl://broker.local:8883]
      username: gw-1
      password_file: /etc/edgegw/mqtt.pass
      tls: {ca_file: /etc/edgegw/ca.pem, cert_file: /etc/edgegw/gw.crt, key_file: /etc/edgegw/gw.key}
      rate_limit: {events_per_second: 200, burst: 400}
      subscriptions:
        - topic: site/+dock/scanner/+device
          kind: scan
          source: "{dock}-{device}"
          fields: {barcode: code, time: meta.ts, attrs: [battery]}
          rate_limit: {events_per_second: 50}
          max_payload: 4KiB
broker:
  listen: 127.0.0.1:1883
  users:
    - {username: dock3, password_file: /etc/edgegw/users/dock3, publish: [site/dock3/#]}
uplink:
  service_url: pulsar+ssl://pulsar.example:6651
  admin_url: https://pulsar.example:8443
  tls_ca_file: /etc/edgegw/pulsar-ca.pem
  auth_token_file: /etc/edgegw/pulsar.token
`

// FuzzParse: Parse never panics, and what it accepts is valid.
func FuzzParse(f *testing.F) {
	for _, s := range []string{good, mqttDoc, "", "{}", "gateway: {id: x}\n", "a: &a [*a]", "[[[[[[[[[["} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		if len(doc) > 64<<10 {
			return
		}
		c, err := Parse(doc)
		if err != nil {
			if c != nil {
				t.Fatalf("Parse returned a config and an error: %v", err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("an accepted config does not validate again: %v", err)
		}
		if c.Gateway.ID == "" || c.Buffer.Path == "" || len(c.Streams) == 0 {
			t.Fatalf("accepted without required settings: %+v", c)
		}
		for i, s := range c.Sources {
			if s.Parsed == nil {
				t.Fatalf("sources[%d] accepted without a decoded driver config", i)
			}
		}
	})
}

// laughs is the "billion laughs" document: n levels of anchors, each a list
// of ten aliases of the one before, put where the decoder must expand it.
func laughs(prefix, indent string, n int) string {
	var b strings.Builder
	b.WriteString(prefix)
	fmt.Fprintf(&b, "%sl0: &l0 [\"lol\"]\n", indent)
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "%sl%d: &l%d [*l%d,*l%d,*l%d,*l%d,*l%d,*l%d,*l%d,*l%d,*l%d,*l%d]\n", indent, i, i, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1)
	}
	return b.String()
}

// Hostile YAML is refused, quickly and without a panic: alias bombs at the
// top level, used by a known field, and inside a driver section (which is
// decoded on its own), a self-referencing anchor, nesting past yaml's depth
// limit, a huge scalar, a huge number of keys, and merge-key bombs. The
// strict decode refuses the unknown keys that hold the anchors before any
// alias is expanded; where yaml.v3 itself expands, it refuses documents whose
// alias expansion is out of proportion ("excessive aliasing"), and any
// nesting deeper than 10000.
func TestHostileYAML(t *testing.T) {
	inDriver := strings.Replace(mqttDoc, "          fields: {barcode: code, time: meta.ts, attrs: [battery]}\n",
		"          fields: {barcode: code, time: meta.ts, attrs: *l9}\n", 1)
	inDriver = strings.Replace(inDriver, "      subscriptions:\n", laughs("      bomb:\n", "        ", 9)+"      subscriptions:\n", 1)
	merge := "base: &b {a: 1}\n"
	for i := 0; i < 2000; i++ {
		merge += fmt.Sprintf("m%d: &m%d {<<: [*b], k%d: 1}\n", i, i, i)
	}
	var manyKeys strings.Builder
	manyKeys.WriteString(good + "extra:\n")
	for i := 0; i < 50000; i++ {
		fmt.Fprintf(&manyKeys, "  k%d: %d\n", i, i)
	}
	for _, tc := range []struct {
		name, doc, want string
	}{
		{"billion laughs", laughs("", "", 9) + good, `line 10: l9: unknown field "l9"`},
		{"billion laughs used by a known list", laughs("", "", 9) + strings.Replace(good, "  groups: [east]\n", "  groups: *l9\n", 1), `line 10: l9: unknown field "l9"`},
		{"billion laughs in a driver section", inDriver, `sources[0].mqtt.bomb: unknown field "bomb"`},
		{"self-referencing anchor", "a: &a [*a]\n" + good, `line 1: a: unknown field "a"`},
		{"deep flow nesting", "x: " + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + "\n" + good, "max depth"},
		{"deep block nesting", good + "deep:\n" + strings.Repeat("- ", 12000) + "x\n", "max depth"},
		{"huge scalar", strings.Replace(good, "dock-gw-01", strings.Repeat("a", MaxSize-1024), 1), `line 3: gateway.id: "` + strings.Repeat("a", 64) + `"…(4193280 bytes): use 1-64`},
		{"document over the limit", strings.Replace(good, "dock-gw-01", strings.Repeat("a", 4<<20), 1), "config too large: a document of 4194728 bytes, the limit is 4 MiB"},
		{"huge key count", manyKeys.String(), `line 25: extra: unknown field "extra"`},
		{"merge-key bomb", merge + good, `line 1: base: unknown field "base"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			c, err := Parse([]byte(tc.doc))
			el := time.Since(start)
			if err == nil {
				t.Fatalf("accepted (%+v)", c.Gateway)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %.300q does not contain %q", err, tc.want)
			}
			if el > 20*time.Second {
				t.Errorf("took %s", el)
			}
			t.Logf("%s in %s: %.160q", tc.name, el.Round(time.Millisecond), err)
		})
	}
	// The library's own limit, for a decode that would expand the bomb.
	var v any
	if err := yaml.Unmarshal([]byte(laughs("", "", 9)), &v); err == nil || !strings.Contains(err.Error(), "excessive aliasing") {
		t.Fatalf("yaml.v3 expanded a billion laughs: %v", err)
	}
}

func deepBlock(n int) string {
	var b strings.Builder
	b.WriteString("deep:\n")
	for i := 1; i <= n; i++ {
		b.WriteString(strings.Repeat(" ", i))
		b.WriteString("a:\n")
	}
	return b.String()
}

// TestWriteFuzzCorpus copies the hostile documents' small relatives and the
// good documents into the committed seed corpus (run with EDGE_WRITE_CORPUS=1).
func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("EDGE_WRITE_CORPUS") == "" {
		t.Skip("writes the seed corpus only with EDGE_WRITE_CORPUS=1")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzParse")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	seeds := []string{good, mqttDoc, laughs("", "", 4) + good, "a: &a [*a]\n" + good,
		"x: " + strings.Repeat("[", 100) + strings.Repeat("]", 100) + "\n", deepBlock(50),
		strings.Replace(good, "  groups: [east]\n", "  groups: *l3\n", 1) + laughs("", "", 3),
		"base: &b {a: 1}\nm: {<<: [*b, *b], k: 1}\n" + good, "gateway: !!binary aGVsbG8=\n", "%YAML 1.1\n---\n" + good,
		"sources:\n  - name: a\n    driver: mqtt\n    mqtt: {brokers: [embedded], subscriptions: [{topic: '#', kind: x}]}\n"}
	for i, s := range seeds {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d", i)), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// The fuzzer's main seed is a valid config with every security setting.
func TestParseSecureDoc(t *testing.T) {
	if !EmbeddedBrokerBuilt {
		t.Skip("the document has a broker: section, which a noembedded build refuses")
	}
	c, err := Parse([]byte(mqttDoc))
	if err != nil {
		t.Fatal(err)
	}
	mc, ok := c.Sources[0].Parsed.(*mqtt.Config)
	if !ok || mc.RateLimit.EventsPerSecond != 200 || mc.RateLimit.Burst != 400 || mc.TLS.CertFile == "" ||
		mc.Subscriptions[0].RateLimit == nil || mc.Subscriptions[0].RateLimit.EventsPerSecond != 50 || mc.Subscriptions[0].MaxPayload != 4*units.KiB {
		t.Fatalf("mqtt section %+v", c.Sources[0].Parsed)
	}
	if c.Uplink.AuthTokenFile == "" || c.Uplink.TLSCAFile == "" || len(c.Broker.Users) != 1 {
		t.Fatalf("uplink %+v broker %+v", c.Uplink, c.Broker)
	}
}
