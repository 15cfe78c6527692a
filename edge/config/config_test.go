package config

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/edgegw/gateway/drivers"
	"github.com/edgegw/gateway/drivers/mqtt"
	"github.com/edgegw/gateway/units"
)

type fakeCfg struct {
	Topic string `yaml:"topic"`
	QoS   int    `yaml:"qos"`
	Inner struct {
		Depth int `yaml:"depth"`
	} `yaml:"inner"`
}

// Validate reports as every driver does: units.Errors, paths relative to
// the section, no lines.
func (c *fakeCfg) Validate() error {
	var es units.Errors
	if c.QoS > 2 {
		es.Add("qos", "must be 0, 1 or 2")
	}
	if c.Inner.Depth < 0 {
		es.Add("inner.depth", "must not be negative, got %d", c.Inner.Depth)
	}
	return es.Err()
}

func init() {
	drivers.Register("fake", drivers.Registration{
		NewConfig: func() any { return &fakeCfg{QoS: 1} },
		New:       func(any, drivers.Env) (drivers.Driver, error) { return nil, errors.New("not runnable") },
	})
}

const good = `
gateway:
  id: dock-gw-01
  groups: [east]
buffer:
  path: /var/lib/edgegw/buffer.db
  disk_budget: 256MiB
  commit_window: 3ms
streams:
  - name: scans
    priority: 10
    max_age: 168h
  - name: telemetry
    overflow: drop-oldest
    max_bytes: 16MiB
sources:
  - name: scanners
    driver: fake
    fake:
      topic: a/b
      inner: {depth: 3}
uplink:
  service_url: pulsar://127.0.0.1:6650
  admin_url: http://127.0.0.1:8080
`

func TestParseGood(t *testing.T) {
	c, err := Parse([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if c.Gateway.ID != "dock-gw-01" || c.Buffer.DiskBudget != 256<<20 || c.Buffer.CommitWindow.D().String() != "3ms" {
		t.Fatalf("decoded %+v", c.Buffer)
	}
	if c.Streams[0].MaxAge.D().Hours() != 168 || c.Streams[1].MaxBytes != 16<<20 || c.Streams[1].Overflow != "drop-oldest" {
		t.Fatalf("streams %+v", c.Streams)
	}
	fc, ok := c.Sources[0].Parsed.(*fakeCfg)
	if !ok || fc.Topic != "a/b" || fc.QoS != 1 || fc.Inner.Depth != 3 {
		t.Fatalf("driver config %+v", c.Sources[0].Parsed)
	}
	if c.Uplink.Compression != "zstd" || c.Uplink.ServiceURL != "pulsar://127.0.0.1:6650" {
		t.Fatalf("uplink %+v", c.Uplink)
	}
	if c.HTTP.Listen != "127.0.0.1:9108" {
		t.Fatalf("http default %q", c.HTTP.Listen)
	}
	if c.Buffer.JournalSize != 4<<20 || c.Buffer.JournalMoveInterval.D().String() != "5m0s" {
		t.Fatalf("journal defaults %+v", c.Buffer)
	}
	off, err := Parse([]byte(strings.Replace(good, "commit_window: 3ms\n", "commit_window: 3ms\n  journal_size: 0\n", 1)))
	if err != nil || off.Buffer.JournalSize != 0 {
		t.Fatalf("journal_size: 0 (off): %v %+v", err, off)
	}
}

func TestParseErrorsNameFieldAndLine(t *testing.T) {
	for _, tc := range []struct {
		name, from, to, want string
	}{
		{"unknown top-level key", "buffer:\n", "bufer:\n  x: 1\nbuffer:\n", `line 5: bufer: unknown field "bufer"`},
		{"unknown driver key", "      topic: a/b\n", "      topik: a/b\n", `line 20: sources[0].fake.topik: unknown field "topik"`},
		{"unknown nested driver key", "inner: {depth: 3}", "inner: {deep: 3}", `line 21: sources[0].fake.inner.deep: unknown field`},
		{"driver validate error", "      topic: a/b\n", "      topic: a/b\n      qos: 7\n", "line 21: sources[0].fake.qos: must be 0, 1 or 2"},
		{"bad overflow", "overflow: drop-oldest", "overflow: drop-newest", `line 14: streams[1].overflow: "drop-newest": must be reject-new or drop-oldest`},
		{"bad size", "disk_budget: 256MiB", "disk_budget: lots", `line 7: buffer.disk_budget: "lots" is not a byte size`},
		{"bad duration", "max_age: 168h", "max_age: a week", `line 12: streams[0].max_age: "a week" is not a duration`},
		{"missing id", "  id: dock-gw-01\n", "", "gateway.id: required"},
		{"unknown driver", "driver: fake", "driver: modbus", `line 18: sources[0].driver: "modbus" is not a known driver`},
		{"settings under wrong key", "    fake:\n", "    mqtt:\n", `line 19: sources[0].mqtt: unknown field`},
		{"uplink error", "service_url: pulsar://127.0.0.1:6650", "service_url: http//nope", "line 23: uplink.service_url:"},
		{"uplink unknown key", "  admin_url:", "  admin_uri:", `line 24: uplink.admin_uri: unknown field "admin_uri"`},
		{"duplicate stream", "name: telemetry", "name: scans", `line 13: streams[1].name: stream "scans" is defined twice`},
		{"tiny journal", "commit_window: 3ms\n", "commit_window: 3ms\n  journal_size: 4KiB\n", "buffer.journal_size: must be 0 (off) or between 64KiB and 1GiB"},
		{"fast moves", "commit_window: 3ms\n", "commit_window: 3ms\n  journal_move_interval: 10ms\n", "buffer.journal_move_interval: must be between 1s and 1h"},
		{"long fill", "commit_window: 3ms\n", "commit_window: 3ms\n  fill_window: 2s\n", "buffer.fill_window: must be between 0 (off) and 1s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := strings.Replace(good, tc.from, tc.to, 1)
			if doc == good {
				t.Fatalf("test case does not change the document")
			}
			_, err := Parse([]byte(doc))
			if err == nil {
				t.Fatalf("accepted:\n%s", doc)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q\ndoes not contain %q", err, tc.want)
			}
		})
	}
}

func TestHostileDocumentsNeverPanic(t *testing.T) {
	for i, doc := range []string{"", "---", "[]", "gateway: [", "a: &a [*a]", "gateway: {id: x}\nsources: [{driver: fake, fake: [1,2]}]",
		strings.Repeat("[", 10000), "gateway:\n  id: " + strings.Repeat("x", 1<<16)} {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			if _, err := Parse([]byte(doc)); err == nil {
				t.Fatalf("accepted %q", doc)
			}
		})
	}
}

