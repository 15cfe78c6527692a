package edge

import (
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgegw/gateway/buffer"
	"github.com/edgegw/gateway/drivers"
	"github.com/edgegw/gateway/drivers/mqttbroker"
	"github.com/edgegw/gateway/edge/config"
	"github.com/edgegw/gateway/uplink"
)

// bufferCollector exports the buffer's O(1) counters at scrape time.
type bufferCollector struct{ db *buffer.DB }

var (
	descDepth  = prometheus.NewDesc("edge_gateway_buffer_events", "Events held in the buffer, per stream.", []string{"stream"}, nil)
	descBytes  = prometheus.NewDesc("edge_gateway_buffer_bytes", "Payload bytes held in the buffer, per stream.", []string{"stream"}, nil)
	descOldest = prometheus.NewDesc("edge_gateway_buffer_oldest_event_age_seconds", "Age of the oldest buffered event, per stream.", []string{"stream"}, nil)
	descNext   = prometheus.NewDesc("edge_gateway_buffer_next_seq", "The seq the next event of the stream will get.", []string{"stream"}, nil)
	descAcked  = prometheus.NewDesc("edge_gateway_buffer_acked_seq", "Highest seq acknowledged by the uplink.", []string{"stream"}, nil)
	descDrops  = prometheus.NewDesc("edge_gateway_buffer_dropped_events_total", "Events dropped by the buffer's limits, per stream and reason.", []string{"stream", "reason"}, nil)
	descFile   = prometheus.NewDesc("edge_gateway_buffer_file_bytes", "Size of the buffer file.", nil, nil)
	descLive   = prometheus.NewDesc("edge_gateway_buffer_live_bytes", "Payload bytes held across all streams.", nil, nil)
	descWrote  = prometheus.NewDesc("edge_gateway_buffer_storage_written_bytes_total", "Bytes the buffer had written to storage (its journal's pages, its commits' pages and compactions) since the gateway started: the wear on the SD card.", nil, nil)
	descJWrote = prometheus.NewDesc("edge_gateway_buffer_journal_written_bytes_total", "Of edge_gateway_buffer_storage_written_bytes_total, the bytes written to the buffer's ingest journal since the gateway started.", nil, nil)
	descQuar   = prometheus.NewDesc("edge_gateway_quarantine_events", "Inputs held in quarantine.", nil, nil)
	// The number of times the store was opened, persisted: a count, so a
	// counter (not a gauge named _count, a suffix Prometheus keeps for
	// histograms and summaries). increase() over it counts reboots; its
	// value is the boot the gateway stamps on events now.
	descBoot  = prometheus.NewDesc("edge_gateway_boots_total", "Boots of the gateway on this store: the boot counter its events carry.", nil, nil)
	descRecov = prometheus.NewDesc("edge_gateway_buffer_recovered_total", "Times a bad store file was moved aside and replaced.", nil, nil)
)

func (c *bufferCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descDepth, descBytes, descOldest, descNext, descAcked, descDrops, descFile, descLive, descWrote, descJWrote, descQuar, descBoot, descRecov} {
		ch <- d
	}
}

func (c *bufferCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.db.Stats()
	for _, s := range st.Streams {
		n := s.Config.Name
		ch <- prometheus.MustNewConstMetric(descDepth, prometheus.GaugeValue, float64(s.Depth), n)
		ch <- prometheus.MustNewConstMetric(descBytes, prometheus.GaugeValue, float64(s.Bytes), n)
		ch <- prometheus.MustNewConstMetric(descOldest, prometheus.GaugeValue, s.OldestAge.Seconds(), n)
		ch <- prometheus.MustNewConstMetric(descNext, prometheus.GaugeValue, float64(s.NextSeq), n)
		ch <- prometheus.MustNewConstMetric(descAcked, prometheus.GaugeValue, float64(s.AckedSeq), n)
		ch <- prometheus.MustNewConstMetric(descDrops, prometheus.CounterValue, float64(s.Drops.Overflow), n, buffer.ReasonOverflow)
		ch <- prometheus.MustNewConstMetric(descDrops, prometheus.CounterValue, float64(s.Drops.TTL), n, buffer.ReasonTTL)
		ch <- prometheus.MustNewConstMetric(descDrops, prometheus.CounterValue, float64(s.Drops.Budget), n, buffer.ReasonBudget)
	}
	ch <- prometheus.MustNewConstMetric(descFile, prometheus.GaugeValue, float64(st.FileSize))
	ch <- prometheus.MustNewConstMetric(descLive, prometheus.GaugeValue, float64(st.LiveBytes))
	ch <- prometheus.MustNewConstMetric(descWrote, prometheus.CounterValue, float64(st.WrittenBytes))
	ch <- prometheus.MustNewConstMetric(descJWrote, prometheus.CounterValue, float64(st.JournalWrittenBytes))
	ch <- prometheus.MustNewConstMetric(descQuar, prometheus.GaugeValue, float64(st.Quarantined))
	ch <- prometheus.MustNewConstMetric(descBoot, prometheus.CounterValue, float64(st.Boot))
	ch <- prometheus.MustNewConstMetric(descRecov, prometheus.CounterValue, float64(st.Recovered))
}

