// Package backoff is the gateway's one retry delay: exponential growth from
// a minimum to a cap, optional jitter, reset on success, and a wait that
// ends early when its context does.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff yields the delays between retries: Min first, then each one
// Factor times the one before, up to Max. Jitter, when set, scales each
// delay returned (not the growth) by a random factor. Set the fields, then
// use it; it is not safe for concurrent use.
type Backoff struct {
	// Min is the first delay, and the one after Reset.
	Min time.Duration
	// Max caps every delay after the first. A Max below Min makes the
	// second and later delays Max.
	Max time.Duration
	// Factor is the growth per retry. Default (0) 2.
	Factor float64
	// Jitter, when not {0, 0}, scales each delay by a factor drawn
	// uniformly from [Jitter[0], Jitter[1]]: {0.5, 1} waits from half of
	// the delay to all of it, {0.8, 1.2} is ±20%.
	Jitter [2]float64
	// Rand draws the jitter, in [0, 1). Default math/rand/v2's Float64;
	// tests set it.
	Rand func() float64

	cur time.Duration // the last delay before jitter; 0 before the first
}

// Next returns the delay to wait before the next retry, and grows the one
// after it.
func (b *Backoff) Next() time.Duration {
	if b.cur == 0 {
		b.cur = b.Min
	} else {
		f := b.Factor
		if f == 0 {
			f = 2
		}
		if g := float64(b.cur) * f; g >= float64(b.Max) {
			b.cur = b.Max
		} else {
			b.cur = time.Duration(g)
		}
	}
	if b.Jitter == [2]float64{} {
		return b.cur
	}
	r := b.Rand
	if r == nil {
		r = rand.Float64
	}
	lo, hi := b.Jitter[0], b.Jitter[1]
	return time.Duration(float64(b.cur) * (lo + (hi-lo)*r()))
}

// Reset starts again from Min: call it after a success.
func (b *Backoff) Reset() { b.cur = 0 }

// Wait sleeps for Next(); it returns false, at once, when ctx ends first.
func (b *Backoff) Wait(ctx context.Context) bool { return Sleep(ctx, b.Next()) }

// Sleep waits d; it returns false, at once, when ctx ends first.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
