package edge

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the gateway's Prometheus metrics, registered on a registry of
// the Gateway's own (no package-level state).
type metrics struct {
	reg         *prometheus.Registry
	ingest      *prometheus.CounterVec
	quarantined *prometheus.CounterVec
	configInfo  *prometheus.GaugeVec
	buildInfo   *prometheus.GaugeVec
}

func newMetrics() *metrics {
	reg := prometheus.NewRegistry()
	m := &metrics{
		reg: reg,
		ingest: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edge_gateway_ingest_events_total",
			Help: "Events handed to the buffer by result: accepted, rejected (stream full), duplicate (a re-delivered input already stored).",
		}, []string{"stream", "result"}),
		quarantined: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edge_gateway_ingest_quarantined_total",
			Help: "Inputs that failed to parse and went to quarantine, by source.",
		}, []string{"source"}),
		configInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "edge_gateway_config_info",
			Help: "The running config: version and state (applied, rejected, rolled-back).",
		}, []string{"version", "state"}),
		buildInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "edge_gateway_build_info",
			Help: "Build version and commit of the running binary.",
		}, []string{"version", "commit", "goversion"}),
	}
	reg.MustRegister(m.ingest, m.quarantined, m.configInfo, m.buildInfo,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}
