// Package mqtt is the MQTT input driver (registered as "mqtt"): a
// subscriber on a persistent session (fixed client ID, clean session off,
// manual acks, paho.mqtt.golang underneath) that turns each message into an
// event and acknowledges it only after the Sink has committed it.
//
// Flow: paho calls the handler for every PUBLISH in arrival order on its
// router goroutine (OrderMatters); the handler only stamps the receive time
// and enqueues. One batcher goroutine takes messages in that order, gathers
// a batch (up to ack_batch messages, for at most ack_window after the first,
// or until it holds broker_inflight QoS 1/2 messages, after which the broker
// sends no more), quarantines what does not parse, emits the rest with one
// Sink.Emit and then acks every message of the batch in order. A message is
// thus acked only after the commit that holds it, acks go out in
// commit-sized groups, and per-publisher order is kept into Emit.
//
// When Emit returns drivers.ErrFull the batcher retries with backoff and
// takes nothing new: nothing is acked, the broker's in-flight window fills
// and the broker holds the rest in the session. Malformed, oversize or
// unmatched payloads are quarantined and acked, so one poison message never
// blocks the session. Delivery is at least once: after a lost connection the
// broker redelivers what was not acked, and a message already emitted but
// whose ack died with the connection is emitted again (counted in
// Stats.Redelivered).
//
// Topic filters may name their wildcards ("site/+dock/scanner/+device"):
// the names become attributes and may appear in the source template
// ("{dock}-scanner"). Payloads are json, cbor, text or raw; see
// Subscription and FieldMap for the mapping, and DeviceTimeConfig for when a
// device timestamp becomes the event time.
//
// Example YAML:
//
//	brokers: [tcp://127.0.0.1:1883]
//	client_id: edgegw-dock7        # default edgegw-<gateway>
//	username: gateway
//	password_file: /etc/edgegw/mqtt.pass
//	ack_batch: 256
//	ack_window: 5ms
//	broker_inflight: 20            # Mosquitto's max_inflight_messages
//	max_payload: 64KiB
//	device_time: {max_past: 24h, max_future: 1h}
//	subscriptions:
//	  - topic: site/+dock/scanner/+device
//	    qos: 1
//	    kind: scan                 # stream defaults to "scans"
//	    source: "{dock}-scanner"
//	    format: json
//	    fields: {barcode: code, symbology: sym, time: ts, attrs: [battery]}
//	    keep_raw: true
//	  - topic: site/+dock/temp
//	    kind: reading
//	    stream: telemetry
//	    format: text
package mqtt
