// Package edge is the gateway itself: it opens the durable buffer, builds the
// pipeline from the config (drivers → stamp → CBOR → buffer → uplink), swaps
// pipelines when the config changes, and serves health, metrics and status
// on a local HTTP address.
//
// Drivers hand readings to the ingest Sink, which stamps each one with the
// gateway ID, its stream's next seq, the receive time, the boot counter and a
// monotonic clock reading, encodes it as one CBOR envelope and returns only
// once the buffer's group commit holding it is on disk. Forwarders, one per
// stream, read the buffer in seq order and hand it to the uplink, which acks
// the buffer only on Pulsar's receipt.
package edge
