package edge

import (
	"reflect"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgegw/gateway/buffer"
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
	descQuar   = prometheus.NewDesc("edge_gateway_quarantine_events", "Inputs held in quarantine.", nil, nil)
	descBoot   = prometheus.NewDesc("edge_gateway_boot_count", "Boot counter of the store.", nil, nil)
	descRecov  = prometheus.NewDesc("edge_gateway_buffer_recovered_total", "Times a bad store file was moved aside and replaced.", nil, nil)
)

func (c *bufferCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descDepth, descBytes, descOldest, descNext, descAcked, descDrops, descFile, descLive, descQuar, descBoot, descRecov} {
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
	ch <- prometheus.MustNewConstMetric(descQuar, prometheus.GaugeValue, float64(st.Quarantined))
	ch <- prometheus.MustNewConstMetric(descBoot, prometheus.GaugeValue, float64(st.Boot))
	ch <- prometheus.MustNewConstMetric(descRecov, prometheus.CounterValue, float64(st.Recovered))
}

// uplinkCollector exports each stream's forwarder state at scrape time,
// from the running pipeline's uplink client. Its counters restart when a
// reload builds a new client (rate() handles the reset). A configured
// stream without a forwarder yet (the dedup check has not passed) shows as
// not connected.
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
	descUpInFlight  = prometheus.NewDesc("edge_gateway_uplink_in_flight_events", "Events sent and awaiting a receipt.", []string{"stream"}, nil)
	descUpSessions  = prometheus.NewDesc("edge_gateway_uplink_sessions_total", "Producers created.", []string{"stream"}, nil)
	descUpErrors    = prometheus.NewDesc("edge_gateway_uplink_errors_total", "Producer sessions (or attempts to start one) that ended in an error.", []string{"stream"}, nil)
	descUpUndec     = prometheus.NewDesc("edge_gateway_uplink_undecodable_events_total", "Buffered entries whose envelope could not be decoded (sent without key and event time).", []string{"stream"}, nil)
)

func (c uplinkCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descUpConnected, descUpSince, descUpSent, descUpResent, descUpReceipts, descUpDups, descUpAcked, descUpBytes, descUpInFlight, descUpSessions, descUpErrors, descUpUndec} {
		ch <- d
	}
}

func (c uplinkCollector) Collect(ch chan<- prometheus.Metric) {
	g := c.g
	g.mu.Lock()
	pipe, cfg := g.pipe, g.cfg
	g.mu.Unlock()
	seen := map[string]bool{}
	if pipe != nil && pipe.up != nil {
		for _, s := range pipe.up.Streams() {
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
			counter(descUpSessions, s.Sessions)
			counter(descUpErrors, s.Errors)
			counter(descUpUndec, s.Undecodable)
		}
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

// driverStats exports the Stats() of every running driver that has one
// (drivers/mqtt, gpio, i2c), found by reflection so that this package
// imports no driver it does not link: for a driver kind k and each field F
// of its Stats struct,
//
//   - an integer field is a counter edge_gateway_<k>_<f>_total{source},
//     except the fields named in driverGaugeFields (current values);
//   - a bool field is a gauge edge_gateway_<k>_<f>{source}, 0 or 1;
//   - a map[string]<integer> field is a counter with a "reason" label.
//
// <f> is F in snake case, source the config's source name. Drivers leave
// when their pipeline stops.
type driverStats struct {
	mu      sync.Mutex
	running map[string]*runningDriver // by source name
	descs   map[string]*prometheus.Desc
}

type runningDriver struct {
	kind  string
	stats reflect.Value // the Stats method
}

// driverGaugeFields are Stats fields that are current values, not totals.
var driverGaugeFields = map[string]bool{"Pending": true, "InFlight": true, "Queued": true}

func newDriverStats() *driverStats {
	return &driverStats{running: map[string]*runningDriver{}, descs: map[string]*prometheus.Desc{}}
}

// add exports d's Stats() as source's, if it has such a method returning a
// struct. The returned func removes it again (and only it: a later add for
// the same source is left alone).
func (s *driverStats) add(source, kind string, d any) (remove func()) {
	v := reflect.ValueOf(d)
	if !v.IsValid() {
		return func() {}
	}
	m := v.MethodByName("Stats")
	if !m.IsValid() || m.Type().NumIn() != 0 || m.Type().NumOut() != 1 || m.Type().Out(0).Kind() != reflect.Struct {
		return func() {}
	}
	r := &runningDriver{kind: kind, stats: m}
	s.mu.Lock()
	s.running[source] = r
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		if s.running[source] == r {
			delete(s.running, source)
		}
		s.mu.Unlock()
	}
}

// Describe sends nothing: the metrics depend on which drivers run (an
// unchecked collector).
func (s *driverStats) Describe(chan<- *prometheus.Desc) {}

func (s *driverStats) Collect(ch chan<- prometheus.Metric) {
	s.mu.Lock()
	running := make(map[string]*runningDriver, len(s.running))
	for k, v := range s.running {
		running[k] = v
	}
	s.mu.Unlock()
	for source, r := range running {
		v := r.stats.Call(nil)[0]
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			fv := v.Field(i)
			base := "edge_gateway_" + snake(r.kind) + "_" + snake(f.Name)
			switch {
			case fv.Kind() == reflect.Bool:
				ch <- prometheus.MustNewConstMetric(s.desc(base, r.kind, f.Name, false), prometheus.GaugeValue, b2f(fv.Bool()), source)
			case isInt(fv.Kind()) && driverGaugeFields[f.Name]:
				ch <- prometheus.MustNewConstMetric(s.desc(base, r.kind, f.Name, false), prometheus.GaugeValue, intValue(fv), source)
			case isInt(fv.Kind()):
				ch <- prometheus.MustNewConstMetric(s.desc(base+"_total", r.kind, f.Name, false), prometheus.CounterValue, intValue(fv), source)
			case fv.Kind() == reflect.Map && fv.Type().Key().Kind() == reflect.String && isInt(fv.Type().Elem().Kind()):
				d := s.desc(base+"_total", r.kind, f.Name, true)
				iter := fv.MapRange()
				for iter.Next() {
					ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, intValue(iter.Value()), source, iter.Key().String())
				}
			}
		}
	}
}

func (s *driverStats) desc(name, kind, field string, reason bool) *prometheus.Desc {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d, ok := s.descs[name]; ok {
		return d
	}
	labels := []string{"source"}
	if reason {
		labels = append(labels, "reason")
	}
	d := prometheus.NewDesc(name, "Stats()."+field+" of the "+kind+" driver (see its package documentation), per config source.", labels, nil)
	s.descs[name] = d
	return d
}

func isInt(k reflect.Kind) bool {
	switch k {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return true
	}
	return false
}

func intValue(v reflect.Value) float64 {
	if v.CanInt() {
		return float64(v.Int())
	}
	return float64(v.Uint())
}

// snake turns "FullRetries" into "full_retries" and "SubRefused" into
// "sub_refused"; runs of capitals stay together ("HTTPErrors" → "http_errors").
func snake(s string) string {
	var b strings.Builder
	rs := []rune(s)
	for i, r := range rs {
		if unicode.IsUpper(r) {
			if i > 0 && (unicode.IsLower(rs[i-1]) || (i+1 < len(rs) && unicode.IsLower(rs[i+1]) && unicode.IsUpper(rs[i-1]))) {
				b.WriteByte('_')
			}
			b.WriteRune(unicode.ToLower(r))
			continue
		}
		if r == '-' || r == ' ' || r == '.' {
			b.WriteByte('_')
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
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
