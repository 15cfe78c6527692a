// Package ingest is what the gateway's two MQTT transports share: the site
// broker client (drivers/mqtt, driver "mqtt") and the source on the
// gateway's embedded broker (drivers/mqttbroker, driver "mqtt-embedded").
// Given one source's messages in arrival order, it maps each topic to a
// subscription (named wildcards, the source template, stream and kind),
// parses the payload (json, cbor, text or raw; strict JSON and CBOR, device
// time, mapped fields), reads the device's own counter once while parsing
// and reports its jumps as gap events, applies the per-source rate limit,
// batches events into Emit calls and acks each message only after the
// commit that holds it, and counts it all under one metric set. It knows
// nothing of connections: a transport delivers Messages to an Inlet, runs
// Work, and adds its own counters (Link).
//
// Flow: the transport calls Inlet.Deliver for every PUBLISH in arrival
// order; Deliver only stamps the receive time and enqueues. One batcher
// goroutine (Work) takes messages in that order, parses each, and gathers a
// batch (up to ack_batch messages, for at most ack_window after the first,
// or until it holds the broker's in-flight window of QoS 1/2 messages,
// after which the broker sends no more); a committer quarantines what does
// not parse, emits the rest with one Sink.Emit and then acks every message
// of the batch in order. A message is thus acked only after the commit that
// holds it, acks go out in commit-sized groups, and per-publisher order is
// kept into Emit.
//
// When Emit returns drivers.ErrFull the batcher retries with backoff and
// takes nothing new: nothing is acked and the sender holds the rest (MQTT 5
// devices of the embedded broker are told, see Message.Refuse). Malformed,
// oversize or unmatched payloads are quarantined and acked, so one poison
// message never blocks a session. Delivery is at least once: a message
// already emitted but whose ack was lost is emitted again (counted in
// Stats.Redelivered, with the same DedupKey).
//
// Flood control: max_payload bounds every message (per subscription too);
// rate_limit (off by default) bounds the messages per second each source
// may turn into events, with a token bucket per source. Excess messages are
// acknowledged and dropped before they are parsed and reported as events of
// kind "dropped"; see RateLimit.
package ingest
