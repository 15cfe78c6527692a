package gpio

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/edgegw/gateway/drivers"
	"github.com/edgegw/gateway/event"
	"github.com/edgegw/gateway/internal/backoff"
	"github.com/edgegw/gateway/internal/loglimit"
)

const (
	queueMax   = 4096 // events held while the sink refuses them
	batchMax   = 256  // events per Emit
	backoffMin = 100 * time.Millisecond
	backoffMax = 5 * time.Second
)

// queue holds the events of one run until the sink has committed them.
type queue struct {
	max  int
	wake chan struct{} // cap 1: something was pushed

	mu    sync.Mutex
	items []*event.Event
}

func newQueue(max int) *queue { return &queue{max: max, wake: make(chan struct{}, 1)} }

// push appends e; false if the queue is full.
func (q *queue) push(e *event.Event) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) >= q.max {
		return false
	}
	q.items = append(q.items, e)
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return true
}

// head returns up to batchMax queued events of the first event's stream, in
// order. One stream per Emit: a failed Emit then commits nothing of it.
func (q *queue) head() []*event.Event {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) == 0 {
		return nil
	}
	s := q.items[0].Stream
	var out []*event.Event
	for _, e := range q.items {
		if e.Stream == s {
			out = append(out, e)
			if len(out) == batchMax {
				break
			}
		}
	}
	return out
}

// remove deletes the events of a committed batch.
func (q *queue) remove(batch []*event.Event) {
	done := make(map[*event.Event]bool, len(batch))
	for _, e := range batch {
		done[e] = true
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	kept := q.items[:0]
	for _, e := range q.items {
		if !done[e] {
			kept = append(kept, e)
		}
	}
	clear(q.items[len(kept):])
	q.items = kept
}

func (q *queue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}

// emitter hands queued events to the sink, retrying with backoff (and
// holding the events) while the sink refuses them.
func (d *Driver) emitter(ctx context.Context, q *queue, sink drivers.Sink) {
	bo := backoff.Backoff{Min: backoffMin, Max: backoffMax}
	for {
		batch := q.head()
		if len(batch) == 0 {
			select {
			case <-ctx.Done():
				return
			case <-q.wake:
				continue
			}
		}
		err := sink.Emit(ctx, batch)
		if err == nil {
			q.remove(batch)
			d.stats.emitted.Add(int64(len(batch)))
			bo.Reset()
			continue
		}
		if ctx.Err() != nil {
			return
		}
		d.stats.emitRetries.Add(1)
		wait := bo.Next()
		if ok, held := d.limit.Allow("emit", d.clock.Now()); ok {
			msg := "sink refused events; retrying"
			if errors.Is(err, drivers.ErrFull) {
				msg = "stream full; holding events and retrying"
			}
			d.log.Warn(msg, "err", err, "queued", q.len(), "retry_in", wait, loglimit.Held(held))
		}
		select {
		case <-ctx.Done():
			return
		case <-d.clock.At(d.clock.Now().Add(wait)):
		}
	}
}
