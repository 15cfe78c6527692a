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
	ExtraStreams   string // appended to the streams list (YAML list items, indented 2)
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
	cfg := GatewayYAML(GatewayConfig{
		ID: s.ID, BufferPath: filepath.Join(s.Dir, "buffer.db"), DiskBudget: "256MiB", ScansMaxEvents: o.ScansMaxEvents,
		MQTT: mqttURL, Root: s.Root, ServiceURL: pulsarURL, AdminURL: adminURL, Namespace: s.Namespace,
		HTTP: httpAddr, Extra: o.Extra, ExtraSources: o.ExtraSources, ExtraStreams: o.ExtraStreams,
	})
	s.Gateway = NewGateway(t, s.Dir, cfg, httpAddr)
	return s
}

// GatewayConfig is what the test gateways' configs differ in. Each has the
// streams scans (reject-new) and telemetry (drop-oldest) and one MQTT
// source: scanners publish to <Root>/<dock>/scanner/<device>, sensors to
// <Root>/sensor/<device>, with attributes n and pub.
type GatewayConfig struct {
	ID             string
	BufferPath     string
	DiskBudget     string // "" = none
	ScansMaxEvents int    // 0 = unlimited
	MQTT           string // broker URL
	ClientID       string // "" = ID
	Root           string // MQTT topic root
	ServiceURL     string // Pulsar
	AdminURL       string
	Namespace      string // tenant/namespace
	HTTP           string // http.listen
	LogLevel       string // "" = info
	ExtraSources   string // appended to the sources list (YAML list items, indented 2)
	ExtraStreams   string // appended to the streams list (YAML list items, indented 2)
	Extra          string // appended YAML (top-level keys)
}

// GatewayYAML renders c as a gateway config file.
func GatewayYAML(c GatewayConfig) string {
	if c.ClientID == "" {
		c.ClientID = c.ID
	}
	if c.LogLevel == "" {
		c.LogLevel = "info"
	}
	budget, maxEvents := "", ""
	if c.DiskBudget != "" {
		budget = "\n  disk_budget: " + c.DiskBudget
	}
	if c.ScansMaxEvents > 0 {
		maxEvents = fmt.Sprintf("\n    max_events: %d", c.ScansMaxEvents)
	}
	tenant, ns, _ := strings.Cut(c.Namespace, "/")
	return fmt.Sprintf(`
gateway:
  id: %[1]s
buffer:
  path: %[2]s%[3]s
streams:
  - name: scans
    priority: 10
    overflow: reject-new%[4]s
  - name: telemetry
    priority: 1
    overflow: drop-oldest
%[16]ssources:
  - name: mosquitto
    driver: mqtt
    mqtt:
      brokers: [%[5]s]
      client_id: %[6]s
      broker_inflight: 1000
      subscriptions:
        - topic: %[7]s/+dock/scanner/+device
          kind: scan
          stream: scans
          source: "{dock}-{device}"
          fields: {time: ts, attrs: [n, pub]}
        - topic: %[7]s/sensor/+device
          kind: reading
          stream: telemetry
          source: "{device}"
          fields: {time: ts, attrs: [n, pub]}
%[8]s
uplink:
  service_url: %[9]s
  admin_url: %[10]s
  tenant: %[11]s
  namespace: %[12]s
  send_timeout: 10s
  operation_timeout: 10s
http:
  listen: %[13]s
log:
  level: %[14]s
%[15]s`, c.ID, c.BufferPath, budget, maxEvents, c.MQTT, c.ClientID, c.Root, c.ExtraSources,
		c.ServiceURL, c.AdminURL, tenant, ns, c.HTTP, c.LogLevel, c.Extra, c.ExtraStreams)
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
