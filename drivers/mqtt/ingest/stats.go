package ingest

import (
	"maps"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/edgegw/gateway/drivers"
)

// Stats are an MQTT source's counters since it was made, as a plain value.
// Counters only grow. Metrics exports them to /metrics under names of their
// own. The Ingest counts all but Link, which its transport fills in.
type Stats struct {
	Received    uint64            // messages handed over by the client
	Redelivered uint64            // of those, flagged DUP by the broker
	Accepted    uint64            // events the sink committed
	Quarantined map[string]uint64 // messages quarantined, by reason (Reason* constants)
	Acked       uint64            // messages acknowledged (accepted + quarantined + rate limited, all QoS)
	RateLimited uint64            // messages acknowledged and dropped by the per-source rate limit
	RateReports uint64            // "dropped" events reporting rate-limited messages
	Batches     uint64            // successful Emit calls
	FullRetries uint64            // Emit calls refused with drivers.ErrFull (ingest paused)
	Refused     uint64            // messages refused to their MQTT 5 device (quota exceeded) because the sink was full
	EmitErrors  uint64            // Emit or Quarantine calls failed otherwise (retried)
	Paused      bool              // now waiting for the sink to take a batch
	Pending     int               // messages received, not yet acked

	// Loss upstream of the gateway seen in devices' own counters (see
	// FieldMap.Counter).
	DeviceLost   uint64 // messages missing from device counters (jumps)
	DeviceGaps   uint64 // gap events (reason device-counter) reporting them
	DeviceResets uint64 // device counter restarts seen (rebased, no gap)

	Link // the transport's
}

// Link are the transport's counters: its connection to the broker and the
// broker's own drops (drivers/mqtt's BrokerDrops). The embedded broker's
// source attaches once and has no broker of its own to lose messages.
type Link struct {
	Connects     uint64 // successful connections, first and re-
	ConnectFails uint64 // failed first-connection attempts (retried with backoff)
	Lost         uint64 // connections lost
	Subscribes   uint64 // subscribe rounds the broker answered (one per connection)
	SubRefused   uint64 // subscriptions the broker refused

	BrokerDropped  uint64 // messages the site broker reported dropped (rises of its counter)
	BrokerGaps     uint64 // gap events (reason broker-dropped) reporting them
	BrokerReadings uint64 // readings of the broker's drop counter taken
}

type counters struct {
	received, redelivered, accepted, acked, batches atomic.Uint64
	rateLimited, rateReports, fullRetries           atomic.Uint64
	emitErrors, refused                             atomic.Uint64
	paused                                          atomic.Bool
	pending                                         atomic.Int64
	deviceLost, deviceGaps, deviceResets            atomic.Uint64

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

// Stats returns a snapshot of the counters (Link left zero). It is safe to
// call at any time, also concurrently with Work, and on a nil Ingest (all
// zero).
func (in *Ingest) Stats() Stats {
	if in == nil {
		return Stats{Quarantined: map[string]uint64{}}
	}
	c := &in.stats
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
		Paused: c.paused.Load(), Pending: int(c.pending.Load()),
		DeviceLost: c.deviceLost.Load(), DeviceGaps: c.deviceGaps.Load(), DeviceResets: c.deviceResets.Load(),
	}
}

// quarantineReasons are the Reason* constants a message can be quarantined
// for: edge_gateway_mqtt_quarantined_total has a series for each from the
// start.
var quarantineReasons = []string{
	ReasonOversize, ReasonEmpty, ReasonMalformed, ReasonNotObject,
	ReasonMissingField, ReasonBadField, ReasonUnsubscribed, ReasonInvalidEvent,
}

