// Package uplink forwards the gateway's buffered events to Apache Pulsar,
// effectively once and in order per stream.
//
// A Client holds one pulsar-client-go client for all streams. For each
// stream, Forward runs a forwarder: one producer per (gateway, stream) with
// the stable name "<gateway>/<stream>", each message carrying SequenceID = the
// event's seq, key = its source, event time = its time and properties
// gateway, kind and stream; the payload is the stored CBOR as-is.
//
// Batching (Options.BatchMaxMessages > 1, the default; zstd): events go in
// Pulsar batches, still one Pulsar message per event for consumers. It is
// safe only with the patched client in third_party/pulsar-client-go (see its
// PATCH.md; go.mod replaces the module): batches carry their highest
// sequence ID, and the producer reports the broker's last sequence ID
// (ProducerSuccess.last_sequence_id). The broker drops a whole batch whose
// first ID is at or below what it has, new events included (pulsar-client-go
// issues 1395, 1407; uplink/traps_test.go), so each session acks without
// sending the entries up to the broker's last ID (StreamState.Skipped), sends
// the next event alone and waits for its receipt (if it is a duplicate, a
// dead producer's writes were still landing: the session ends and the next
// one asks again), and only then batches. Within a session the library
// re-sends whole pending batches after a reconnect, which the broker stores
// or drops whole. With batching each message also gets ordering key
// "<gateway>/<stream>": Key_Shared dispatches a batch by it, so a gateway's
// stream (and each of its sources) stays in order at one sink instance, and
// sink instances share the load by gateway.
// Messages go out asynchronously in seq order within a window of
// Options.MaxPending; the backlog (see Backlog) is acked up to the highest
// seq below which every message has a receipt, coalesced every few ms.
//
// On any error (a failed send, no receipt within Options.SendTimeout, a
// backlog error) the forwarder closes the producer, backs off (exponential,
// jittered, capped at 30s) and starts a new producer with the same name that
// re-sends everything after the last acked seq under the same sequence IDs.
// Broker deduplication, which must be on for the namespace (CheckDedup;
// forwarders refuse to send without it unless RequireDedup is false), drops
// the messages it already stored and still returns a receipt, whose message
// ID is -1:-1; it counts as delivered. Producer.LastSequenceID is not used
// (it is -1 until a new producer's first receipt).
//
// A producer whose broker-side last sequence ID is one the store never
// assigned (Backlog.Next) belongs to someone else: another gateway with the
// same ID, or this store restored from an older copy. Sending would have the
// broker drop the stream's events as duplicates, so the session ends with
// ErrIdentityConflict and nothing is sent or skipped until that changes.
//
// Why the library's own send timeout is disabled: it fails the pending
// messages that have expired and keeps the younger ones, which a reconnect
// then writes to the broker. Deduplication keeps only the highest sequence
// ID per producer, so the expired ones, re-sent later, would be dropped as
// duplicates: lost. Closing the whole producer instead fails every pending
// message at once, so what the broker stored is always a prefix of what was
// sent. Short disconnects are still healed inside the library, which re-sends
// its pending messages in order on the new connection.
//
// Drain order: with Options.BandwidthLimit set, all forwarders draw payload
// bytes from one token bucket that serves waiting streams strictly by
// priority (higher first), so after an outage the higher-priority streams
// drain first and lower ones get only what is left. Without a limit every
// forwarder sends concurrently and priority plays no part.
//
// Client.Streams exposes each forwarder's state as a plain StreamState, and
// OnReceiptLatency feeds a histogram.
package uplink
