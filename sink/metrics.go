package sink

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Stats is a snapshot of the sink's counters since it was created.
type Stats struct {
	Consumed     uint64 // messages received from Pulsar
	Acked        uint64 // messages acknowledged (written or dead-lettered)
	RowsWritten  uint64 // rows Cassandra accepted (a batch counts its rows)
	Retries      uint64 // failed write attempts that were retried
	DeadLettered uint64 // messages published to the dead-letter topic
}

// metrics are the sink's Prometheus series, all prefixed edge_sink_, plus
// atomic mirrors for Stats.
type metrics struct {
	consumed     prometheus.Counter
	acked        prometheus.Counter
	rows         *prometheus.CounterVec
	retries      *prometheus.CounterVec
	deadLettered *prometheus.CounterVec
	latency      prometheus.Histogram
	inflight     prometheus.Gauge

	nConsumed, nAcked, nRows, nRetries, nDead atomic.Uint64
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		consumed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "edge_sink_messages_consumed_total",
			Help: "Messages received from the event topics.",
		}),
		acked: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "edge_sink_messages_acked_total",
			Help: "Messages acknowledged to Pulsar after their rows were written or they were dead-lettered.",
		}),
		rows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edge_sink_rows_written_total",
			Help: "Rows written to Cassandra, by table.",
		}, []string{"table"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edge_sink_write_retries_total",
			Help: "Failed Cassandra writes that were retried, by error class (transient, setup).",
		}, []string{"class"}),
		deadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edge_sink_messages_dead_lettered_total",
			Help: "Messages published to the dead-letter topic, by reason (decode, invalid, write).",
		}, []string{"reason"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "edge_sink_write_latency_seconds",
			Help:    "Latency of one Cassandra write request (a row or an unlogged batch), successful or not.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "edge_sink_writes_in_flight",
			Help: "Cassandra write requests in flight, including those waiting to retry.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.consumed, m.acked, m.rows, m.retries, m.deadLettered, m.latency, m.inflight)
	}
	return m
}

func (m *metrics) stats() Stats {
	return Stats{
		Consumed:     m.nConsumed.Load(),
		Acked:        m.nAcked.Load(),
		RowsWritten:  m.nRows.Load(),
		Retries:      m.nRetries.Load(),
		DeadLettered: m.nDead.Load(),
	}
}

func (m *metrics) incConsumed() { m.consumed.Inc(); m.nConsumed.Add(1) }

func (m *metrics) incAcked() { m.acked.Inc(); m.nAcked.Add(1) }

func (m *metrics) addRows(table string, n int) {
	m.rows.WithLabelValues(table).Add(float64(n))
	m.nRows.Add(uint64(n))
}

func (m *metrics) incRetry(c ErrorClass) {
	m.retries.WithLabelValues(c.String()).Inc()
	m.nRetries.Add(1)
}

func (m *metrics) incDead(reason string) {
	m.deadLettered.WithLabelValues(reason).Inc()
	m.nDead.Add(1)
}
