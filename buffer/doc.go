// Package buffer is the gateway's durable, bounded event store: one bbolt
// file holding a bucket per stream keyed by big-endian sequence number.
//
// Producers call [DB.Append], which returns only after the transaction that
// holds the events is fsynced; concurrent appends share one transaction and
// one sync (group commit). Most commits are made durable by one frame
// appended to an ingest journal beside the file (path + ".journal") and one
// fdatasync, a flash page, and moved into the bbolt file in large
// transactions later; readers see them at once, and Open replays the
// journal after a crash (journal.go, [Options.JournalSize]). The uplink reads with [DB.Read], waits on
// [DB.Notify] and removes delivered events with [DB.Ack]. Sequence numbers are
// strictly increasing per stream and never reused, across acks, drops,
// compaction, restarts and even the replacement of a corrupt file.
//
// [DB.AppendRecords] makes appends idempotent for at-least-once sources: each
// record may carry a key (e.g. a digest of an MQTT message), the stream
// remembers the keys of its last [Options.DedupWindow] keyed records, and a
// re-delivered record flagged CheckDup whose key is remembered is not stored
// again but answered with the seq it got the first time.
//
// Every stream has limits (bytes, events, age), a priority and an overflow
// policy; a shared disk budget evicts from the lowest-priority drop-oldest
// stream first. Every drop is counted by reason and recorded as a [Gap]
// (and, with [Options.GapEncoder], also reported in the stream by a gap event
// that is itself never dropped, however long the overflow lasts), so nothing
// disappears silently.
//
// Per-stream counters live in a metadata bucket, so [DB.Stats] is O(streams)
// and Open never reads the data buckets: startup time does not depend on the
// backlog. A file that cannot be opened is moved aside and replaced by a fresh
// one instead of failing the gateway again at every restart.
//
// The package knows nothing of MQTT or Pulsar; events are opaque bytes.
package buffer