// uplinkCollector exports each stream's forwarder state at scrape time,
// from the running pipeline's uplink client. Its counters restart when a
// reload builds a new client (rate() handles the reset). A configured
// stream without a forwarder yet (the dedup check has not passed) shows as
// not connected.
//
// It also exports the embedded broker's metrics (brokerCollector), being
// the collector of the running pipeline that handler() registers.
type uplinkCollector struct{ g *Gateway }

var (
	descUpConnected = prometheus.NewDesc("edge_gateway_uplink_connected", "1 when the stream's Pulsar producer is open, else 0.", []string{"stream"}, nil)
	descUpSince     = prometheus.NewDesc("edge_gateway_uplink_state_since_timestamp_seconds", "When edge_gateway_uplink_connected last changed (Unix time); 0 when unknown.", []string{"stream"}, nil)
	descUpSent      = prometheus.NewDesc("edge_gateway_uplink_sent_events_total", "Events handed to the Pulsar producer, re-sends included.", []string{"stream"}, nil)
	descUpResent    = prometheus.NewDesc("edge_gateway_uplink_resent_events_total", "Events sent again after a reconnect.", []string{"stream"}, nil)
	descUpReceipts  = prometheus.NewDesc("edge_gateway_uplink_receipts_total", "Successful Pulsar receipts.", []string{"stream"}, nil)
	descUpDups      = prometheus.NewDesc("edge_gateway_uplink_duplicate_receipts_total", "Receipts for events the broker dropped as duplicates (already persisted).", []string{"stream"}, nil)
	descUpAcked     = prometheus.NewDesc("edge_gateway_uplink_acked_events_total", "Events acknowledged by Pulsar and released from the buffer; rate() is the acks per second.", []string{"stream"}, nil)
	descUpBytes     = prometheus.NewDesc("edge_gateway_uplink_sent_bytes_total", "Payload bytes handed to the Pulsar producer.", []string{"stream"}, nil)
	descUpWireBytes = prometheus.NewDesc("edge_gateway_uplink_wire_bytes_total", "Bytes the Pulsar producer wrote to the connection (batched, compressed, with framing): what the link carries.", []string{"stream"}, nil)
	descUpInFlight  = prometheus.NewDesc("edge_gateway_uplink_in_flight_events", "Events sent and awaiting a receipt.", []string{"stream"}, nil)
	descUpSessions  = prometheus.NewDesc("edge_gateway_uplink_sessions_total", "Producers created.", []string{"stream"}, nil)
	descUpErrors    = prometheus.NewDesc("edge_gateway_uplink_errors_total", "Producer sessions (or attempts to start one) that ended in an error.", []string{"stream"}, nil)
	descUpUndec     = prometheus.NewDesc("edge_gateway_uplink_undecodable_events_total", "Buffered entries whose envelope could not be decoded (sent without key and event time).", []string{"stream"}, nil)
)

func (c uplinkCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descUpConnected, descUpSince, descUpSent, descUpResent, descUpReceipts, descUpDups, descUpAcked, descUpBytes, descUpWireBytes, descUpInFlight, descUpSessions, descUpErrors, descUpUndec} {
		ch <- d
	}
	brokerCollector(c).Describe(ch)
}

func (c uplinkCollector) Collect(ch chan<- prometheus.Metric) {
	g := c.g
	g.mu.Lock()
	pipe, cfg := g.pipe, g.cfg
	g.mu.Unlock()
	var streams []uplink.StreamState
	if pipe != nil && pipe.up != nil {
		streams = pipe.up.Streams()
	}
	collectUplink(ch, streams, cfg)
	brokerCollector(c).Collect(ch)
}

