package i2c

import "github.com/edgegw/gateway/drivers"

// Metrics lists the driver's metrics for the gateway's /metrics (which adds
// the label source). The names are the product's: do not rename them.
func (d *Driver) Metrics() []drivers.Metric {
	s := d.Stats()
	counter := drivers.CounterMetric[int64]
	return []drivers.Metric{
		counter("edge_gateway_i2c_reads_total", "Successful sensor readings.", s.Reads),
		counter("edge_gateway_i2c_read_errors_total", "Failed reads (and failed reopens of the bus), each retried.", s.ReadErrors),
		counter("edge_gateway_i2c_reopens_total", "Times the bus was closed to be reopened.", s.Reopens),
		counter("edge_gateway_i2c_emitted_total", "Events the sink committed.", s.Emitted),
		counter("edge_gateway_i2c_emit_retries_total", "Failed Emit calls, each retried after a backoff.", s.EmitRetries),
		counter("edge_gateway_i2c_dropped_total", "Events dropped because too many were pending.", s.Dropped),
		counter("edge_gateway_i2c_unsent_total", "Events pending when a run ended (not emitted).", s.Unsent),
	}
}
