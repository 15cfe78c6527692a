package firmware

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgegw/gateway/test/harness"
)

// The smallest build (-tags nogpio,noembedded) says which part it lacks:
// configs with GPIO or I2C sources fail validation, and a config with an
// embedded broker fails at start, each naming the build tag.
func TestBuildTagsNoGPIONoEmbedded(t *testing.T) {
	b := firmware(t)
	bin := filepath.Join(t.TempDir(), "gateway")
	if _, err := run(b.src, []string{"CGO_ENABLED=0"}, "go", "build", "-trimpath", "-tags", "nogpio,noembedded", "-o", bin, "./cmd/gateway"); err != nil {
		t.Fatal(err)
	}

	// configs/dev.yaml has a simulated GPIO and a simulated I2C source.
	out, err := exec.Command(bin, "validate", filepath.Join(b.src, "configs", "dev.yaml")).CombinedOutput()
	if err == nil {
		t.Fatalf("validate dev.yaml passed in a nogpio build:\n%s", out)
	}
	for _, want := range []string{
		"gpio: this build has no gpio driver (built with -tags nogpio)",
		"i2c: this build has no i2c driver (built with -tags nogpio)",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("validate dev.yaml: output lacks %q:\n%s", want, out)
		}
	}
	// An MQTT-only config is fine. (Not configs/warehouse.yaml: it has a
	// GPIO stack light that its rules drive.)
	mqttOnly := filepath.Join(t.TempDir(), "mqtt-only.yaml")
	if err := os.WriteFile(mqttOnly, []byte(`
gateway: {id: tags-test}
buffer: {path: /var/lib/edgegw/buffer.db}
streams: [{name: scans}]
sources:
  - name: site
    driver: mqtt
    mqtt:
      brokers: [tcp://mqtt.site.internal:1883]
      subscriptions: [{topic: "x/+device", qos: 1, kind: scan, stream: scans, source: "{device}"}]
uplink: {service_url: "pulsar://pulsar.example:6650", admin_url: "http://pulsar.example:8080"}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "validate", mqttOnly).CombinedOutput(); err != nil {
		t.Errorf("validate an MQTT-only config: %v\n%s", err, out)
	}

	dir := t.TempDir()
	cfg := filepath.Join(dir, "gateway.yaml")
	closed := harness.FreePort(t)
	if err := os.WriteFile(cfg, fmt.Appendf(nil, `
gateway: {id: tags-test}
buffer: {path: %s}
streams: [{name: scans}]
broker: {listen: "127.0.0.1:%d", allow_anonymous: true}
sources:
  - name: devices
    driver: mqtt
    mqtt:
      brokers: [embedded]
      subscriptions: [{topic: "x/+device", kind: scan, stream: scans, source: "{device}"}]
uplink: {service_url: "pulsar://127.0.0.1:%d", admin_url: "http://127.0.0.1:%d"}
http: {listen: "127.0.0.1:%d"}
`, filepath.Join(dir, "buffer.db"), harness.FreePort(t), closed, closed, harness.FreePort(t)), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err = exec.CommandContext(ctx, bin, "-config", cfg).CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("gateway with a broker: section kept running in a noembedded build:\n%s", out)
	}
	want := "this build has no embedded broker (built with -tags noembedded)"
	if err == nil || !strings.Contains(string(out), want) {
		t.Errorf("gateway with a broker: section: err %v, output lacks %q:\n%s", err, want, out)
	}
}
