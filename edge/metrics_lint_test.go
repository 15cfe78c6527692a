//go:build !noembedded

package edge

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"

	"github.com/edgegw/gateway/drivers/gpio"
	"github.com/edgegw/gateway/drivers/i2c"
	"github.com/edgegw/gateway/drivers/mqtt"
	"github.com/edgegw/gateway/drivers/mqttbroker"
	"github.com/edgegw/gateway/uplink"
)

// gatewayMetricNames are the names of every edge_gateway_* metric family
// the gateway exports (histograms once, by their base name). Dashboards and
// alerts use them: a change here is a change of the product's interface,
// to be made on purpose and mentioned in the README and the release notes.
var gatewayMetricNames = []string{
	"edge_gateway_boots_total",
	"edge_gateway_broker_open_connections",
	"edge_gateway_broker_refused_connections_total",
	"edge_gateway_buffer_acked_seq",
	"edge_gateway_buffer_bytes",
	"edge_gateway_buffer_commit_duration_seconds",
	"edge_gateway_buffer_dropped_events_total",
	"edge_gateway_buffer_events",
	"edge_gateway_buffer_file_bytes",
	"edge_gateway_buffer_live_bytes",
	"edge_gateway_buffer_storage_written_bytes_total",
	"edge_gateway_buffer_journal_written_bytes_total",
	"edge_gateway_buffer_next_seq",
	"edge_gateway_buffer_oldest_event_age_seconds",
	"edge_gateway_buffer_recovered_total",
	"edge_gateway_build_info",
	"edge_gateway_config_info",
	"edge_gateway_gpio_bounces_total",
	"edge_gateway_gpio_dropped_total",
	"edge_gateway_gpio_edges_total",
	"edge_gateway_gpio_emit_retries_total",
	"edge_gateway_gpio_emitted_total",
	"edge_gateway_gpio_glitches_total",
	"edge_gateway_gpio_output_errors_total",
	"edge_gateway_gpio_unsent_total",
	"edge_gateway_i2c_dropped_total",
	"edge_gateway_i2c_emit_retries_total",
	"edge_gateway_i2c_emitted_total",
	"edge_gateway_i2c_read_errors_total",
	"edge_gateway_i2c_reads_total",
	"edge_gateway_i2c_reopens_total",
	"edge_gateway_i2c_unsent_total",
	"edge_gateway_ingest_events_total",
	"edge_gateway_ingest_quarantined_total",
	"edge_gateway_mqtt_accepted_total",
	"edge_gateway_mqtt_acked_total",
	"edge_gateway_mqtt_batches_total",
	"edge_gateway_mqtt_broker_dropped_total",
	"edge_gateway_mqtt_broker_gaps_total",
	"edge_gateway_mqtt_broker_readings_total",
	"edge_gateway_mqtt_connect_fails_total",
	"edge_gateway_mqtt_connects_total",
	"edge_gateway_mqtt_device_gaps_total",
	"edge_gateway_mqtt_device_lost_total",
	"edge_gateway_mqtt_device_resets_total",
	"edge_gateway_mqtt_emit_errors_total",
	"edge_gateway_mqtt_full_retries_total",
	"edge_gateway_mqtt_lost_total",
	"edge_gateway_mqtt_paused",
	"edge_gateway_mqtt_pending",
	"edge_gateway_mqtt_quarantined_total",
	"edge_gateway_mqtt_rate_limited_total",
	"edge_gateway_mqtt_rate_reports_total",
	"edge_gateway_mqtt_received_total",
	"edge_gateway_mqtt_redelivered_total",
	"edge_gateway_mqtt_refused_total",
	"edge_gateway_mqtt_sub_refused_total",
	"edge_gateway_mqtt_subscribes_total",
	"edge_gateway_quarantine_events",
	"edge_gateway_rule_dropped_events_total",
	"edge_gateway_rule_errors_total",
	"edge_gateway_rule_evaluations_total",
	"edge_gateway_rule_firings_total",
	"edge_gateway_rule_summarized_events_total",
	"edge_gateway_source_events_total",
	"edge_gateway_uplink_acked_events_total",
	"edge_gateway_uplink_connected",
	"edge_gateway_uplink_duplicate_receipts_total",
	"edge_gateway_uplink_errors_total",
	"edge_gateway_uplink_in_flight_events",
	"edge_gateway_uplink_receipt_latency_seconds",
	"edge_gateway_uplink_receipts_total",
	"edge_gateway_uplink_resent_events_total",
	"edge_gateway_uplink_sent_bytes_total",
	"edge_gateway_uplink_wire_bytes_total",
	"edge_gateway_uplink_sent_events_total",
	"edge_gateway_uplink_sessions_total",
	"edge_gateway_uplink_state_since_timestamp_seconds",
	"edge_gateway_uplink_undecodable_events_total",
}

