package firmware

import (
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/edgegw/gateway/buffer"
	"github.com/edgegw/gateway/test/harness"
	"github.com/edgegw/gateway/test/testenv"
)

// Upgrade safety: a board upgraded to new firmware must open the buffer file
// the old firmware left behind and forward every event in it. testdata/ holds
// one small buffer file per format version, each written by a real gateway
// of that format (buffer-format<N>.db.gz, with buffer-format<N>.json saying
// what is in it). Keep the old ones when the format moves on.
//
// To add the fixture of the current format (TestBufferFixtureCoversCurrentFormat
// fails until there is one), with Mosquitto running (test/mosquitto.sh up):
//
//	go test ./test/firmware -run TestWriteBufferFixture -write-fixture
//
// It runs the host build of this tree with an unreachable uplink, publishes
// scans and readings through Mosquitto, stops the gateway, compacts the file
// and writes both files into testdata/.
var writeFixture = flag.Bool("write-fixture", false, "write testdata/buffer-format<N>.db.gz for the current buffer format")

// fixture describes one buffer file in testdata/.
type fixture struct {
	Format    uint32                    `json:"format"`
	Gateway   string                    `json:"gateway"`
	WrittenBy string                    `json:"written_by"`
	Source    string                    `json:"source,omitempty"` // git describe of the tree it was built from
	WrittenAt time.Time                 `json:"written_at"`
	Streams   map[string]map[string]int `json:"streams"` // stream -> publisher -> events numbered 1..n
	name      string                    // file name without extension
}

func fixtures(t *testing.T) []fixture {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "buffer-format*.json"))
	if err != nil {
		t.Fatal(err)
	}
	var out []fixture
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var fx fixture
		if err := json.Unmarshal(data, &fx); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		fx.name = strings.TrimSuffix(filepath.Base(f), ".json")
		out = append(out, fx)
	}
	if len(out) == 0 {
		t.Fatal("no buffer fixtures in testdata/")
	}
	return out
}

