package ingest

import (
	"slices"
	"testing"

	"github.com/edgegw/gateway/drivers"
)

// metricKey is a metric's name and label values, e.g.
// "edge_gateway_mqtt_quarantined_total{reason=empty}".
func metricKey(m drivers.Metric) string {
	k := m.Name
	for _, l := range m.Labels {
		k += "{" + l.Name + "=" + l.Value + "}"
	}
	return k
}

func metricValues(t *testing.T, ms []drivers.Metric) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, m := range ms {
		if _, dup := out[metricKey(m)]; dup {
			t.Fatalf("%s listed twice", metricKey(m))
		}
		out[metricKey(m)] = m.Value
	}
	return out
}

func TestMetrics(t *testing.T) {
	d := &Ingest{}
	link := Link{}
	metrics := func() []drivers.Metric {
		s := d.Stats()
		s.Link = link
		return Metrics(s)
	}
	before := metrics()
	c := &d.stats
	c.received.Add(9)
	c.accepted.Add(7)
	link.ConnectFails = 2
	c.pending.Add(3)
	c.paused.Store(true)
	c.deviceLost.Add(4)
	c.quarantine(ReasonMalformed)
	c.quarantine(ReasonMalformed)
	c.quarantine("brand_new") // a reason missing from quarantineReasons
	after := metrics()

	got := metricValues(t, after)
	for k, want := range map[string]float64{
		"edge_gateway_mqtt_received_total":                                9,
		"edge_gateway_mqtt_accepted_total":                                7,
		"edge_gateway_mqtt_connect_fails_total":                           2,
		"edge_gateway_mqtt_pending":                                       3,
		"edge_gateway_mqtt_paused":                                        1,
		"edge_gateway_mqtt_device_lost_total":                             4,
		"edge_gateway_mqtt_acked_total":                                   0,
		"edge_gateway_mqtt_quarantined_total{reason=malformed}":           2,
		"edge_gateway_mqtt_quarantined_total{reason=invalid_event}":       0,
		"edge_gateway_mqtt_quarantined_total{reason=brand_new}":           1,
		"edge_gateway_mqtt_quarantined_total{reason=" + ReasonEmpty + "}": 0,
	} {
		if v, ok := got[k]; !ok || v != want {
			t.Errorf("%s = %v (listed: %v), want %v", k, v, ok, want)
		}
	}
	// The set of names (and kinds) does not change with the values: the
	// gateway registers it from the first call.
	names := func(ms []drivers.Metric) []string {
		var out []string
		for _, m := range ms {
			out = append(out, m.Name+" "+m.Kind.String())
		}
		return slices.Compact(slices.Sorted(slices.Values(out)))
	}
	if !slices.Equal(names(before), names(after)) {
		t.Fatalf("names changed:\n%v\n%v", names(before), names(after))
	}
	if n := len(metricValues(t, before)); n != 23+len(quarantineReasons) {
		t.Fatalf("%d metrics on a new driver, want %d", n, 23+len(quarantineReasons))
	}
}
