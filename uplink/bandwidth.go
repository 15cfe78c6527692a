package uplink

import (
	"container/heap"
	"context"
	"sync"
	"time"
)

// bandwidth is a token bucket shared by every forwarder of a Client. Tokens
// are payload bytes, refilled at rate per second up to burst. Waiters are
// served strictly by priority (higher first), in arrival order within a
// priority, so that after an outage the higher-priority streams drain first
// and a lower-priority stream only gets bandwidth the others leave unused.
//
// A request larger than the burst is granted once the bucket is full and
// leaves it in debt, so a large message is delayed, never refused.
type bandwidth struct {
	rate  float64 // bytes per second
	burst float64
	now   func() time.Time

	mu      sync.Mutex
	tokens  float64
	last    time.Time
	waiters waitHeap
	arrived uint64
	timer   *time.Timer
}

type waiter struct {
	prio  int
	order uint64
	n     float64
	ready chan struct{}
	index int // in the heap; -1 once granted or abandoned
}

func newBandwidth(bytesPerSec int64, now func() time.Time) *bandwidth {
	rate := float64(bytesPerSec)
	// A tenth of a second of traffic (at least 1KiB). The bucket starts
	// empty, so no initial burst jumps the priority order.
	burst := max(rate/10, 1024)
	return &bandwidth{rate: rate, burst: burst, now: now, last: now()}
}

func (b *bandwidth) refill() {
	t := b.now()
	if d := t.Sub(b.last); d > 0 {
		b.tokens = min(b.burst, b.tokens+d.Seconds()*b.rate)
		b.last = t
	}
}

func (b *bandwidth) need(n float64) float64 { return min(n, b.burst) }

// wait blocks until n bytes may be sent at priority prio, or ctx ends.
func (b *bandwidth) wait(ctx context.Context, prio int, n int) error {
	b.mu.Lock()
	b.refill()
	f := float64(n)
	if len(b.waiters) == 0 && b.tokens >= b.need(f) {
		b.tokens -= f
		b.mu.Unlock()
		return nil
	}
	w := &waiter{prio: prio, order: b.arrived, n: f, ready: make(chan struct{})}
	b.arrived++
	heap.Push(&b.waiters, w)
	b.dispatchLocked()
	b.mu.Unlock()

	select {
	case <-w.ready:
		return nil
	case <-ctx.Done():
		b.mu.Lock()
		defer b.mu.Unlock()
		if w.index < 0 { // granted meanwhile
			return nil
		}
		heap.Remove(&b.waiters, w.index)
		b.dispatchLocked()
		return ctx.Err()
	}
}

// dispatchLocked grants the head waiters while tokens allow, then arms the
// timer for the next head.
func (b *bandwidth) dispatchLocked() {
	b.refill()
	for len(b.waiters) > 0 {
		w := b.waiters[0]
		if b.tokens < b.need(w.n) {
			break
		}
		heap.Pop(&b.waiters)
		b.tokens -= w.n
		close(w.ready)
	}
	if len(b.waiters) == 0 {
		return
	}
	d := time.Duration((b.need(b.waiters[0].n) - b.tokens) / b.rate * float64(time.Second))
	d = max(d, time.Millisecond)
	if b.timer == nil {
		b.timer = time.AfterFunc(d, b.dispatch)
	} else {
		b.timer.Reset(d)
	}
}

func (b *bandwidth) dispatch() {
	b.mu.Lock()
	b.dispatchLocked()
	b.mu.Unlock()
}

func (b *bandwidth) stop() {
	b.mu.Lock()
	if b.timer != nil {
		b.timer.Stop()
	}
	b.mu.Unlock()
}

// waitHeap orders waiters by priority (highest first), then arrival.
type waitHeap []*waiter

func (h waitHeap) Len() int { return len(h) }
func (h waitHeap) Less(i, j int) bool {
	if h[i].prio != h[j].prio {
		return h[i].prio > h[j].prio
	}
	return h[i].order < h[j].order
}
func (h waitHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *waitHeap) Push(x any) {
	w := x.(*waiter)
	w.index = len(*h)
	*h = append(*h, w)
}
func (h *waitHeap) Pop() any {
	old := *h
	w := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	w.index = -1
	return w
}
