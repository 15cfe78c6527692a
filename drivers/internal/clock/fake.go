package clock

import (
	"slices"
	"sync"
	"time"
)

// Fake is a manual Clock for tests: time moves only when the test says, and
// the test can wait until the code under test waits on the clock.
type Fake struct {
	mu      sync.Mutex
	now     time.Time
	waiters []waiter
	added   chan struct{} // cap 1: At was called
}

type waiter struct {
	at time.Time
	c  chan time.Time
}

var _ Clock = (*Fake)(nil)

// NewFake returns a Fake clock reading t.
func NewFake(t time.Time) *Fake {
	return &Fake{now: t, added: make(chan struct{}, 1)}
}

// Now implements Clock.
func (c *Fake) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// At implements Clock.
func (c *Fake) At(t time.Time) <-chan time.Time {
	ch := make(chan time.Time, 1)
	c.mu.Lock()
	defer c.mu.Unlock()
	if !t.After(c.now) {
		ch <- c.now
		return ch
	}
	c.waiters = append(c.waiters, waiter{t, ch})
	select {
	case c.added <- struct{}{}:
	default:
	}
	return ch
}

// Set moves the clock to t and fires every waiter due by then.
func (c *Fake) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if w.at.After(t) {
			kept = append(kept, w)
			continue
		}
		w.c <- t
	}
	c.waiters = kept
}

// Advance moves the clock forward by d.
func (c *Fake) Advance(d time.Duration) { c.Set(c.Now().Add(d)) }

// Pending lists the deadlines waited for.
func (c *Fake) Pending() []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]time.Time, len(c.waiters))
	for i, w := range c.waiters {
		out[i] = w.at
	}
	return out
}

// WaitUntil blocks until something waits for a deadline that ok accepts,
// and reports true; false when timeout passed first.
func (c *Fake) WaitUntil(timeout time.Duration, ok func(time.Time) bool) bool {
	deadline := time.After(timeout)
	for {
		if slices.ContainsFunc(c.Pending(), ok) {
			return true
		}
		select {
		case <-c.added:
		case <-deadline:
			return false
		}
	}
}
