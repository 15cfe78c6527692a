package mqttbroker

import (
	"net"
	"testing"
	"time"

	"github.com/edgegw/gateway/drivers"
	"github.com/edgegw/gateway/test/testenv"
	"github.com/edgegw/gateway/units"
)

func brokerMetricValues(t *testing.T, b *Broker) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, m := range b.Metrics() {
		if m.Help == "" || m.Labels != nil {
			t.Fatalf("%+v: want help and no labels", m)
		}
		if want := map[string]drivers.MetricKind{
			"edge_gateway_broker_open_connections":          drivers.Gauge,
			"edge_gateway_broker_refused_connections_total": drivers.Counter,
		}[m.Name]; m.Kind != want {
			t.Fatalf("%s: kind %v, want %v", m.Name, m.Kind, want)
		}
		out[m.Name] = m.Value
	}
	if len(out) != 2 {
		t.Fatalf("metrics %v, want 2", out)
	}
	return out
}

func TestMetrics(t *testing.T) {
	// Before Start (the gateway describes the set from such a Broker).
	if got := brokerMetricValues(t, new(Broker)); got["edge_gateway_broker_open_connections"] != 0 || got["edge_gateway_broker_refused_connections_total"] != 0 {
		t.Fatalf("metrics of a broker not started: %v", got)
	}
	cfg := anonConfig()
	cfg.MaxConnections = 2
	cfg.ConnectTimeout = units.Duration(time.Minute)
	b, _ := startBrokerLog(t, cfg)
	var conns []net.Conn
	for range 3 {
		if c, err := dialOrReset(t, b.Addr()); err == nil {
			conns = append(conns, c)
		}
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	testenv.Eventually(t, 5*time.Second, "1 refused", func() bool { return b.devices.Refused() == 1 })
	testenv.Eventually(t, 5*time.Second, "2 open", func() bool { return b.devices.Open() == 2 })
	got := brokerMetricValues(t, b)
	if got["edge_gateway_broker_open_connections"] != 2 || got["edge_gateway_broker_refused_connections_total"] != 1 {
		t.Fatalf("metrics %v, want 2 open and 1 refused", got)
	}
}
