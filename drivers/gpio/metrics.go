package gpio

import "github.com/edgegw/gateway/drivers"

// Metrics lists the driver's metrics for the gateway's /metrics (which adds
// the label source). The names are the product's: do not rename them.
func (d *Driver) Metrics() []drivers.Metric {
	s := d.Stats()
	counter := drivers.CounterMetric[int64]
	return []drivers.Metric{
		counter("edge_gateway_gpio_edges_total", "Edges accepted, all inputs.", s.Edges),
		counter("edge_gateway_gpio_bounces_total", "Edges ignored inside a debounce window.", s.Bounces),
		counter("edge_gateway_gpio_glitches_total", "Edges after which the level had not changed (edge: both).", s.Glitches),
		counter("edge_gateway_gpio_emitted_total", "Events the sink committed.", s.Emitted),
		counter("edge_gateway_gpio_emit_retries_total", "Failed Emit calls, each retried after a backoff.", s.EmitRetries),
		counter("edge_gateway_gpio_dropped_total", "Events dropped because the driver's queue was full.", s.Dropped),
		counter("edge_gateway_gpio_unsent_total", "Events still queued when a run ended (not emitted).", s.Unsent),
		counter("edge_gateway_gpio_output_errors_total", "Failed writes to an output pin (retried).", s.OutputErrors),
	}
}