// collectUplink sends the metrics of the forwarders' states, and
// edge_gateway_uplink_connected 0 for each stream of cfg (if not nil)
// without a forwarder.
func collectUplink(ch chan<- prometheus.Metric, streams []uplink.StreamState, cfg *config.Config) {
	seen := map[string]bool{}
	for _, s := range streams {
		n := s.Stream
		seen[n] = true
		gauge := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, n)
		}
		counter := func(d *prometheus.Desc, v uint64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), n)
		}
		gauge(descUpConnected, b2f(s.Connected))
		gauge(descUpSince, unixSeconds(s.Since))
		gauge(descUpInFlight, float64(s.InFlight))
		counter(descUpSent, s.Sent)
		counter(descUpResent, s.Resent)
		counter(descUpReceipts, s.Receipts)
		counter(descUpDups, s.Duplicates)
		counter(descUpAcked, s.Acked)
		counter(descUpBytes, s.SentBytes)
		counter(descUpWireBytes, s.WireBytes)
		counter(descUpSessions, s.Sessions)
		counter(descUpErrors, s.Errors)
		counter(descUpUndec, s.Undecodable)
	}
	if cfg == nil {
		return
	}
	for _, s := range cfg.Streams {
		if !seen[s.Name] {
			ch <- prometheus.MustNewConstMetric(descUpConnected, prometheus.GaugeValue, 0, s.Name)
		}
	}
}

// metricsSource is what the gateway asks of a driver (or of the embedded
// broker) whose metrics it exports: an explicit list, each metric named,
// documented and typed, literally, where the driver builds it. See
// drivers.Metric for the contract (the set is fixed from the first call).
// Drivers without the method export nothing of their own.
type metricsSource interface {
	Metrics() []drivers.Metric
}

// metricSet is the registered form of a metricsSource's metrics: one
// descriptor per name, read from a first Metrics() call, with constant
// labels (source=… for a driver) added.
type metricSet struct {
	descs map[string]*metricDesc
	all   []*prometheus.Desc // in first-listed order
}

type metricDesc struct {
	desc   *prometheus.Desc
	kind   drivers.MetricKind
	help   string
	labels []string
}

var (
	legacyName  = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
	legacyLabel = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
)

func newMetricSet(ms []drivers.Metric, constLabels prometheus.Labels) (*metricSet, error) {
	s := &metricSet{descs: map[string]*metricDesc{}}
	for _, m := range ms {
		labels := labelNames(m.Labels)
		if d, ok := s.descs[m.Name]; ok {
			if err := d.check(m, labels); err != nil {
				return nil, err
			}
			continue
		}
		if m.Kind != drivers.Counter && m.Kind != drivers.Gauge {
			return nil, fmt.Errorf("metric %q: unknown kind %v", m.Name, m.Kind)
		}
		// client_golang accepts any UTF-8 name now; ours keep to the
		// classic charset, which every scraper and PromQL take unquoted.
		if !legacyName.MatchString(m.Name) {
			return nil, fmt.Errorf("metric %q: name outside [a-zA-Z_:][a-zA-Z0-9_:]*", m.Name)
		}
		for _, l := range labels {
			if !legacyLabel.MatchString(l) {
				return nil, fmt.Errorf("metric %q: label %q outside [a-zA-Z_][a-zA-Z0-9_]*", m.Name, l)
			}
		}
		// NewDesc records other faults (a duplicate or reserved label) in
		// the descriptor; Register reports them.
		d := &metricDesc{desc: prometheus.NewDesc(m.Name, m.Help, labels, constLabels), kind: m.Kind, help: m.Help, labels: labels}
		s.descs[m.Name] = d
		s.all = append(s.all, d.desc)
	}
	return s, nil
}

// check reports whether m, listed again, matches the first listing of its
// name.
func (d *metricDesc) check(m drivers.Metric, labels []string) error {
	if m.Kind != d.kind || m.Help != d.help || !slices.Equal(labels, d.labels) {
		return fmt.Errorf("metric %q: kind, help or label names differ from its first listing (%v %v, want %v %v)", m.Name, m.Kind, labels, d.kind, d.labels)
	}
	return nil
}

func (s *metricSet) describe(ch chan<- *prometheus.Desc) {
	for _, d := range s.all {
		ch <- d
	}
}

// send sends ms as constant metrics. A metric outside the set, or listed
// with another kind, help or labels, breaks the driver's contract: it is
// sent as an invalid metric, which fails Gather (tests) and is left out of
// a scrape (promhttp.ContinueOnError) without hiding the rest.
func (s *metricSet) send(ch chan<- prometheus.Metric, ms []drivers.Metric) {
	for _, m := range ms {
		labels := labelNames(m.Labels)
		d, ok := s.descs[m.Name]
		var err error
		if !ok {
			err = fmt.Errorf("metric %q was not in the first Metrics() list, so it is not registered", m.Name)
		} else {
			err = d.check(m, labels)
		}
		if err == nil {
			vt := prometheus.GaugeValue
			if m.Kind == drivers.Counter {
				vt = prometheus.CounterValue
			}
			var cm prometheus.Metric
			if cm, err = prometheus.NewConstMetric(d.desc, vt, m.Value, labelValues(m.Labels)...); err == nil {
				ch <- cm
				continue
			}
		}
		ch <- prometheus.NewInvalidMetric(prometheus.NewInvalidDesc(err), err)
	}
}