// unpack writes the fixture's buffer file into a new temp dir.
func (fx fixture) unpack(t *testing.T) string {
	t.Helper()
	in, err := os.Open(filepath.Join("testdata", fx.name+".db.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	zr, err := gzip.NewReader(in)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "buffer.db")
	out, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, zr); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func (fx fixture) total(stream string) int {
	n := 0
	for _, c := range fx.Streams[stream] {
		n += c
	}
	return n
}

// storeFormat reads the format version of a buffer file (meta/format, a
// big-endian uint32; see buffer/format.go).
func storeFormat(t *testing.T, path string) uint32 {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v uint32
	err = db.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket([]byte("meta"))
		if meta == nil {
			return fmt.Errorf("%s: no meta bucket", path)
		}
		raw := meta.Get([]byte("format"))
		if len(raw) != 4 {
			return fmt.Errorf("%s: format key %x", path, raw)
		}
		v = binary.BigEndian.Uint32(raw)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// currentFormat is the format this tree's buffer package writes.
func currentFormat(t *testing.T) uint32 {
	t.Helper()
	path := filepath.Join(t.TempDir(), "new.db")
	db, err := buffer.Open(path, &buffer.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return storeFormat(t, path)
}

// There is a fixture for the format this build writes, and each fixture
// holds the format its manifest names.
func TestBufferFixtureCoversCurrentFormat(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped under -short")
	}
	cur := currentFormat(t)
	have := false
	for _, fx := range fixtures(t) {
		if got := storeFormat(t, fx.unpack(t)); got != fx.Format {
			t.Errorf("%s: file has format %d, manifest says %d", fx.name, got, fx.Format)
		}
		if fx.Format > cur {
			t.Errorf("%s: format %d is newer than this build's %d", fx.name, fx.Format, cur)
		}
		have = have || fx.Format == cur
	}
	if !have {
		t.Errorf("no fixture for the current buffer format %d: add one with\n\tgo test ./test/firmware -run TestWriteBufferFixture -write-fixture", cur)
	}
}

// The ARM firmware reads every fixture with `gateway buffer stats` and
// `gateway buffer check`, read-only: the file is not changed.
func TestBufferFixtureStats(t *testing.T) {
	b := firmware(t)
	target := qemuTargets[0]
	for _, fx := range fixtures(t) {
		t.Run(fx.name, func(t *testing.T) {
			path := fx.unpack(t)
			before := sha256File(t, path)
			out, errb, rc := runBin(t, target, b.bin(target, "gateway"), "buffer", "stats", path)
			if rc != 0 {
				t.Fatalf("gateway buffer stats: rc %d\n%s%s", rc, out, errb)
			}
			depth := map[string]string{}
			lines := strings.Split(strings.TrimSpace(out), "\n")
			for i, l := range lines {
				f := strings.Fields(l)
				if i >= 2 && len(f) > 3 { // after the file line and the header
					depth[f[0]] = f[3]
				}
			}
			for stream := range fx.Streams {
				if want := fmt.Sprint(fx.total(stream)); depth[stream] != want {
					t.Errorf("stream %s: depth %q, want %s\n%s", stream, depth[stream], want, out)
				}
			}
			if out, errb, rc := runBin(t, target, b.bin(target, "gateway"), "buffer", "check", path); rc != 0 || !strings.Contains(out, ": ok") {
				t.Errorf("gateway buffer check: rc %d\n%s%s", rc, out, errb)
			}
			if sha256File(t, path) != before {
				t.Errorf("read-only commands changed the file")
			}
		})
	}
}

// A file from a newer format is refused, not misread, and left as it is:
// what an accidental downgrade meets.
func TestBufferFromNewerFormatRefused(t *testing.T) {
	b := firmware(t)
	target := qemuTargets[0]
	fx := fixtures(t)[0]
	path := fx.unpack(t)
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	future := currentFormat(t) + 1
	err = db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("meta")).Put([]byte("format"), binary.BigEndian.AppendUint32(nil, future))
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	before := sha256File(t, path)
	out, errb, rc := runBin(t, target, b.bin(target, "gateway"), "buffer", "stats", path)
	if rc == 0 || !strings.Contains(errb, fmt.Sprintf("file has format %d", future)) {
		t.Errorf("stats of a format-%d file: rc %d\n%s%s", future, rc, out, errb)
	}
	if sha256File(t, path) != before {
		t.Errorf("the refused file was changed")
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("the refused file is gone: %v", err)
	}
}

// The ARM firmware, started on a copy of each fixture, forwards every event
// in it to Pulsar exactly once and in order, then keeps numbering new events
// after them; the file is upgraded to the current format.
func TestBufferFixtureDrains(t *testing.T) {
	b := firmware(t)
	target := qemuTargets[0]
	for _, fx := range fixtures(t) {
		t.Run(fx.name, func(t *testing.T) {
			path := fx.unpack(t)
			dir := filepath.Dir(path)
			mqttURL := testenv.MQTT(t)
			pulsarURL, adminURL := testenv.Pulsar(t)
			ns := harness.Namespace(t, "fw-upgrade")
			root := fmt.Sprintf("fw/upgrade-%d", time.Now().UnixNano())
			httpAddr := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
			cfg := fixtureConfig(fx.Gateway, path, mqttURL, fmt.Sprintf("%s-%d", fx.Gateway, time.Now().UnixNano()), root, pulsarURL, adminURL, ns, httpAddr)
			g := harness.NewGateway(t, dir, cfg, httpAddr)
			g.UseBinary(b.bin(target, "gateway"), harness.QEMU(t, target)...)
			cols := map[string]*harness.Collector{}
			for stream := range fx.Streams {
				cols[stream] = harness.Collect(t, harness.Topic(ns, stream))
			}
			g.Start()
			for stream, c := range cols {
				g.Eventually(2*time.Minute, "the fixture's "+stream+" in Pulsar", func() bool { return c.Len() >= fx.total(stream) })
			}
			g.Eventually(time.Minute, "buffer drained", g.Drained)

			// New events continue the sequence after the old ones.
			const fresh = 20
			pub := harness.NewPublisher(t, mqttURL, fmt.Sprintf("fw-upgrade-%d", time.Now().UnixNano()))
			for n := 1; n <= fresh; n++ {
				pub.MustPublish(root+"/dock9/scanner/new", harness.ScanPayload("fw-new", n))
			}
			g.Eventually(time.Minute, "the new scans in Pulsar", func() bool { return cols["scans"].Len() >= fx.total("scans")+fresh })

			for stream, c := range cols {
				want := map[string]int{}
				for p, n := range fx.Streams[stream] {
					want[p] = n
				}
				if stream == "scans" {
					want["fw-new"] = fresh
				}
				msgs := c.Messages()
				if probs := harness.Summarise(msgs).ExactlyOnce(want, true); probs != "" {
					t.Errorf("%s: %s", stream, probs)
				}
				for _, m := range msgs {
					if m.Err == nil && m.Event.Gateway != fx.Gateway {
						t.Errorf("%s: event of gateway %q, want %q", stream, m.Event.Gateway, fx.Gateway)
						break
					}
				}
			}
			g.Stop()
			if got, want := storeFormat(t, path), currentFormat(t); got != want {
				t.Errorf("after a run the file has format %d, want the current %d", got, want)
			}
		})
	}
}

// fixtureConfig is the gateway config of the fixture writer and of the
// drain test: the harness's, with no limits, so that a fixture never
// expires however old it gets.
func fixtureConfig(id, bufferPath, mqttURL, clientID, root, pulsarURL, adminURL, namespace, httpAddr string) string {
	return harness.GatewayYAML(harness.GatewayConfig{
		ID: id, BufferPath: bufferPath, MQTT: mqttURL, ClientID: clientID, Root: root,
		ServiceURL: pulsarURL, AdminURL: adminURL, Namespace: namespace, HTTP: httpAddr, LogLevel: "debug",
	})
}

// readingPayload is a sensor reading as the fixture writer publishes it.
func readingPayload(pub string, n int) []byte {
	return fmt.Appendf(nil, `{"value":%d.5,"ts":%q,"pub":%q,"n":%d}`, n, time.Now().UTC().Format(time.RFC3339Nano), pub, n)
}

// TestWriteBufferFixture writes testdata/buffer-format<N>.{db.gz,json} with
// the host build of this tree; it runs only with -write-fixture.
func TestWriteBufferFixture(t *testing.T) {
	if !*writeFixture {
		t.Skip("writes the buffer fixture of the current format; run with -write-fixture")
	}
	bin, err := harness.Binary("gateway")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "buffer.db")
	mqttURL := testenv.MQTT(t)
	closed := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t)) // the uplink never answers
	root := fmt.Sprintf("fw/fixture-%d", time.Now().UnixNano())
	httpAddr := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	fx := fixture{
		Gateway: "fixture-dock01",
		Streams: map[string]map[string]int{
			"scans":     {"fx-scanner-1": 120, "fx-scanner-2": 80},
			"telemetry": {"fx-sensor": 50},
		},
	}
	cfg := fixtureConfig(fx.Gateway, path, mqttURL, fmt.Sprintf("%s-%d", fx.Gateway, time.Now().UnixNano()), root,
		"pulsar://"+closed, "http://"+closed, "public/default", httpAddr)
	g := harness.NewGateway(t, dir, cfg, httpAddr)
	g.Start()
	pub := harness.NewPublisher(t, mqttURL, fmt.Sprintf("fw-fixture-%d", time.Now().UnixNano()))
	for p, n := range fx.Streams["scans"] {
		for i := 1; i <= n; i++ {
			pub.MustPublish(fmt.Sprintf("%s/dock1/scanner/%s", root, p), harness.ScanPayload(p, i))
		}
	}
	for p, n := range fx.Streams["telemetry"] {
		for i := 1; i <= n; i++ {
			pub.MustPublish(fmt.Sprintf("%s/sensor/%s", root, p), readingPayload(p, i))
		}
	}
	g.Eventually(time.Minute, "every event buffered", func() bool {
		st, ok := g.Status()
		if !ok {
			return false
		}
		for stream := range fx.Streams {
			s, ok := st.Stream(stream)
			if !ok || s.Depth != int64(fx.total(stream)) {
				return false
			}
		}
		return true
	})
	g.Stop()
	if _, err := run(dir, nil, bin, "buffer", "compact", path); err != nil {
		t.Fatal(err)
	}
	version, err := run(dir, nil, bin, "version")
	if err != nil {
		t.Fatal(err)
	}
	fx.Format = storeFormat(t, path)
	fx.WrittenBy = strings.TrimSpace(version)
	if desc, err := run(testenv.RepoRoot(), nil, "git", "describe", "--tags", "--always", "--dirty"); err == nil {
		fx.Source = strings.TrimSpace(desc)
	}
	fx.WrittenAt = time.Now().UTC().Truncate(time.Second)
	name := filepath.Join("testdata", fmt.Sprintf("buffer-format%d", fx.Format))

	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out, err := os.Create(name + ".db.gz")
	if err != nil {
		t.Fatal(err)
	}
	zw, _ := gzip.NewWriterLevel(out, gzip.BestCompression)
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	manifest, err := json.MarshalIndent(fx, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name+".json", append(manifest, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s.db.gz (%d bytes of store, format %d) and %s.json", name, len(data), fx.Format, name)
}
