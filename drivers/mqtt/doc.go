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
// Flood control: max_payload bounds every message (per subscription too);
// rate_limit (off by default) bounds the messages per second each source
// may turn into events, with a token bucket per source. Excess messages are
// acknowledged and dropped before they are parsed, so a flooding device
// can neither fill a stream (a full reject-new stream pauses ingest for
// every source, as above) nor starve the others behind it in the session:
// delaying them instead would hold the broker's in-flight window, which all
// topics share. Drops are never silent: Stats.RateLimited counts them, a
// warning names the source at most every 10s, and an event of kind
// "dropped" (reason "rate_limited", count, first/last time, topic) goes to
// the subscription's stream in the commit that acknowledges the source's
// first drops, then at most every 10s while it goes on. See RateLimit.
//
// Connection errors are logged with a hint at the setting to check (tls.ca_file
// for an unknown CA, username/password_file for "not Authorized", a client
// certificate when the broker's handshake refuses us); the password is never
// logged, and a password_file readable by others draws a warning.
//
// Topic filters may name their wildcards ("site/+dock/scanner/+device"):
// the names become attributes and may appear in the source template
// ("{dock}-scanner"). Payloads are json, cbor, text or raw; see
// Subscription and FieldMap for the mapping, and DeviceTimeConfig for when a
// device timestamp becomes the event time.
//
// Example YAML:
//
//	brokers: [ssl://broker.site:8883]
//	tls: {ca_file: /etc/edgegw/site-ca.pem, cert_file: /etc/edgegw/gw.crt, key_file: /etc/edgegw/gw.key}
//	client_id: edgegw-dock7        # default edgegw-<gateway>
//	username: gateway
//	password_file: /etc/edgegw/mqtt.pass
//	ack_batch: 0                   # auto: broker_inflight/2, at least 256
//	ack_window: 5ms
//	broker_inflight: 20            # Mosquitto's max_inflight_messages
//	max_payload: 64KiB
//	device_time: {max_past: 24h, max_future: 1h}
//	rate_limit: {events_per_second: 20, burst: 200}   # per source; off by default
//	subscriptions:
//	  - topic: site/+dock/scanner/+device
//	    qos: 1
//	    kind: scan                 # stream defaults to "scans"
//	    source: "{dock}-scanner"
//	    format: json
//	    fields: {barcode: code, symbology: sym, time: ts, attrs: [battery]}
//	    keep_raw: true
//	    max_payload: 4KiB          # at most the driver's
//	    rate_limit: {events_per_second: 5, burst: 50}
//	  - topic: site/+dock/temp
//	    kind: reading
//	    stream: telemetry
//	    format: text
package mqtt
