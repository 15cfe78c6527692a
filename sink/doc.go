// Package sink is the cloud side of the gateway: it consumes the event
// topics (persistent://<tenant>/<namespace>/events-<stream>) from Pulsar and
// upserts each event into Cassandra, and it answers operator queries (Trace,
// Events) from the same tables. It shares only the event codec with the
// rest of the project.
//
// # Delivery
//
// A message is acknowledged only after every row derived from it was
// written. Rows are keyed by the event identity (gateway, stream, seq), so a
// redelivered or replayed message overwrites its own rows: at-least-once
// delivery gives exactly-once rows. Writes that fail for a transient reason
// (timeouts, unavailable replicas, lost connections: see Classify) are
// retried with exponential backoff forever, so the sink rides out a
// Cassandra restart without acknowledging anything it did not write and
// without exiting. A message that does not decode, or whose rows Cassandra
// refuses for good, is published to the dead-letter topic (default
// events-dlq in the same namespace) with the properties reason,
// original_topic and message_id, then acknowledged: it never blocks the
// stream. The dead-letter topic is excluded from the topic pattern.
//
// Back-pressure: at most write.concurrency Cassandra requests are in flight;
// when all are busy the receive loop stops taking messages, the client's
// receiver queue fills and Pulsar stops delivering.
//
// # Subscription type: Key_Shared
//
// Several sink instances share one subscription. Key_Shared (the default)
// spreads the messages of each topic over all instances by key. The gateways
// batch, and a batch carries the ordering key "<gateway>/<stream>" (each
// message keeps key = source), which Key_Shared routes by: every instance
// gets work as long as there are more gateways than instances, and all events
// of one gateway's stream (so of each of its sources) go to one instance in
// publication order. Failover would also keep order, but gives
// each non-partitioned topic to a single active consumer: with a handful of
// streams, most instances would stand idle, and a hot stream could not be
// spread. Order is kept in delivery; within one instance rows are written
// concurrently, which is harmless because no row depends on another (each is
// keyed by its event). Producers must give a batch one ordering key (as
// the gateway does) or not batch: the broker dispatches a batch as a whole.
//
// # Tables
//
// The sink creates the keyspace (if missing) and its tables at start, through
// versioned, idempotent migrations guarded by a lightweight-transaction lock
// in schema_version (see Migrate), so several sinks may start at once. The
// tables (see schema.go): events by ((gateway, day), time DESC, stream, seq);
// scans_by_barcode by ((barcode), time DESC, gateway, stream, seq) for scans
// with a barcode; readings by ((gateway, source, day), time DESC, stream,
// seq); gaps by ((gateway, stream), seq DESC). Days are UTC days of the event
// time. Each table has its own TTL (cassandra.ttl), applied per write.
// Timestamps are stored to the millisecond; the events row keeps the whole
// CBOR envelope in its payload column.
package sink
