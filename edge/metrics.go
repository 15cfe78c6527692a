package edge

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the gateway's Prometheus metrics, registered on a registry of
// the Gateway's own (no package-level state), and the little state the
// status page keeps in memory: the latest scans, the per-minute backlog
// history and the config version and state.
type metrics struct {
	// ingestErrors counts inputs that failed to store (result "error" of
	// bySource), for probation to read without a scrape.
	ingestErrors atomic.Uint64
	reg          *prometheus.Registry
	ingest       *prometheus.CounterVec
	quarantined  *prometheus.CounterVec
	configInfo   *prometheus.GaugeVec
	buildInfo    *prometheus.GaugeVec
	// bySource counts ingest results per config source (sources[].name):
	// accepted, duplicate, rejected, quarantined, error.
	bySource *prometheus.CounterVec
	// receiptLatency is the uplink's send → Pulsar receipt latency.
	receiptLatency *prometheus.HistogramVec
	// commitDuration is the buffer's write transactions, begin to synced.
	commitDuration prometheus.Histogram

	scans   *scanRing
	history *backlogHistory
	drivers *driverMetrics

	cfgMu    sync.Mutex
	cfgState ConfigStatus

	// registerOnce registers the collectors that read the Gateway.
	registerOnce sync.Once
	// The backlog sampler, started with the HTTP server.
	samplerOnce sync.Once
	samplerStop chan struct{}
	samplerDone chan struct{}
}

// Ingest results, the values of the result label.
const (
	resultAccepted    = "accepted"
	resultDuplicate   = "duplicate"
	resultRejected    = "rejected"
	resultQuarantined = "quarantined"
	resultError       = "error"
)

func newMetrics() *metrics {
	reg := prometheus.NewRegistry()
	m := &metrics{
		reg: reg,
		ingest: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edge_gateway_ingest_events_total",
			Help: "Events handed to the buffer, per stream, by result: accepted, rejected (stream full; a batch its driver retries counts once), duplicate (a re-delivered input already stored).",
		}, []string{"stream", "result"}),
		quarantined: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edge_gateway_ingest_quarantined_total",
			Help: "Inputs that failed to parse and went to quarantine, by the source the driver named (the MQTT topic for MQTT).",
		}, []string{"source"}),
		bySource: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edge_gateway_source_events_total",
			Help: "Inputs per config source (sources[].name), by result: accepted, duplicate (re-delivery already stored), rejected (stream full; a batch its driver retries counts once), quarantined (failed to parse), error (store failure; retried).",
		}, []string{"source", "result"}),
		commitDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "edge_gateway_buffer_commit_duration_seconds",
			Help:    "Duration of the buffer's write transactions (appends, acks, drops), from begin to the end of the fsync: the storage's write latency, which bounds how fast inputs can be acknowledged.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}),
		receiptLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "edge_gateway_uplink_receipt_latency_seconds",
			Help:    "Time from handing an event to the Pulsar producer to its receipt, per stream.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"stream"}),
		configInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "edge_gateway_config_info",
			Help: "The running config: 1 for its version and state (e.g. applied, rejected, rolled-back); set by fleet config.",
		}, []string{"version", "state"}),
		buildInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "edge_gateway_build_info",
			Help: "Build version and commit of the running binary.",
		}, []string{"version", "commit", "goversion"}),
		scans:   newScanRing(recentScans),
		history: newBacklogHistory(historyLen),
	}
	m.drivers = newDriverMetrics(reg) // registers each running driver's own collector
	reg.MustRegister(m.ingest, m.quarantined, m.bySource, m.receiptLatency, m.commitDuration, m.configInfo, m.buildInfo,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// setConfigState records the running config's version and state (e.g.
// "applied", "rejected", "rolled-back") for /metrics, /status.json and the
// status page. Fleet config calls it whenever either changes.
func (g *Gateway) setConfigState(version, state string) {
	m := g.metrics
	m.cfgMu.Lock()
	defer m.cfgMu.Unlock()
	if m.cfgState.Version == version && m.cfgState.State == state {
		return
	}
	m.cfgState = ConfigStatus{Version: version, State: state, Since: g.now()}
	m.configInfo.Reset()
	m.configInfo.WithLabelValues(version, state).Set(1)
}

func (m *metrics) configStatus() ConfigStatus {
	m.cfgMu.Lock()
	defer m.cfgMu.Unlock()
	return m.cfgState
}

// observeReceipt is the uplink's receipt-latency hook.
func (m *metrics) observeCommit(_ int, took time.Duration) {
	m.commitDuration.Observe(took.Seconds())
}

func (m *metrics) observeReceipt(stream string, seconds float64) {
	m.receiptLatency.WithLabelValues(stream).Observe(seconds)
}

// sampleEvery is how often the backlog history takes a sample.
const sampleEvery = time.Minute
