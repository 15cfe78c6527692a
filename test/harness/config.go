package harness

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgegw/gateway/test/testenv"
)

// Setup is one test's gateway against the shared Mosquitto and Pulsar: its
// own namespace (deduplication on), topic root, client ID and buffer file.
type Setup struct {
	ID        string // gateway ID
	Namespace string // Pulsar namespace
	Root      string // MQTT topic root of this test
	MQTT      string // broker URL
	Dir       string
	Gateway   *Gateway
}

// Options tweak the generated config.
type Options struct {
	ScansMaxEvents int    // 0 = unlimited
	Extra          string // appended YAML (top-level keys)
	ExtraSources   string // appended to the sources list (YAML list items, indented 2)
}

// NewSetup writes a gateway config for the test and returns the stopped gateway.
func NewSetup(t testing.TB, name string, o Options) *Setup {
	t.Helper()
	mqttURL := testenv.MQTT(t)
	pulsarURL, adminURL := testenv.Pulsar(t)
	stamp := time.Now().UnixNano()
	s := &Setup{
		ID:        fmt.Sprintf("%s-%d", name, stamp%1e9),
		Namespace: Namespace(t, name),
		Root:      fmt.Sprintf("e2e/%s-%d", name, stamp),
		MQTT:      mqttURL,
		Dir:       t.TempDir(),
	}
	httpAddr := fmt.Sprintf("127.0.0.1:%d", FreePort(t))
	ns := strings.SplitN(s.Namespace, "/", 2)
	cfg := fmt.Sprintf(`
gateway:
  id: %[1]s
buffer:
  path: %[2]s
  disk_budget: 256MiB
streams:
  - name: scans
    priority: 10
    overflow: reject-new
    max_events: %[9]d
  - name: telemetry
    priority: 1
    overflow: drop-oldest
sources:
  - name: mosquitto
    driver: mqtt
    mqtt:
      brokers: [%[3]s]
      client_id: %[1]s
      broker_inflight: 1000
      subscriptions:
        - topic: %[4]s/+dock/scanner/+device
          kind: scan
          stream: scans
          source: "{dock}-{device}"
          fields: {time: ts, attrs: [n, pub]}
        - topic: %[4]s/sensor/+device
          kind: reading
          stream: telemetry
          source: "{device}"
          fields: {time: ts, attrs: [n, pub]}
%[12]s
uplink:
  service_url: %[5]s
  admin_url: %[6]s
  tenant: %[7]s
  namespace: %[8]s
  send_timeout: 10s
  operation_timeout: 10s
http:
  listen: %[10]s
log:
  level: info
%[11]s`, s.ID, filepath.Join(s.Dir, "buffer.db"), mqttURL, s.Root, pulsarURL, adminURL, ns[0], ns[1], o.ScansMaxEvents, httpAddr, o.Extra, o.ExtraSources)
	s.Gateway = NewGateway(t, s.Dir, cfg, httpAddr)
	return s
}

// Topic is the Pulsar topic of a stream of this setup.
func (s *Setup) Topic(stream string) string { return Topic(s.Namespace, stream) }

// ScanTopic is the MQTT topic a scanner publishes to.
func (s *Setup) ScanTopic(dock, device string) string {
	return fmt.Sprintf("%s/%s/scanner/%s", s.Root, dock, device)
}

// ScanPayload is a scan message as the tests publish it: pub identifies the
// publisher and n its message counter.
func ScanPayload(pub string, n int) []byte {
	return []byte(fmt.Sprintf(`{"barcode":"00%018d","symbology":"GS1-128","ts":%q,"pub":%q,"n":%d}`,
		n, time.Now().UTC().Format(time.RFC3339Nano), pub, n))
}