// Metrics lists an MQTT source's metrics for the gateway's /metrics (which
// adds the label source): both transports export this one set, so a
// dashboard reads them alike. The names are the product's: do not rename
// them.
func Metrics(s Stats) []drivers.Metric {
	counter := drivers.CounterMetric[uint64]
	paused := 0.0
	if s.Paused {
		paused = 1
	}
	ms := []drivers.Metric{
		counter("edge_gateway_mqtt_received_total", "Messages the MQTT client handed to the driver.", s.Received),
		counter("edge_gateway_mqtt_redelivered_total", "Received messages the broker flagged DUP (a re-delivery).", s.Redelivered),
		counter("edge_gateway_mqtt_accepted_total", "Events the sink committed.", s.Accepted),
		counter("edge_gateway_mqtt_acked_total", "Messages acknowledged to the broker (accepted, quarantined or rate limited; all QoS).", s.Acked),
		counter("edge_gateway_mqtt_rate_limited_total", "Messages acknowledged and dropped by the per-source rate limit.", s.RateLimited),
		counter("edge_gateway_mqtt_rate_reports_total", "Events emitted to report rate-limited messages.", s.RateReports),
		counter("edge_gateway_mqtt_batches_total", "Successful Emit calls (batches committed).", s.Batches),
		counter("edge_gateway_mqtt_full_retries_total", "Emit calls refused because the stream was full (ingest paused and retried).", s.FullRetries),
		counter("edge_gateway_mqtt_refused_total", "Messages refused to their MQTT 5 device (quota exceeded) because the stream was full.", s.Refused),
		counter("edge_gateway_mqtt_emit_errors_total", "Emit or Quarantine calls that failed for another reason (retried).", s.EmitErrors),
		counter("edge_gateway_mqtt_connects_total", "Successful connections to the broker, the first and reconnections.", s.Connects),
		counter("edge_gateway_mqtt_connect_fails_total", "Failed first-connection attempts (retried with backoff).", s.ConnectFails),
		counter("edge_gateway_mqtt_lost_total", "Connections to the broker lost.", s.Lost),
		counter("edge_gateway_mqtt_subscribes_total", "Subscribe rounds the broker answered (one per connection).", s.Subscribes),
		counter("edge_gateway_mqtt_sub_refused_total", "Subscriptions the broker refused.", s.SubRefused),
		drivers.GaugeMetric("edge_gateway_mqtt_paused", "1 while the driver waits for the sink to take a batch (stream full), else 0.", paused),
		drivers.GaugeMetric("edge_gateway_mqtt_pending", "Messages received and not yet acknowledged.", s.Pending),
		counter("edge_gateway_mqtt_broker_dropped_total", "Messages the site broker reported dropped (rises of its $SYS drop counter).", s.BrokerDropped),
		counter("edge_gateway_mqtt_broker_gaps_total", "Gap events (reason broker-dropped) reporting the site broker's drops.", s.BrokerGaps),
		counter("edge_gateway_mqtt_broker_readings_total", "Readings of the site broker's drop counter taken.", s.BrokerReadings),
		counter("edge_gateway_mqtt_device_lost_total", "Messages missing from devices' own counters (jumps).", s.DeviceLost),
		counter("edge_gateway_mqtt_device_gaps_total", "Gap events (reason device-counter) reporting them.", s.DeviceGaps),
		counter("edge_gateway_mqtt_device_resets_total", "Device counter restarts seen (rebased, no gap).", s.DeviceResets),
	}
	// Every known reason, zeros included, then any other the map holds.
	reasons := slices.Clone(quarantineReasons)
	for r := range s.Quarantined {
		if !slices.Contains(quarantineReasons, r) {
			reasons = append(reasons, r)
		}
	}
	slices.Sort(reasons[len(quarantineReasons):])
	for _, r := range reasons {
		ms = append(ms, drivers.Metric{
			Name: "edge_gateway_mqtt_quarantined_total", Help: "Messages quarantined (acknowledged, stored aside, not emitted), by reason.",
			Kind: drivers.Counter, Labels: []drivers.Label{{Name: "reason", Value: r}}, Value: float64(s.Quarantined[r]),
		})
	}
	return ms
}