// A driver section with an unknown key and a bad value, a bad value in
// the uplink, an unknown key in the uplink and a duration elsewhere: every
// problem is reported, in file order, each with its line and full path.
func TestDriverAndUplinkErrorsReportedTogether(t *testing.T) {
	doc := strings.Replace(good, "      topic: a/b\n", "      topik: a/b\n      qos: 7\n", 1)
	doc = strings.Replace(doc, "inner: {depth: 3}", "inner: {depth: -1}", 1)
	doc = strings.Replace(doc, "max_age: 168h", "max_age: a week", 1)
	doc = strings.Replace(doc, "service_url: pulsar://127.0.0.1:6650", "service_url: http://127.0.0.1:6650\n  send_timeout: 1d12h\n  compresion: lz4", 1)
	es := fieldErrors(t, doc)
	want := units.Errors{
		{Path: "streams[0].max_age", Line: 12, Msg: `"a week" is not a duration (use e.g. 500ms, 30s, 1h30m, 90d)`},
		{Path: "sources[0].fake.topik", Line: 20, Msg: `unknown field "topik"`},
		{Path: "sources[0].fake.qos", Line: 21, Msg: "must be 0, 1 or 2"},
		{Path: "sources[0].fake.inner.depth", Line: 22, Msg: "must not be negative, got -1"},
		{Path: "uplink.service_url", Line: 24, Msg: `scheme must be pulsar:// or pulsar+ssl://, not "http"`},
		{Path: "uplink.compresion", Line: 26, Msg: `unknown field "compresion"`},
	}
	if len(es) != len(want) {
		t.Fatalf("errors:\n%v\nwant:\n%v", es, want)
	}
	for i := range want {
		if *es[i] != *want[i] {
			t.Errorf("error %d = %+v\nwant       %+v", i, *es[i], *want[i])
		}
	}
}

// Durations take the shared syntax everywhere, days included.
func TestDurations(t *testing.T) {
	doc := strings.Replace(good, "max_age: 168h", "max_age: 7d", 1)
	doc = strings.Replace(doc, "commit_window: 3ms", "commit_window: 1ms", 1)
	doc += "  send_timeout: 1h30m\nfleet:\n  probation: 90s\n"
	c, err := Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if c.Streams[0].MaxAge.D() != 7*24*time.Hour || c.Uplink.SendTimeout.D() != 90*time.Minute || c.Fleet.Probation.D() != 90*time.Second {
		t.Fatalf("max_age %v send_timeout %v probation %v", c.Streams[0].MaxAge, c.Uplink.SendTimeout, c.Fleet.Probation)
	}
}

// The real MQTT driver's section: an unknown key, a value its Validate
// refuses and one that does not decode are all reported, with the source's
// path in front and the line; days are a duration unit in the section too.
func TestMQTTSectionErrors(t *testing.T) {
	doc := `gateway: {id: gw-1}
buffer: {path: /tmp/b.db}
streams:
  - {name: scans, max_age: 7d}
sources:
  - name: scanners
    driver: mqtt
    mqtt:
      brokers: [tcp://127.0.0.1:1883]
      keepalive: 90s
      device_time: {max_past: 7d}
      subscriptionz: []
      subscriptions:
        - topic: a/+dock
          kind: scan
          qos: 5
uplink:
  service_url: pulsar://127.0.0.1:6650
  admin_url: http://127.0.0.1:8080
`
	es := fieldErrors(t, doc)
	want := units.Errors{
		{Path: "sources[0].mqtt.subscriptionz", Line: 12, Msg: `unknown field "subscriptionz"`},
		{Path: "sources[0].mqtt.subscriptions[0].qos", Line: 16, Msg: "must be 0, 1 or 2"},
	}
	if len(es) != len(want) {
		t.Fatalf("errors:\n%v\nwant:\n%v", es, want)
	}
	for i := range want {
		if *es[i] != *want[i] {
			t.Errorf("error %d = %+v\nwant       %+v", i, *es[i], *want[i])
		}
	}
	doc = strings.Replace(doc, "      subscriptionz: []\n", "", 1)
	doc = strings.Replace(doc, "qos: 5", "qos: 1", 1)
	c, err := Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	mc := c.Sources[0].Parsed.(*mqtt.Config)
	if mc.DeviceTime.MaxPast.D() != 7*24*time.Hour || mc.KeepAlive.D() != 90*time.Second || c.Streams[0].MaxAge.D() != 7*24*time.Hour {
		t.Fatalf("max_past %v keepalive %v max_age %v", mc.DeviceTime.MaxPast, mc.KeepAlive, c.Streams[0].MaxAge)
	}
}
