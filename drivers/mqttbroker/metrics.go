package mqttbroker

import "github.com/edgegw/gateway/drivers"

// Metrics lists the broker's metrics for the gateway's /metrics: its device
// listener's open connections and the connections it refused for
// MaxConnections. Before Start (and on a zero Broker) both are 0. The
// names are the product's: do not rename them.
func (b *Broker) Metrics() []drivers.Metric {
	var open, refused float64
	b.mu.Lock()
	l := b.devices
	b.mu.Unlock()
	if l != nil {
		open, refused = float64(l.Open()), float64(l.Refused())
	}
	return []drivers.Metric{
		drivers.GaugeMetric("edge_gateway_broker_open_connections",
			"Device connections open at the embedded broker, those still in their TLS handshake or CONNECT included.", open),
		drivers.CounterMetric("edge_gateway_broker_refused_connections_total",
			"Device connections the embedded broker closed on accept because max_connections were open.", refused),
	}
}
