package gpio

import (
	"testing"

	"github.com/edgegw/gateway/drivers"
)

func TestMetrics(t *testing.T) {
	d := &Driver{}
	c := &d.stats
	c.edges.Add(5)
	c.bounces.Add(2)
	c.glitches.Add(1)
	c.emitted.Add(4)
	c.emitRetries.Add(3)
	c.dropped.Add(6)
	c.unsent.Add(7)
	c.outputErrors.Add(8)
	want := map[string]float64{
		"edge_gateway_gpio_edges_total": 5, "edge_gateway_gpio_bounces_total": 2, "edge_gateway_gpio_glitches_total": 1,
		"edge_gateway_gpio_emitted_total": 4, "edge_gateway_gpio_emit_retries_total": 3, "edge_gateway_gpio_dropped_total": 6,
		"edge_gateway_gpio_unsent_total": 7, "edge_gateway_gpio_output_errors_total": 8,
	}
	ms := d.Metrics()
	if len(ms) != len(want) {
		t.Fatalf("%d metrics, want %d", len(ms), len(want))
	}
	for _, m := range ms {
		if v, ok := want[m.Name]; !ok || v != m.Value || m.Kind != drivers.Counter || m.Help == "" || m.Labels != nil {
			t.Errorf("%+v, want value %v (known name: %v), a counter with help and no labels", m, v, ok)
		}
	}
}
