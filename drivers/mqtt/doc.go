// Package mqtt is the MQTT input driver for a site broker (registered as
// "mqtt"): a subscriber on a persistent session (fixed client ID, clean
// session off, manual acks, paho.mqtt.golang underneath) that turns each
// message into an event and acknowledges it only after the Sink has
// committed it. What it shares with the embedded broker's source (topic
// mapping, payload parsing, device counters, batching into Emit calls, rate
// limits, the metric set) is package ingest; this package is the transport:
// the connection, its session and TLS, and the watch of the site broker's
// own drops (BrokerDrops).
//
// Flow: paho calls the handler for every PUBLISH in arrival order on its
// router goroutine (OrderMatters); the handler hands it to the ingest's
// Inlet, and ingest.Ingest.Work batches, commits and acks (see package
// ingest). When the sink is full nothing is acked, the broker's in-flight
// window fills and the broker holds the rest in the session. After a lost
// connection the broker redelivers what was not acked.
//
// A config whose brokers is [embedded] is not this driver's: the
// registration hands it on to the "mqtt-embedded" driver
// (drivers/mqttbroker), the canonical spelling of a source on the gateway's
// embedded broker; `driver: mqtt` with `brokers: [embedded]` keeps working
// as an alias of it.
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
