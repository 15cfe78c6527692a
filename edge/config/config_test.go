package config

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/edgegw/gateway/drivers"
)

type fakeCfg struct {
	Topic string `yaml:"topic"`
	QoS   int    `yaml:"qos"`
	Inner struct {
		Depth int `yaml:"depth"`
	} `yaml:"inner"`
}

type pathErr struct{ path, msg string }

func (e pathErr) Error() string     { return e.path + ": " + e.msg }
func (e pathErr) FieldPath() string { return e.path }

func (c *fakeCfg) Validate() error {
	if c.QoS > 2 {
		return pathErr{"qos", "must be 0, 1 or 2"}
	}
	return nil
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
	if c.Uplink.Compression != "lz4" || c.Uplink.ServiceURL != "pulsar://127.0.0.1:6650" {
		t.Fatalf("uplink %+v", c.Uplink)
	}
	if c.HTTP.Listen != "127.0.0.1:9108" {
		t.Fatalf("http default %q", c.HTTP.Listen)
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

func TestByteSizes(t *testing.T) {
	for in, want := range map[string]int64{"4096": 4096, "64KiB": 64 << 10, "256MiB": 256 << 20, "1GB": 1e9, "1.5GiB": 3 << 29, "8m": 8 << 20} {
		got, err := ParseByteSize(in)
		if err != nil || int64(got) != want {
			t.Errorf("%s: got %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "lots", "1XB"} {
		if _, err := ParseByteSize(in); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}
