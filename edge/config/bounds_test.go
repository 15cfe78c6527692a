package config

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/edgegw/gateway/units"
)

// fieldErrors parses doc and returns its errors, failing the test if it is
// accepted or the error is not Errors.
func fieldErrors(t *testing.T, doc string) units.Errors {
	t.Helper()
	c, err := Parse([]byte(doc))
	if err == nil {
		t.Fatalf("accepted (%+v)", c.Gateway)
	}
	var es units.Errors
	if !errors.As(err, &es) {
		t.Fatalf("error %T %q is not Errors", err, err)
	}
	return es
}

// A value of the wrong type is reported with its key path and line, in
// block and flow style, at the top level, in a driver section and through
// an alias or a merge key.
func TestTypeErrorsNameKeyAndLine(t *testing.T) {
	for _, tc := range []struct {
		name, from, to string
		path           string
		line           int
		msg            string
	}{
		{"sequence for int", "priority: 10", "priority: [1]", "streams[0].priority", 11, "want an integer, got a sequence"},
		{"string for int", "priority: 10", "priority: high", "streams[0].priority", 11, `want an integer, got "high"`},
		{"int out of range", "priority: 10", "priority: 99999999999999999999", "streams[0].priority", 11, "want an integer, got 99999999999999999999"},
		{"flow style", "  - name: scans\n    priority: 10\n    max_age: 168h\n", "  - {name: scans, priority: [1], max_age: 168h}\n", "streams[0].priority", 10, "want an integer, got a sequence"},
		{"scalar for list", "groups: [east]", "groups: east", "gateway.groups", 4, `want a sequence, got "east"`},
		{"list for struct", "buffer:\n  path: /var/lib/edgegw/buffer.db\n  disk_budget: 256MiB\n  commit_window: 3ms\n", "buffer: [1]\n\n\n\n", "buffer", 5, "want a mapping, got a sequence"},
		{"mapping for duration", "commit_window: 3ms", "commit_window: {a: 1}", "buffer.commit_window", 8, "want a duration (e.g. 500ms, 30s, 1h30m, 90d), got a mapping"},
		{"sequence for byte size", "max_bytes: 16MiB", "max_bytes: [1]", "streams[1].max_bytes", 15, "a byte size must be a number"},
		{"string for bool", "driver: fake\n", "driver: fake\n    optional: maybe\n", "sources[0].optional", 19, `want true or false, got "maybe"`},
		{"in a driver section", "inner: {depth: 3}", "inner: {depth: [3]}", "sources[0].fake.inner.depth", 21, "want an integer, got a sequence"},
		{"struct in a driver section", "inner: {depth: 3}", "inner: [3]", "sources[0].fake.inner", 21, "want a mapping, got a sequence"},
		{"key set twice", "  groups: [east]\n", "  groups: [east]\n  id: again\n", "gateway.id", 5, "set twice (first on line 3)"},
		{"through an alias", "  groups: [east]\n", "  groups: &g [east]\n  trusted_keys_file: *g\n", "gateway.trusted_keys_file", 5, "want a string, got a sequence (through alias *g)"},
		{"through a merge key", "  - name: telemetry\n", "  - <<: {name: telemetry, priority: [1]}\n", "streams[1].priority", 13, "want an integer, got a sequence"},
		{"unknown key through a merge key", "  - name: telemetry\n", "  - <<: {name: telemetry, prio: 1}\n", "streams[1].prio", 13, `unknown field "prio"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := strings.Replace(good, tc.from, tc.to, 1)
			if doc == good {
				t.Fatal("test case does not change the document")
			}
			es := fieldErrors(t, doc)
			if len(es) != 1 {
				t.Fatalf("want 1 error, got %d:\n%v", len(es), es)
			}
			if e := es[0]; e.Path != tc.path || e.Line != tc.line || !strings.Contains(e.Msg, tc.msg) {
				t.Fatalf("got line %d path %q msg %q\nwant line %d path %q msg containing %q", e.Line, e.Path, e.Msg, tc.line, tc.path, tc.msg)
			}
		})
	}
}

// Unknown keys, type errors and what Validate finds in the rest of the
// document are reported together, in file order; a setting that did not
// decode is not reported again by Validate.
func TestErrorsReportedTogether(t *testing.T) {
	doc := strings.Replace(good, "  disk_budget: 256MiB\n", "  disk_budgt: 256MiB\n", 1)
	doc = strings.Replace(doc, "priority: 10", "priority: [1]", 1)
	doc = strings.Replace(doc, "overflow: drop-oldest", "overflow: drop-newest", 1)
	doc = strings.Replace(doc, "  id: dock-gw-01\n", "  id: [dock-gw-01]\n", 1)
	doc += "http: {listen: garbage}\n"
	es := fieldErrors(t, doc)
	want := []struct {
		line int
		path string
	}{{3, "gateway.id"}, {7, "buffer.disk_budgt"}, {11, "streams[0].priority"}, {14, "streams[1].overflow"}, {25, "http.listen"}}
	if len(es) != len(want) {
		t.Fatalf("want %d errors, got %d:\n%v", len(want), len(es), es)
	}
	for i, w := range want {
		if es[i].Line != w.line || es[i].Path != w.path {
			t.Errorf("error %d: line %d %s, want line %d %s", i, es[i].Line, es[i].Path, w.line, w.path)
		}
	}
}

// No error repeats more than a clipped piece of a long value.
func TestLongValuesClipped(t *testing.T) {
	long := strings.Repeat("x", 1<<17)
	for _, tc := range []struct{ name, from, to, path string }{
		{"gateway.id", "id: dock-gw-01", "id: " + long, "gateway.id"},
		{"unknown key", "buffer:\n", "? " + long + "\n: 1\nbuffer:\n", strings.Repeat("x", 64) + "…(131072 bytes)"},
		{"type error", "priority: 10", "priority: " + long, "streams[0].priority"},
		{"duration", "max_age: 168h", "max_age: " + long, "streams[0].max_age"},
		{"overflow", "overflow: drop-oldest", "overflow: " + long, "streams[1].overflow"},
		{"unknown driver", "driver: fake", "driver: " + long, "sources[0].driver"},
		{"driver key", "      topic: a/b\n", "      ? " + long + "\n      : a/b\n", "sources[0].fake." + strings.Repeat("x", 64) + "…(131072 bytes)"},
		{"uplink", "service_url: pulsar://127.0.0.1:6650", "service_url: pulsar://h:" + long, "uplink.service_url"},
		{"log level", "buffer:\n", "log: {level: " + long + "}\nbuffer:\n", "log.level"},
		{"http.listen", "buffer:\n", "http: {listen: " + long + "}\nbuffer:\n", "http.listen"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			es := fieldErrors(t, strings.Replace(good, tc.from, tc.to, 1))
			var found bool
			for _, e := range es {
				if len(e.Error()) > 400 {
					t.Errorf("error of %d bytes: %.200q", len(e.Error()), e.Error())
				}
				found = found || e.Path == tc.path
			}
			if !found {
				t.Errorf("no error at %q: %.500q", tc.path, es.Error())
			}
			if !regexp.MustCompile(`…\(1310\d\d bytes\)`).MatchString(es.Error()) {
				t.Errorf("error does not say how long the value was: %.500q", es.Error())
			}
		})
	}
}

func TestClipMsg(t *testing.T) {
	long := strings.Repeat("é", 100)
	for in, want := range map[string]string{
		"short":                              "short",
		`bad "` + long + `" value`:           `bad "` + strings.Repeat("é", 32) + `"…(200 bytes) value`,
		`unterminated "` + long:              `unterminated "` + long,
		`escaped "a\"` + long + `"` + " end": `escaped "a\"` + strings.Repeat("é", 31) + `"…(202 bytes) end`,
	} {
		if got := clipMsg(in); got != want {
			t.Errorf("clipMsg(%.40q…)\n got %q\nwant %q", in, got, want)
		}
	}
	if got := clipMsg(strings.Repeat("y", 1<<20)); len(got) > maxMsg+32 {
		t.Errorf("clipMsg of 1 MiB gave %d bytes", len(got))
	}
}

// A document over MaxSize is refused before it is parsed, by ParseWith
// (fleet documents) as well as Load.
func TestSizeLimit(t *testing.T) {
	big := make([]byte, MaxSize+1)
	if _, err := ParseWith(big, nil); !errors.Is(err, ErrTooLarge) || err.Error() != "config too large: a document of 4194305 bytes, the limit is 4 MiB (4194304 bytes)" {
		t.Fatalf("ParseWith of MaxSize+1 bytes: %v", err)
	}
	// A document of exactly MaxSize is parsed (and refused for its content).
	atLimit := []byte(strings.Replace(good, "dock-gw-01", strings.Repeat("a", MaxSize-len(good)+len("dock-gw-01")), 1))
	if len(atLimit) != MaxSize {
		t.Fatalf("document of %d bytes", len(atLimit))
	}
	if _, err := Parse(atLimit); err == nil || errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "gateway.id") {
		t.Fatalf("document of MaxSize bytes: %.200v", err)
	}
}

// Load refuses a 5 MiB file naming the file and the limit, without
// reading it: the bytes allocated stay far below its size.
func TestLoadRefusesLargeFileUnread(t *testing.T) {
	path := filepath.Join(t.TempDir(), "big.yaml")
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
	_, err = Load(path)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrTooLarge) || err.Error() != path+": config too large: 5242880 bytes, the limit is 4 MiB (4194304 bytes)" {
		t.Fatalf("Load: %v", err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 256<<10 {
		t.Fatalf("Load allocated %d bytes to refuse a 5 MiB file", alloc)
	}
}

// countingReader is an endless stream that counts what is read of it.
type countingReader struct{ n int64 }

func (r *countingReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'a'
	}
	r.n += int64(len(p))
	return len(p), nil
}

// A file whose size is not known up front (a pipe, a device) is read
// through a limit: no more than MaxSize+1 bytes of it.
func TestReadAtMostStopsAtLimit(t *testing.T) {
	r := &countingReader{}
	if _, err := readAtMost(r, 0); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("endless reader: %v", err)
	}
	if r.n != MaxSize+1 {
		t.Fatalf("read %d bytes of an endless stream, want %d", r.n, MaxSize+1)
	}
	b, err := readAtMost(strings.NewReader(good), int64(len(good)))
	if err != nil || string(b) != good {
		t.Fatalf("small file: %v", err)
	}
}

// Validate refuses what the gateway would refuse at start before any I/O.
func TestValidateStartChecks(t *testing.T) {
	for _, tc := range []struct {
		name, add, path string
		line            int
		msg             string
	}{
		{"listen without port", "http: {listen: garbage}\n", "http.listen", 25, `"garbage": missing port in address`},
		{"listen port out of range", "http: {listen: \"127.0.0.1:70000\"}\n", "http.listen", 25, "the port must be a number from 0 to 65535"},
		{"listen named port", "http: {listen: \"127.0.0.1:http\"}\n", "http.listen", 25, "the port must be a number"},
		{"listen bad host", "http: {listen: \"exa mple:80\"}\n", "http.listen", 25, "the host must be an IP address or a host name"},
		{"listen too many colons", "http: {listen: \"::1:80\"}\n", "http.listen", 25, "too many colons"},
		{"log level", "log: {level: verbose}\n", "log.level", 25, `"verbose": want debug, info, warn or error`},
		{"log format", "log: {format: xml}\n", "log.format", 25, `"xml": want text or json`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			es := fieldErrors(t, good+tc.add)
			if len(es) != 1 || es[0].Path != tc.path || es[0].Line != tc.line || !strings.Contains(es[0].Msg, tc.msg) {
				t.Fatalf("got %v\nwant line %d: %s: …%s", es, tc.line, tc.path, tc.msg)
			}
		})
	}
	for _, ok := range []string{
		"http: {listen: off}\n", "http: {listen: \"\"}\n", "http: {listen: \":9108\"}\n", "http: {listen: \"[::1]:9108\"}\n",
		"http: {listen: \"localhost:0\"}\n", "http: {listen: \"0.0.0.0:65535\"}\n", "http: {listen: \"[fe80::1%eth0]:80\"}\n",
		"log: {level: WARN, format: json}\n", "log: {level: warning}\n", "log: {level: \"\", format: \"\"}\n",
	} {
		if _, err := Parse([]byte(good + ok)); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
}

// An MQTT source on the embedded broker needs a broker: section, or the
// pipeline refuses to start.
func TestValidateEmbeddedBrokerNeedsBrokerSection(t *testing.T) {
	if !EmbeddedBrokerBuilt {
		t.Skip("a noembedded build refuses any broker: section (TestBrokerSectionNeedsEmbeddedBuild)")
	}
	doc := strings.Replace(mqttDoc, "      brokers: [ssl://broker.local:8883]\n", "      brokers: [embedded]\n", 1)
	doc = strings.Replace(doc, "broker:\n  listen: 127.0.0.1:1883\n  users:\n    - {username: dock3, password_file: /etc/edgegw/users/dock3, publish: [site/dock3/#]}\n", "", 1)
	es := fieldErrors(t, doc)
	if len(es) != 1 || es[0].Path != "sources[0].mqtt.brokers" || es[0].Line != 11 || !strings.Contains(es[0].Msg, "no broker: section") {
		t.Fatalf("got %v", es)
	}
	withBroker := strings.Replace(mqttDoc, "      brokers: [ssl://broker.local:8883]\n", "      brokers: [embedded]\n", 1)
	if _, err := Parse([]byte(withBroker)); err != nil {
		t.Fatalf("embedded broker with a broker: section: %v", err)
	}
}

// Hundreds of thousands of bad keys give a bounded report.
func TestErrorCountBounded(t *testing.T) {
	var b strings.Builder
	for i := 0; i < 5000; i++ {
		b.WriteString("k")
		b.WriteString(strings.Repeat("x", i%7))
		b.WriteString(string(rune('a' + i%26)))
		b.WriteString(": 1\n")
	}
	es := fieldErrors(t, b.String()+good)
	if len(es) != maxErrors+1 || !strings.HasPrefix(es[maxErrors].Msg, "and ") {
		t.Fatalf("%d errors, last %v", len(es), es[len(es)-1])
	}
}

// A build without the embedded broker (-tags noembedded) refuses a broker:
// section at validation, as its gateway would at start.
func TestBrokerSectionNeedsEmbeddedBuild(t *testing.T) {
	_, err := Parse([]byte(mqttDoc))
	if EmbeddedBrokerBuilt {
		if err != nil {
			t.Fatal(err)
		}
		return
	}
	var es units.Errors
	if !errors.As(err, &es) || len(es) != 1 || es[0].Path != "broker" || es[0].Line != 23 ||
		es[0].Msg != "this build has no embedded broker (built with -tags noembedded)" {
		t.Fatalf("got %v", err)
	}
}
