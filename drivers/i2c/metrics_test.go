package i2c

import (
	"testing"

	"github.com/edgegw/gateway/drivers"
)

func TestMetrics(t *testing.T) {
	d := &Driver{}
	c := &d.stats
	c.reads.Add(5)
	c.readErrors.Add(2)
	c.reopens.Add(1)
	c.emitted.Add(4)
	c.emitRetries.Add(3)
	c.dropped.Add(6)
	c.unsent.Add(7)
	want := map[string]float64{
		"edge_gateway_i2c_reads_total": 5, "edge_gateway_i2c_read_errors_total": 2, "edge_gateway_i2c_reopens_total": 1,
		"edge_gateway_i2c_emitted_total": 4, "edge_gateway_i2c_emit_retries_total": 3, "edge_gateway_i2c_dropped_total": 6,
		"edge_gateway_i2c_unsent_total": 7,
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
