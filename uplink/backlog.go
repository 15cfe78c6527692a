package uplink

// Entry is one stored event of a stream: its sequence number and its
// CBOR-encoded event.Event, exactly as stored. Data is sent as-is.
type Entry struct {
	Seq  uint64
	Data []byte
}

// Backlog is one stream's store of events not yet delivered, as the
// forwarder sees it. The gateway adapts its buffer to it.
type Backlog interface {
	// Read returns up to max entries with Seq > after, in ascending Seq
	// order, without blocking; none when there are none. Entries at or
	// below the last Ack should not be returned for after = 0 (they would
	// be re-sent, which is harmless but wasteful).
	Read(after uint64, max int) ([]Entry, error)
	// Ack records that every entry with Seq <= upTo is delivered. upTo
	// never decreases. The record is durable when Ack returns or soon after
	// (the buffer syncs an ack with its next commit): after a power cut the
	// backlog may hold entries acked just before it, and they are sent
	// again under the same seqs, which the broker's deduplication drops.
	Ack(upTo uint64) error
	// Notify returns a channel that receives (or is closed) when entries
	// may have been added since Notify was called. The forwarder calls it
	// before each Read that may come up empty.
	Notify() <-chan struct{}
	// Next returns the seq the stream's next entry will get: every seq the
	// store has ever assigned is below it, acked or not.
	Next() uint64
}
