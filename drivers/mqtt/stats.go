package mqtt

import (
	"sync/atomic"

	"github.com/edgegw/gateway/drivers"
	"github.com/edgegw/gateway/drivers/mqtt/ingest"
)

// linkCounters are the driver's counters of its connections to the broker
// and of the broker's own drops (ingest.Link).
type linkCounters struct {
	connects, connectFails, lost, subscribes, subRefused atomic.Uint64
	brokerDropped, brokerGaps, brokerReadings            atomic.Uint64
}

// Stats returns a snapshot of the driver's counters. It is safe to call at
// any time, also concurrently with Run, and on a zero Driver.
func (d *Driver) Stats() Stats {
	s := d.in.Stats()
	l := &d.link
	s.Link = ingest.Link{
		Connects: l.connects.Load(), ConnectFails: l.connectFails.Load(), Lost: l.lost.Load(),
		Subscribes: l.subscribes.Load(), SubRefused: l.subRefused.Load(),
		BrokerDropped: l.brokerDropped.Load(), BrokerGaps: l.brokerGaps.Load(), BrokerReadings: l.brokerReadings.Load(),
	}
	return s
}

// Metrics lists the driver's metrics for the gateway's /metrics (which adds
// the label source): the set every MQTT source exports (ingest.Metrics).
func (d *Driver) Metrics() []drivers.Metric { return ingest.Metrics(d.Stats()) }
