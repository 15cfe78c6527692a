//go:build !noembedded

package config

import (
	"strings"
	"testing"

	"github.com/edgegw/gateway/drivers"
	"github.com/edgegw/gateway/drivers/mqttbroker"
)

// Both spellings of an embedded-broker source load through the gateway's
// loader, report that they take their input from the broker, and are
// refused the same way without a broker: section.
func TestEmbeddedSourceSpellings(t *testing.T) {
	const head = `
gateway: {id: van-7}
buffer: {path: /var/lib/edgegw/buffer.db}
streams: [{name: scans}]
uplink: {service_url: "pulsar://127.0.0.1:6650", admin_url: "http://127.0.0.1:8080"}
`
	const broker = "broker: {listen: \"127.0.0.1:1883\", allow_anonymous: true}\n"
	spellings := map[string]string{
		"canonical": `sources:
  - name: devices
    driver: mqtt-embedded
    mqtt-embedded:
      subscriptions:
        - {topic: "van/+device/scan", kind: scan, stream: scans, source: "{device}"}
`,
		"alias": `sources:
  - name: devices
    driver: mqtt
    mqtt:
      brokers: [embedded]
      subscriptions:
        - {topic: "van/+device/scan", kind: scan, stream: scans, source: "{device}"}
`,
	}
	for name, src := range spellings {
		t.Run(name, func(t *testing.T) {
			c, err := Parse([]byte(head + broker + src))
			if err != nil {
				t.Fatal(err)
			}
			u, ok := c.Sources[0].Parsed.(drivers.InboxUser)
			if !ok {
				t.Fatalf("%T does not say whether it uses the broker", c.Sources[0].Parsed)
			}
			if _, uses := u.UsesInbox(); !uses {
				t.Fatal("an embedded-broker source says it does not take the broker's input")
			}
			if c.Broker == nil || c.Broker.Listen != "127.0.0.1:1883" {
				t.Fatalf("broker %+v", c.Broker)
			}
			if name == "canonical" {
				if _, ok := c.Sources[0].Parsed.(*mqttbroker.SourceConfig); !ok {
					t.Fatalf("parsed as %T", c.Sources[0].Parsed)
				}
			}
			_, err = Parse([]byte(head + src))
			if err == nil || !strings.Contains(err.Error(), "no broker: section") || !strings.Contains(err.Error(), "sources[0]") {
				t.Fatalf("without broker: %v", err)
			}
		})
	}
}