func labelNames(ls []drivers.Label) []string {
	if len(ls) == 0 {
		return nil
	}
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = l.Name
	}
	return out
}

func labelValues(ls []drivers.Label) []string {
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = l.Value
	}
	return out
}

// driverMetrics exports the Metrics() of every running driver that has the
// method (drivers/mqtt, gpio, i2c), each metric with the label source (the
// config's sources[].name), while the driver's pipeline runs.
//
// Each running driver is a checked collector of its own (sourceCollector),
// registered when the driver starts and unregistered when its pipeline
// ends. Why not one collector for all drivers: a collector's Describe must
// send the super-set of its descriptors, the same for its whole life
// (prometheus.Collector), but which drivers run, and so which metrics
// exist, is known only when a pipeline starts and changes at every reload.
// One collector would have to be "unchecked" (Describe sending nothing),
// which turns off every check at registration: an invalid name, or a name
// that clashes with another metric's labels or help, would only show up as
// a failed scrape. Registered per driver, with source as a constant label,
// Registry.Register checks the driver's names and labels against
// everything else on the registry when the driver starts, and Unregister
// drops its series exactly when it goes.
type driverMetrics struct {
	reg *prometheus.Registry
	log *slog.Logger // nil: slog.Default(), which cmd/gateway sets

	mu      sync.Mutex
	running map[string]*sourceCollector // by source name
}

// sourceCollector is the metrics of one running driver.
type sourceCollector struct {
	set *metricSet
	src metricsSource
}

func (c *sourceCollector) Describe(ch chan<- *prometheus.Desc) { c.set.describe(ch) }
func (c *sourceCollector) Collect(ch chan<- prometheus.Metric) { c.set.send(ch, c.src.Metrics()) }

func newDriverMetrics(reg *prometheus.Registry) *driverMetrics {
	return &driverMetrics{reg: reg, running: map[string]*sourceCollector{}}
}

// add exports d's Metrics() as source's, if d has that method. The returned
// func removes them again (and only them: a later add for the same source
// is left alone). A driver whose metrics the registry refuses (a programming
// error the tests catch) runs without them; the error is logged.
func (s *driverMetrics) add(source, kind string, d any) (remove func()) {
	src, ok := d.(metricsSource)
	if !ok {
		return func() {}
	}
	c, err := s.register(source, src)
	if err != nil {
		log := s.log
		if log == nil {
			log = slog.Default()
		}
		log.Error("driver metrics not exported", "source", source, "driver", kind, "err", err)
		return func() {}
	}
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.running[source] == c {
			s.reg.Unregister(c)
			delete(s.running, source)
		}
	}
}

func (s *driverMetrics) register(source string, src metricsSource) (*sourceCollector, error) {
	set, err := newMetricSet(src.Metrics(), prometheus.Labels{"source": source})
	if err != nil {
		return nil, err
	}
	c := &sourceCollector{set: set, src: src}
	s.mu.Lock()
	defer s.mu.Unlock()
	// On a reload the new pipeline's driver may start before the old one's
	// remove has run (it runs on a goroutine of its own, see observe): the
	// new one replaces it.
	if old := s.running[source]; old != nil {
		s.reg.Unregister(old)
		delete(s.running, source)
	}
	if err := s.reg.Register(c); err != nil {
		return nil, err
	}
	s.running[source] = c
	return c, nil
}

// brokerCollector exports the metrics of the running pipeline's embedded
// broker (mqttbroker.Broker.Metrics), when it has one. The set of metrics
// does not depend on the broker's state, so it is described, and checked
// at registration, from a Broker that has not started.
type brokerCollector struct{ g *Gateway }

var brokerMetricSet = sync.OnceValues(func() (*metricSet, error) {
	return newMetricSet(new(mqttbroker.Broker).Metrics(), nil)
})

func (c brokerCollector) Describe(ch chan<- *prometheus.Desc) {
	set, err := brokerMetricSet()
	if err != nil {
		ch <- prometheus.NewInvalidDesc(err)
		return
	}
	set.describe(ch)
}

func (c brokerCollector) Collect(ch chan<- prometheus.Metric) {
	set, err := brokerMetricSet()
	if err != nil {
		return
	}
	c.g.mu.Lock()
	pipe := c.g.pipe
	c.g.mu.Unlock()
	if pipe == nil || pipe.broker == nil {
		return
	}
	// A build tagged noembedded has a stand-in without metrics.
	if src, ok := any(pipe.broker).(metricsSource); ok {
		set.send(ch, src.Metrics())
	}
}

// unixSeconds is t as Unix seconds, 0 for the zero time.
func unixSeconds(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return float64(t.UnixNano()) / 1e9
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
