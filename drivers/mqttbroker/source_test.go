package mqttbroker

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/edgegw/gateway/drivers"
	"github.com/edgegw/gateway/drivers/mqtt"
)

// The section of a mqtt-embedded source decodes strictly into the shared
// settings, and holds no connection settings.
func TestSourceConfigYAML(t *testing.T) {
	doc := `
ack_window: 2ms
max_payload: 4KiB
subscriptions:
  - {topic: site/+dock/scanner/+device, kind: scan, source: "{dock}-scanner", fields: {counter: n}}
`
	reg, ok := drivers.Lookup(SourceDriver)
	if !ok {
		t.Fatalf("%s is not registered", SourceDriver)
	}
	c := reg.NewConfig().(*SourceConfig)
	dec := yaml.NewDecoder(strings.NewReader(doc))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.AckWindow.D() != 2*time.Millisecond || c.MaxPayload != 4096 || c.MaxPending != 4096 || c.Subscriptions[0].Fields.Counter != "n" {
		t.Fatalf("decoded %+v", c.Config)
	}
	if setting, uses := c.UsesInbox(); !uses || setting != "" {
		t.Fatalf("UsesInbox = %q, %v", setting, uses)
	}
	dec = yaml.NewDecoder(strings.NewReader("brokers: [embedded]\n"))
	dec.KnownFields(true)
	if err := dec.Decode(NewSourceConfig()); err == nil {
		t.Fatal("brokers accepted in a mqtt-embedded section")
	}
	if _, err := NewSource(c, drivers.Env{Logger: testLogger()}); !errors.Is(err, errNoInbox) {
		t.Fatalf("NewSource without an inbox = %v", err)
	}
}

// A source on the embedded broker exports the very metrics of one on a
// site broker (names, help, kinds, labels): dashboards read both alike.
func TestSourceMetricsAsMQTT(t *testing.T) {
	desc := func(ms []drivers.Metric) []string {
		var out []string
		for _, m := range ms {
			s := m.Name + "|" + m.Help + "|" + m.Kind.String()
			for _, l := range m.Labels {
				s += "|" + l.Name + "=" + l.Value
			}
			out = append(out, s)
		}
		return slices.Sorted(slices.Values(out))
	}
	got, want := desc((&Source{}).Metrics()), desc((&mqtt.Driver{}).Metrics())
	if !slices.Equal(got, want) {
		t.Fatalf("mqtt-embedded metrics\n%q\nwant\n%q", got, want)
	}
}
