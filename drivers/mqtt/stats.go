package mqtt

import (
	"maps"
	"sync"
	"sync/atomic"
)

// Stats are the driver's counters since New, as a plain value the caller
// can export (e.g. as edge_gateway_mqtt_*_total). Counters only grow.
type Stats struct {
	Received     uint64            // messages handed over by the client
	Redelivered  uint64            // of those, flagged DUP by the broker
	Accepted     uint64            // events the sink committed
	Quarantined  map[string]uint64 // messages quarantined, by reason (Reason* constants)
	Acked        uint64            // messages acknowledged (accepted + quarantined + rate limited, all QoS)
	RateLimited  uint64            // messages acknowledged and dropped by the per-source rate limit
	RateReports  uint64            // "dropped" events reporting rate-limited messages
	Batches      uint64            // successful Emit calls
	FullRetries  uint64            // Emit calls refused with drivers.ErrFull (ingest paused)
	Refused      uint64            // messages refused to their MQTT 5 device (quota exceeded) because the sink was full
	EmitErrors   uint64            // Emit or Quarantine calls failed otherwise (retried)
	Connects     uint64            // successful connections, first and re-
	ConnectFails uint64            // failed first-connection attempts (retried with backoff)
	Lost         uint64            // connections lost
	Subscribes   uint64            // subscribe rounds the broker answered (one per connection)
	SubRefused   uint64            // subscriptions the broker refused
	Paused       bool              // now waiting for the sink to take a batch
	Pending      int               // messages received, not yet acked

	// Loss upstream of the gateway (see BrokerDrops and FieldMap.Counter).
	BrokerDropped  uint64 // messages the site broker reported dropped (rises of its counter)
	BrokerGaps     uint64 // gap events (reason broker-dropped) reporting them
	BrokerReadings uint64 // readings of the broker's drop counter taken
	DeviceLost     uint64 // messages missing from device counters (jumps)
	DeviceGaps     uint64 // gap events (reason device-counter) reporting them
	DeviceResets   uint64 // device counter restarts seen (rebased, no gap)
}

type counters struct {
	received, redelivered, accepted, acked, batches           atomic.Uint64
	rateLimited, rateReports, connectErrors                   atomic.Uint64
	fullRetries, emitErrors, connects, lost, subs, subRefused atomic.Uint64
	refused                                                   atomic.Uint64
	paused                                                    atomic.Bool
	pending                                                   atomic.Int64

	brokerDropped, brokerGaps, brokerReadings atomic.Uint64
	deviceLost, deviceGaps, deviceResets      atomic.Uint64
	// up is the upstream-loss state (device counters, broker drop watch),
	// kept here with its counters so that it needs no field of Driver.
	up upstream

	mu          sync.Mutex
	quarantined map[string]uint64
}

func (c *counters) quarantine(reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.quarantined == nil {
		c.quarantined = map[string]uint64{}
	}
	c.quarantined[reason]++
}

// Stats returns a snapshot of the counters. It is safe to call at any time,
// also concurrently with Run.
func (d *Driver) Stats() Stats {
	c := &d.stats
	c.mu.Lock()
	q := maps.Clone(c.quarantined)
	c.mu.Unlock()
	if q == nil {
		q = map[string]uint64{}
	}
	return Stats{
		Received: c.received.Load(), Redelivered: c.redelivered.Load(), Accepted: c.accepted.Load(),
		Quarantined: q, Acked: c.acked.Load(), Batches: c.batches.Load(),
		RateLimited: c.rateLimited.Load(), RateReports: c.rateReports.Load(),
		FullRetries: c.fullRetries.Load(), Refused: c.refused.Load(), EmitErrors: c.emitErrors.Load(),
		Connects: c.connects.Load(), ConnectFails: c.connectErrors.Load(), Lost: c.lost.Load(), Subscribes: c.subs.Load(), SubRefused: c.subRefused.Load(),
		Paused: c.paused.Load(), Pending: int(c.pending.Load()),
		BrokerDropped: c.brokerDropped.Load(), BrokerGaps: c.brokerGaps.Load(), BrokerReadings: c.brokerReadings.Load(),
		DeviceLost: c.deviceLost.Load(), DeviceGaps: c.deviceGaps.Load(), DeviceResets: c.deviceResets.Load(),
	}
}
