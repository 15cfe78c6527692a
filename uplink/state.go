package uplink

import (
	"sync"
	"sync/atomic"
	"time"
)

// StreamState is a snapshot of one forwarder, for status pages and metrics.
// Counters are totals since the forwarder started.
type StreamState struct {
	Gateway  string
	Stream   string
	Topic    string
	Producer string // the stable producer name
	Priority int

	Connected bool      // a producer is open
	Since     time.Time // when Connected last changed
	LastError string    // the error that ended the last producer session, if any
	ErrorAt   time.Time // when LastError happened
	Sessions  uint64    // producers created
	Errors    uint64    // sessions (or attempts to start one) that ended in an error

	Sent        uint64 // messages handed to the producer, re-sends included
	Resent      uint64 // of Sent: messages sent again after a reconnect
	Receipts    uint64 // successful receipts
	Duplicates  uint64 // of Receipts: receipts for messages the broker dropped as duplicates
	AckedSeq    uint64 // highest seq acknowledged to the backlog
	Acked       uint64 // entries acknowledged to the backlog
	InFlight    int    // sent, no receipt yet
	Undecodable uint64 // entries whose CBOR could not be decoded (sent anyway, without key, time or kind)
	SentBytes   uint64 // payload bytes handed to the producer
	// WireBytes is what the stream's producers wrote to Pulsar: message
	// frames (send command, metadata, compressed batch), re-sends included,
	// before TLS and TCP. The cost of the link, per stream.
	WireBytes uint64
	// Skipped counts entries the broker already had when a producer was
	// created (its last sequence ID), acked without being sent again.
	Skipped uint64
	// StaleBrokerSeq counts sessions ended because the first event came
	// back as a duplicate (see ErrStaleBrokerSeq).
	StaleBrokerSeq uint64

	LastReceiptLatency time.Duration // send to receipt, of the latest receipt
}

// stateBox guards one forwarder's StreamState.
type stateBox struct {
	mu     sync.Mutex
	s      StreamState
	active bool                   // a Forward runs; guarded by Client.mu
	win    atomic.Pointer[window] // the current session's window, for InFlight
}

func (b *stateBox) update(f func(s *StreamState)) {
	b.mu.Lock()
	f(&b.s)
	b.mu.Unlock()
}

func (b *stateBox) get() StreamState {
	b.mu.Lock()
	s := b.s
	b.mu.Unlock()
	if w := b.win.Load(); w != nil {
		s.InFlight, _ = w.inFlight()
	}
	return s
}
