package uplink

import (
	"sort"
	"sync"
	"time"
)

// window tracks the messages of one producer session that are sent and not
// yet receipted, in send (= seq) order. Receipt callbacks run on the client
// library's goroutines; the forwarder's loop and its acker read the window.
//
// The window's "done" point is the highest seq such that it and every seq
// sent before it in this session have a receipt: everything up to it may be
// acked to the backlog.
type window struct {
	mu    sync.Mutex
	slots []slot // slots[head:] are in flight or receipted out of order
	head  int
	done  uint64 // highest seq of the receipted prefix; 0 = none yet
	nDone uint64 // how many entries the receipted prefix has covered
	err   error  // first send error of the session

	room    chan struct{} // signalled when a slot frees or err is set
	receipt chan struct{} // signalled when done advances or err is set
	dead    chan struct{} // closed when err is set
}

type slot struct {
	seq    uint64
	sentAt time.Time
	ok     bool
}

func newWindow() *window {
	return &window{room: make(chan struct{}, 1), receipt: make(chan struct{}, 1), dead: make(chan struct{})}
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// add records seq as sent at t. seqs must be added in ascending order.
func (w *window) add(seq uint64, t time.Time) {
	w.mu.Lock()
	if w.head > 0 && w.head >= len(w.slots)/2 {
		n := copy(w.slots, w.slots[w.head:])
		w.slots = w.slots[:n]
		w.head = 0
	}
	w.slots = append(w.slots, slot{seq: seq, sentAt: t})
	w.mu.Unlock()
}

// complete records the outcome of seq's send at t. It returns the time from
// send to receipt, and false when seq is not in flight (e.g. a late callback
// after the session failed).
func (w *window) complete(seq uint64, err error, t time.Time) (time.Duration, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		if w.err == nil {
			w.err = err
			close(w.dead)
		}
		signal(w.room)
		signal(w.receipt)
		return 0, false
	}
	live := w.slots[w.head:]
	i := sort.Search(len(live), func(i int) bool { return live[i].seq >= seq })
	if i == len(live) || live[i].seq != seq || live[i].ok {
		return 0, false
	}
	live[i].ok = true
	lat := t.Sub(live[i].sentAt)
	advanced := false
	for w.head < len(w.slots) && w.slots[w.head].ok {
		w.done = w.slots[w.head].seq
		w.nDone++
		w.head++
		advanced = true
	}
	if advanced {
		signal(w.room)
		signal(w.receipt)
	}
	return lat, true
}

// fail records a session error (the first one wins) and wakes the waiters.
func (w *window) fail(err error) {
	w.complete(0, err, time.Time{})
}

// failed returns the session's first error, if any.
func (w *window) failed() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// ackable returns the receipted prefix: its highest seq and its length.
func (w *window) ackable() (seq, n uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.done, w.nDone
}

// inFlight returns how many messages have no receipt yet (or a receipt that
// is not yet part of the receipted prefix) and when the oldest was sent.
func (w *window) inFlight() (int, time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := len(w.slots) - w.head
	if n == 0 {
		return 0, time.Time{}
	}
	return n, w.slots[w.head].sentAt
}
