package status

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgegw/gateway/test/harness"
)

// The metrics of a real gateway after scans went through the real Mosquitto
// to the real Pulsar: every family the operability issue asks for is there
// with the values the traffic implies (this also proves the pipeline's
// hooks are wired: per-source counts, driver stats, receipt latency).
func TestMetricsOfARealGateway(t *testing.T) {
	s := harness.NewSetup(t, "metrics", harness.Options{})
	s.Gateway.Start()
	pub := harness.NewPublisher(t, s.MQTT, s.ID+"-pub")
	const scans = 5
	for n := 1; n <= scans; n++ {
		pub.MustPublish(s.ScanTopic("dock1", "scn-01"), harness.ScanPayload("pub", n))
	}
	pub.MustPublish(s.ScanTopic("dock1", "scn-01"), []byte(`{"barcode": "unterminated`))
	s.Gateway.Eventually(time.Minute, "the scans acknowledged by Pulsar", func() bool {
		return s.Gateway.Metric("edge_gateway_uplink_acked_events_total", `stream="scans"`) >= scans
	})

	page := metricsPage(t, s.Gateway.HTTP)
	for _, tt := range []struct {
		sample string
		want   func(float64) bool
		what   string
	}{
		{`edge_gateway_ingest_events_total{result="accepted",stream="scans"}`, eq(scans), "accepted per stream"},
		{`edge_gateway_source_events_total{result="accepted",source="mosquitto"}`, eq(scans), "accepted per source"},
		{`edge_gateway_source_events_total{result="quarantined",source="mosquitto"}`, eq(1), "quarantined per source"},
		{`edge_gateway_buffer_events{stream="scans"}`, eq(0), "buffer depth"},
		{`edge_gateway_buffer_dropped_events_total{reason="overflow",stream="telemetry"}`, eq(0), "drops"},
		{`edge_gateway_uplink_connected{stream="scans"}`, eq(1), "uplink state"},
		{`edge_gateway_uplink_state_since_timestamp_seconds{stream="scans"}`, func(v float64) bool {
			return v > float64(time.Now().Add(-5*time.Minute).Unix()) && v <= float64(time.Now().Unix()+1)
		}, "uplink since"},
		{`edge_gateway_uplink_acked_events_total{stream="scans"}`, eq(scans), "acks"},
		{`edge_gateway_uplink_receipt_latency_seconds_count{stream="scans"}`, func(v float64) bool { return v >= scans }, "receipt latency histogram"},
		{`edge_gateway_mqtt_received_total{source="mosquitto"}`, eq(scans + 1), "MQTT driver stats"},
		{`edge_gateway_mqtt_acked_total{source="mosquitto"}`, eq(scans + 1), "MQTT driver acks"},
		{`edge_gateway_quarantine_events`, eq(1), "quarantine"},
	} {
		v, ok := page[tt.sample]
		if !ok {
			t.Errorf("%s: no sample %s", tt.what, tt.sample)
			continue
		}
		if !tt.want(v) {
			t.Errorf("%s: %s = %v", tt.what, tt.sample, v)
		}
	}
	for _, family := range []string{"edge_gateway_build_info{", "process_resident_memory_bytes ", "go_goroutines "} {
		found := false
		for k := range page {
			found = found || strings.HasPrefix(k+" ", family)
		}
		if !found {
			t.Errorf("no %s", strings.TrimSpace(family))
		}
	}
}

func eq(want float64) func(float64) bool { return func(v float64) bool { return v == want } }

// metricsPage reads /metrics into sample (name{labels}) → value.
func metricsPage(t *testing.T, addr string) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}
