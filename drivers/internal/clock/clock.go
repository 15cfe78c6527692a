// Package clock is the time source the field I/O drivers share; tests inject
// a fake clock so that they never sleep. (Their log limiter is
// internal/loglimit's, which takes the time from this clock.)
package clock

import "time"

// Clock is a driver's time source; tests inject a fake one so that they
// never sleep.
type Clock interface {
	Now() time.Time
	// At returns a channel that receives once when the clock reaches t (at
	// once when t is not after Now). Deadlines are absolute so that a
	// schedule does not drift and a fake clock can be advanced at any time.
	At(t time.Time) <-chan time.Time
}

// Real is the wall clock.
type Real struct{}

func (Real) Now() time.Time                  { return time.Now() }
func (Real) At(t time.Time) <-chan time.Time { return time.After(time.Until(t)) }

// NextTick returns the first point of the grid start + k*period after now.
func NextTick(start time.Time, period time.Duration, now time.Time) time.Time {
	if now.Before(start) {
		return start
	}
	k := now.Sub(start)/period + 1
	return start.Add(k * period)
}
