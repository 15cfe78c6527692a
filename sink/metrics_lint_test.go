package sink

import (
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
)

// sinkMetricNames are the names of every edge_sink_* metric family the
// sink exports (histograms once, by their base name). Dashboards and alerts
// use them: a change here is a change of the product's interface.
var sinkMetricNames = []string{
	"edge_sink_messages_acked_total",
	"edge_sink_messages_consumed_total",
	"edge_sink_messages_dead_lettered_total",
	"edge_sink_rows_written_total",
	"edge_sink_write_latency_seconds",
	"edge_sink_write_retries_total",
	"edge_sink_writes_in_flight",
}

// fullSinkMetrics is every metric family the sink exports but the Pulsar
// client's own pulsar_client_* (registered by Run, and not ours): its
// registry as cmd/sink builds it, with a value in each labelled family.
func fullSinkMetrics(t *testing.T) []*dto.MetricFamily {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s, err := New(DefaultConfig(), Options{Registerer: reg, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	s.m.incConsumed()
	s.m.addRows(TableEvents, 2)
	s.m.incRetry(Transient)
	s.m.incDead("decode")
	s.m.latency.Observe(0.003)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	return mfs
}

// The sink exports exactly the metric names dashboards know.
func TestSinkMetricNames(t *testing.T) {
	var got []string
	for _, mf := range fullSinkMetrics(t) {
		if strings.HasPrefix(mf.GetName(), "edge_") {
			got = append(got, mf.GetName())
		}
	}
	if want := slices.Sorted(slices.Values(sinkMetricNames)); !slices.Equal(got, want) {
		t.Errorf("metric names:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// Every metric the sink exports, the Go and process collectors' too,
// passes promlint.
func TestSinkMetricsLint(t *testing.T) {
	mfs := fullSinkMetrics(t)
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	if len(mfs) < len(sinkMetricNames) {
		t.Fatalf("linted %d metric families, fewer than the sink's own", len(mfs))
	}
}
