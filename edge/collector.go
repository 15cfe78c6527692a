package edge

import (
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