// uplinkStates is a collector of collectUplink over fixed forwarder
// states: the gateway's uplink metrics without a Pulsar client.
type uplinkStates []uplink.StreamState

func (s uplinkStates) Describe(ch chan<- *prometheus.Desc) { prometheus.DescribeByCollect(s, ch) }
func (s uplinkStates) Collect(ch chan<- prometheus.Metric) { collectUplink(ch, s, nil) }

// fullGatewayMetrics is every metric family a gateway exports (but the
// Pulsar client's own pulsar_client_*, which are not ours): its registry as
// Run and the HTTP server leave it, with a running driver of each kind,
// an embedded broker, a forwarder, and a value in each labelled family.
func fullGatewayMetrics(t *testing.T) []*dto.MetricFamily {
	t.Helper()
	g, _ := pageGateway(t)
	g.handler() // registers the pipeline's collectors
	// A driver's metrics read only its counters: a zero driver has them.
	for kind, d := range map[string]any{"mqtt": &mqtt.Driver{}, "mqtt-embedded": &mqttbroker.Source{}, "gpio": &gpio.Driver{}, "i2c": &i2c.Driver{}} {
		t.Cleanup(g.metrics.drivers.add(kind+"-1", kind, d))
		if g.metrics.drivers.running[kind+"-1"] == nil {
			t.Fatalf("the %s driver's metrics were not registered", kind)
		}
	}
	b, err := mqttbroker.New(mqttbroker.Config{Listen: "127.0.0.1:0", AllowAnonymous: true}, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	g.mu.Lock()
	g.pipe = &pipeline{broker: b}
	g.mu.Unlock()

	m := g.metrics
	m.ingest.WithLabelValues("scans", resultAccepted).Inc()
	m.quarantined.WithLabelValues("site/dock1/scanner/x").Inc()
	m.bySource.WithLabelValues("dock1-in", resultAccepted).Inc()
	m.observeReceipt("scans", 0.01)
	m.observeCommit(1, time.Millisecond)
	g.setConfigState("7", "applied")
	g.ruleCounters.get("missort").Fired.Add(1)

	up := prometheus.NewRegistry()
	up.MustRegister(uplinkStates{{Stream: "forwarded", Connected: true, Sent: 3, Acked: 2, InFlight: 1}})
	mfs, err := prometheus.Gatherers{m.reg, up}.Gather()
	if err != nil {
		t.Fatal(err)
	}
	return mfs
}

// The gateway exports exactly the metric names dashboards know.
func TestGatewayMetricNames(t *testing.T) {
	var got []string
	for _, mf := range fullGatewayMetrics(t) {
		if strings.HasPrefix(mf.GetName(), "edge_") {
			got = append(got, mf.GetName())
		}
	}
	want := slices.Sorted(slices.Values(gatewayMetricNames))
	if !slices.Equal(got, want) {
		t.Errorf("metric names changed:\n%s", nameDiff(got, want))
	}
}

// Every metric the gateway exports, the Go and process collectors' too,
// passes promlint.
func TestGatewayMetricsLint(t *testing.T) {
	lint(t, fullGatewayMetrics(t))
}

func lint(t *testing.T, mfs []*dto.MetricFamily) {
	t.Helper()
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	if len(mfs) < len(gatewayMetricNames) {
		t.Fatalf("linted %d metric families, fewer than the gateway's own", len(mfs))
	}
}

// nameDiff lists the names only in got (+) and only in want (-).
func nameDiff(got, want []string) string {
	var b strings.Builder
	for _, n := range got {
		if !slices.Contains(want, n) {
			b.WriteString("+ " + n + "\n")
		}
	}
	for _, n := range want {
		if !slices.Contains(got, n) {
			b.WriteString("- " + n + "\n")
		}
	}
	return b.String()
}
